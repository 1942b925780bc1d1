"""Each session's own models: the owners' store.

A session (a page, or one gradio_client) holds models of its own beside the shipped ones: a
run it trained, a checkpoint it brought back, a run it adopted. This store keeps them, in
memory, within a count and a byte bound that no crowd can spend for a visitor.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from .catalogue import ActiveModel, model_bytes

DROPPED_NOTICE = ("This server keeps the models of its {n} most recently active training sessions, and yours "
                  "were dropped to make room: the pretrained models are active again. Download a run's checkpoint "
                  "to keep it.")
_REMEMBER_DROPPED = 10_000


class SessionModels:
    """Each session's own active models (role → model), kept apart so that no crowd can push out a trainer.

    Sessions that trained a model are kept up to `capacity`; sessions that only adopted a run
    (a reference to a model someone trained) are kept up to `adopters`, and never push out a
    trainer, so a crowd of anonymous adopters cannot flush a visitor's trained model. The
    distinct models held stay under `max_bytes`: past it adopters go first, then the least
    recently used trainers. A dropped session is told so once.
    """

    def __init__(self, capacity: int, max_bytes: int, adopters: int = 10_000):
        self.capacity, self.max_bytes, self.adopters = capacity, max_bytes, adopters
        self._trained: OrderedDict[str, dict[str, ActiveModel]] = OrderedDict()
        self._adopted: OrderedDict[str, dict[str, ActiveModel]] = OrderedDict()
        self._dropped: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: str) -> dict[str, ActiveModel]:
        with self._lock:
            for held in (self._trained, self._adopted):
                if session in held:
                    held.move_to_end(session)
                    return dict(held[session])
            return {}

    def set(self, session: str, role: str, active: ActiveModel, trained: bool) -> None:
        """Make `active` this session's model for `role`; `trained` if the session trained it itself."""
        with self._lock:
            self._dropped.pop(session, None)
            if trained or session in self._trained:
                self._trained[session] = self._adopted.pop(session, {}) | self._trained.get(session, {})
                held = self._trained
            else:
                held = self._adopted
            held.setdefault(session, {})[role] = active
            held.move_to_end(session)
            while len(self._trained) > self.capacity:
                self._drop(self._trained)
            while len(self._adopted) > self.adopters:
                self._drop(self._adopted)
            while self._bytes() > self.max_bytes and (self._adopted or len(self._trained) > 1):
                self._drop(self._adopted if self._adopted else self._trained)

    def forget(self, session: str) -> None:
        """The session's own models go (it asked): it is on the pretrained models, and not told it was dropped."""
        with self._lock:
            self._trained.pop(session, None)
            self._adopted.pop(session, None)

    def take_dropped(self, session: str) -> bool:
        """Whether this session's models were dropped since it last asked (said once)."""
        with self._lock:
            return self._dropped.pop(session, False) is None

    def _drop(self, held: OrderedDict[str, dict[str, ActiveModel]]) -> None:
        gone, _ = held.popitem(last=False)
        self._dropped[gone] = None
        if len(self._dropped) > _REMEMBER_DROPPED:
            self._dropped.popitem(last=False)

    def _bytes(self) -> int:
        distinct = {id(a.model): a for held in (self._trained, self._adopted) for roles in held.values()
                    for a in roles.values()}
        return sum(model_bytes(a) for a in distinct.values())
