"""The shipped models: each kind's pretrained checkpoints in weights/, the models every session starts on.

Built from the registry of kinds (`KindSpec.pretrained`, `KindSpec.companions`), so a kind
with shipped weights appears here with no line of its own. The recognition judge lives here
too: it measures a new model against the shipped one of its kind.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Generic, TypeVar

from torch import nn

from vae_core.checkpoint import Checkpoint, load_checkpoint
from vae_core.config import ModelConfig, options_of
from vae_core.models import Model, kinds, spec
from vae_core.recognize import can_judge, describe, load_judge, recognized

JUDGE = "digit_judge.safetensors"  # in weights/: the CNN that reads a CVAE's digits (vae_core/recognize.py)


def pretrained_folders() -> dict[str, str]:
    """Role → folder in weights/: each kind's default model, then the pretrained models tabs use by name."""
    folders: dict[str, str] = {}
    for kind in kinds().values():
        if kind.pretrained:
            folders[kind.name] = kind.pretrained[0]
        folders.update(kind.companions)
    return folders


PRETRAINED = pretrained_folders()
# the kinds the header's picker offers: those the app trains, with shipped checkpoints to pick from
PICKABLE = tuple(name for name, kind in kinds().items() if kind.app_trains and kind.pretrained)


M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class ActiveModel(Generic[M]):
    """A model a session can use, where it came from (`weights/…`, `runs/…`) and its checkpoint's info."""

    model: M
    source: str
    info: dict

    def describe(self) -> str:
        cfg = self.model.config
        metrics = self.info.get("metrics") or {}
        trained = f"{self.info.get('epochs_trained', '?')} epochs on {self.info.get('dataset', '?')}"
        loss = f", test loss {metrics['test_loss']:.2f}" if "test_loss" in metrics else ""
        note = " (offline 5k subset)" if self.info.get("dataset_note") else ""
        shared = options_of(ModelConfig)
        own = "".join(f", {name.replace('_', ' ')} {getattr(cfg, name)}" for name in options_of(type(cfg))
                      if name not in shared)  # the kind's own settings
        return (f"**{spec(cfg.kind).title}** from `{self.source}`: {cfg.arch}, latent {cfg.latent}, "
                f"hidden {cfg.hidden}, {cfg.likelihood} likelihood{own}, {trained}{note}{loss}")


def open_checkpoint(path: Path, source: str) -> ActiveModel:
    return as_active(load_checkpoint(path), source)


def as_active(ckpt: Checkpoint, source: str) -> ActiveModel:
    """The checkpoint as a session's model; its per-epoch history stays on disk (the Runs tab reads it there),
    so a session's memory is its weights and a few numbers, whatever the history's length."""
    return ActiveModel(ckpt.model, source, {k: v for k, v in ckpt.info.items() if k != "history"})


def model_bytes(active: ActiveModel) -> int:
    """What a model holds in memory: its parameters and buffers."""
    return sum(t.numel() * t.element_size() for t in (*active.model.parameters(), *active.model.buffers()))


class Catalogue:
    """The shipped models by role, the checkpoints a session may pick for each, and the judge."""

    def __init__(self, pretrained: dict[str, ActiveModel], shipped: dict[str, dict[str, ActiveModel]],
                 judge: nn.Module):
        self.pretrained = pretrained
        self.shipped = shipped  # role → {source: model}: every shipped checkpoint a session may pick for that role
        self.judge = judge
        self._recognition: dict[str, str] = {}  # shipped model's source → its recognizability

    @classmethod
    def open(cls, weights_dir: Path) -> Catalogue:
        folders = {*PRETRAINED.values(), *(f for kind in kinds().values() for f in kind.pretrained)}
        opened = {folder: open_checkpoint(weights_dir / folder, f"weights/{folder}") for folder in folders}
        pretrained = {role: opened[folder] for role, folder in PRETRAINED.items()}
        shipped = {role: {opened[f].source: opened[f] for f in (folder, *_kind_pretrained(role))}
                   for role, folder in PRETRAINED.items()}
        return cls(pretrained, shipped, load_judge(weights_dir / JUDGE))

    def judged(self, active: ActiveModel) -> ActiveModel:
        """A labelled model of MNIST digits gets its recognizability beside its shipped kind's, for the run's end."""
        shipped = self.pretrained.get(active.model.config.role)
        if shipped is None or not can_judge(active.model, active.info.get("dataset", "")):
            return active
        title = spec(active.model.config.kind).title
        text = (f"An independent CNN reads {describe(recognized(active.model, self.judge))} of this {title}'s "
                f"samples as the digit asked for; the shipped {title}: {self._shipped_recognition(shipped)}.")
        return replace(active, info={**active.info, "recognition": text})

    def _shipped_recognition(self, shipped: ActiveModel) -> str:
        """A shipped model's recognizability, measured once (it takes a second)."""
        if shipped.source not in self._recognition:
            self._recognition[shipped.source] = describe(recognized(shipped.model, self.judge))
        return self._recognition[shipped.source]


def _kind_pretrained(role: str) -> tuple[str, ...]:
    """The other shipped checkpoints a session may pick for `role`, if it is a kind's."""
    kind = kinds().get(role)
    return kind.pretrained[1:] if kind else ()
