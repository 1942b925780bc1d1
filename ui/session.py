"""Each session's view of the studio: its models, made of the shipped ones and its own.

The server has one catalogue of shipped models (`catalogue`), one store of each session's
own models (`owners`), one dataset cache (`data`) and one run at a time (`runs`). A session
(a page, or one gradio_client) starts on the shipped models; a run's model becomes active
for the session that started it, and any other session can adopt it. Tabs ask this view for
"the session's model that can do X" (`model_for`), never for a kind.
"""

from __future__ import annotations

import threading
from typing import cast

from vae_core.datasets import DataError
from vae_core.models import kinds
from vae_core.train import process

from .catalogue import ActiveModel, Catalogue, M, open_checkpoint
from .data_cache import DataCache
from .owners import DROPPED_NOTICE, SessionModels
from .run_manager import RunManager
from .settings import Settings


class Studio:
    """The server's parts, and each session's view of its models."""

    def __init__(self, settings: Settings, catalogue: Catalogue):
        self.settings = settings
        self.catalogue = catalogue
        self.owners = SessionModels(settings.max_sessions, settings.max_model_mb * 1_000_000)
        self.data = DataCache()
        self.runs = RunManager(settings, catalogue, self.owners, self.data)

    @classmethod
    def open(cls, settings: Settings) -> Studio:
        catalogue = Catalogue.open(settings.weights_dir)
        process.warm()  # the first run's worker imports PyTorch now, not when someone presses Start
        process.leave_cores_to_training()
        studio = cls(settings, catalogue)
        # the tabs' first test digits must not wait seconds for the test set: read it now, in the background
        first = next(iter(catalogue.pretrained.values()))
        threading.Thread(target=studio.data.test_data, args=(first,), name="read-test-set", daemon=True).start()
        return studio

    def models(self, session: str) -> dict[str, ActiveModel]:
        return self.catalogue.pretrained | self.owners.get(session)

    def active(self, session: str, role: str) -> ActiveModel:
        """This session's model for `role`: a kind's name, or a pretrained companion's (`KindSpec.companions`)."""
        return self.models(session)[role]

    def model_for(self, session: str, capability: type[M], kind: str | None = None) -> ActiveModel[M]:
        """This session's model that can do `capability`: its model of `kind` if named, else the first kind's that can.

        Tabs ask for what they need ("a model that samples from a prior"), never which kind.
        """
        models = self.models(session)
        if kind is not None and kind not in kinds():
            raise DataError(f"model must be one of {', '.join(self.kinds_for(session, capability))}, "
                            f"not {str(kind)[:40]!r}")
        names = [kind] if kind else [name for name in kinds() if name in models]
        for name in names:
            if name in models and isinstance(models[name].model, capability):
                return cast(ActiveModel[M], models[name])
        can = ", ".join(self.kinds_for(session, capability)) or "none"
        if kind in models:
            raise DataError(f"This session's {kind} model cannot do that; its models that can: {can}")
        what = f"no {kind} model yet (train one)" if kind else "no model"
        raise DataError(f"This session has {what} that can do that; its models that can: {can}")

    def kinds_for(self, session: str, capability: type) -> list[str]:
        """The kinds of this session's models that have `capability`, in the registry's order."""
        models = self.models(session)
        return [name for name in kinds() if name in models and isinstance(models[name].model, capability)]

    def notice(self, session: str) -> str | None:
        """A sentence to show once if this session's own models were dropped for lack of room."""
        return DROPPED_NOTICE.format(n=self.owners.capacity) if self.owners.take_dropped(session) else None

    def choices(self, session: str, role: str) -> list[str]:
        """What this session may pick for `role`: the shipped checkpoints, then its own runs still on disk."""
        return [*self.catalogue.shipped[role], *(f"runs/{folder.name}" for folder in self.runs.of(session)
                                                 if self.runs.role_of(folder) == role)]

    def choose(self, session: str, role: str, source: str) -> None:
        """Make `source` (one of `choices`) this session's model for `role`."""
        if source not in self.choices(session, role):
            raise DataError(f"{source} is not a model this session can pick for the {role.upper()}")
        shipped = self.catalogue.shipped[role]
        if source in shipped:
            self.owners.set(session, role, shipped[source], trained=False)
        else:
            self.owners.set(session, role, open_checkpoint(self.runs.own(session, source), source), trained=True)

    def choose_run(self, session: str, source: str) -> ActiveModel:
        """Make one of this session's runs (`runs/…`) its model for the role that run's model takes."""
        role = self.runs.role_of(self.runs.own(session, source))
        if role is None:
            raise DataError(f"{str(source)[:80]} is not one of this session's runs; pick one from the list")
        self.choose(session, role, source)
        return self.active(session, role)

    def restore(self, session: str) -> None:
        """Back to the pretrained models; the session's runs stay on disk, to be picked again."""
        self.owners.forget(session)

    def describe(self, session: str) -> str:
        return "\n\n".join(f"- {active.describe()}" for active in self.models(session).values())
