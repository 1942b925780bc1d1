"""Who holds which model: the pretrained ones for everyone, a run's result for the session that trained it.

The server has one set of pretrained models, one dataset cache and at most one live
training run; every browser session (a page, or one gradio_client) has its own active
models. A session starts on the pretrained models; a run's model becomes active for the
session that started it, and any other session can adopt it. Sessions' own models are
kept for the `max_sessions` most recently active sessions; an older session that comes
back is told once that its models were dropped, and is on the pretrained ones again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

from vae_core.checkpoint import load_checkpoint
from vae_core.config import ModelConfig, TrainConfig
from vae_core.datasets import DataError, Dataset, ZipUpload, load_dataset
from vae_core.explore import epoch_pictures
from vae_core.models import Model
from vae_core.train import ProcessTrainer, process

from .live_run import LiveRun
from .settings import Settings

# role → folder in weights/; "baseline" is the completion tab's deterministic network
PRETRAINED = {"vae": "vae", "cvae": "cvae", "scvae": "scvae", "baseline": "scvae-baseline"}
DROPPED_NOTICE = ("This server keeps the models trained in its {n} most recently active sessions, and yours "
                  "were dropped to make room: the pretrained models are active again. Download a run's checkpoint "
                  "to keep it.")
_REMEMBER_DROPPED = 10_000
DATASETS_KEPT = 4  # decoded test sets kept in memory (MNIST, Fashion-MNIST, a few uploads)


@dataclass(frozen=True)
class ActiveModel:
    model: Model
    source: str
    info: dict

    def describe(self) -> str:
        cfg = self.model.config
        metrics = self.info.get("metrics") or {}
        trained = f"{self.info.get('epochs_trained', '?')} epochs on {self.info.get('dataset', '?')}"
        if cfg.kind == "scvae":
            return (f"**Completion** ({cfg.objective}) from `{self.source}`: {cfg.arch}, latent {cfg.latent}, "
                    f"hidden {cfg.hidden}, {trained}, any 1–3 given quadrants")
        loss = f", test loss {metrics['test_loss']:.2f}" if "test_loss" in metrics else ""
        note = " (offline 5k subset)" if self.info.get("dataset_note") else ""
        return (f"**{cfg.kind.upper()}** from `{self.source}`: {cfg.arch}, latent {cfg.latent}, hidden {cfg.hidden}, "
                f"{cfg.likelihood} likelihood, {trained}{note}{loss}")


def open_checkpoint(path: Path, source: str) -> ActiveModel:
    ckpt = load_checkpoint(path)
    return ActiveModel(ckpt.model, source, ckpt.info)


class SessionModels:
    """Each session's own active models (role → model), least recently used dropped past `capacity`."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._own: OrderedDict[str, dict[str, ActiveModel]] = OrderedDict()
        self._dropped: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: str) -> dict[str, ActiveModel]:
        with self._lock:
            if session in self._own:
                self._own.move_to_end(session)
                return dict(self._own[session])
            return {}

    def set(self, session: str, role: str, active: ActiveModel) -> None:
        with self._lock:
            self._dropped.pop(session, None)
            self._own.setdefault(session, {})[role] = active
            self._own.move_to_end(session)
            while len(self._own) > self.capacity:
                gone, _ = self._own.popitem(last=False)
                self._dropped[gone] = None
                if len(self._dropped) > _REMEMBER_DROPPED:
                    self._dropped.popitem(last=False)

    def take_dropped(self, session: str) -> bool:
        """Whether this session's models were dropped since it last asked (said once)."""
        with self._lock:
            return self._dropped.pop(session, False) is None


class Studio:
    """The server's models, datasets and run; each session's view of them."""

    def __init__(self, settings: Settings, pretrained: dict[str, ActiveModel]):
        self.settings = settings
        self.pretrained = pretrained
        self.sessions = SessionModels(settings.max_sessions)
        self.run: LiveRun | None = None
        self._lock = threading.Lock()
        self._reading = threading.Lock()
        self._datasets: dict[str, Dataset] = {}
        self._uploads: dict[str, ZipUpload] = {}  # dataset name → the zip a run read it from
        self._on_disk: list[tuple[str, Path]] = []  # (session, run folder), oldest first

    @classmethod
    def open(cls, settings: Settings) -> Studio:
        pretrained = {role: open_checkpoint(settings.weights_dir / folder, f"weights/{folder}")
                      for role, folder in PRETRAINED.items()}
        process.warm()  # the first run's worker imports PyTorch now, not when someone presses Start
        process.leave_cores_to_training()
        return cls(settings, pretrained)

    # -- each session's models ------------------------------------------------------------
    def models(self, session: str) -> dict[str, ActiveModel]:
        return self.pretrained | self.sessions.get(session)

    def active(self, session: str, role: str) -> ActiveModel:
        return self.models(session)[role]

    def notice(self, session: str) -> str | None:
        """A sentence to show once if this session's own models were dropped for lack of room."""
        return DROPPED_NOTICE.format(n=self.sessions.capacity) if self.sessions.take_dropped(session) else None

    def describe(self, session: str) -> str:
        return "\n\n".join(f"- {active.describe()}" for active in self.models(session).values())

    def adopt_run(self, session: str) -> ActiveModel | None:
        """Make the last run's model active for this session too; None if it left no model."""
        run = self.run
        if run is None or run.result is None:
            return None
        self.sessions.set(session, run.kind, run.result)
        return run.result

    # -- data -------------------------------------------------------------------------------
    def test_data(self, active: ActiveModel) -> Dataset:
        """The data the model was trained on, read once (an upload from the zip its run read)."""
        name = active.info.get("dataset", "mnist")
        with self._lock:
            cached, source = self._datasets.get(name), self._uploads.get(name)
        if cached is None:
            if source is not None:
                with self._one_read():
                    cached = source.load()
            else:
                cached = load_dataset(name, image_size=active.model.config.image_shape[1:])
            with self._lock:
                self._datasets[name] = cached
                while len(self._datasets) > DATASETS_KEPT:  # oldest first; a dropped one is read again if asked
                    self._datasets.pop(next(iter(self._datasets)))
        return cached

    def upload(self, path: str, size: tuple[int, int], filename: str) -> tuple[ZipUpload, int]:
        """Survey an uploaded zip of pictures (structure, count, decoded size, classes) for a run to read.

        One survey at a time: a second upload arriving meanwhile is told to try again, so that
        uploads can never add up to hold the server. Named by content as well as file name,
        so two different zips called the same are never confused. Returns it and its classes.
        """
        with self._one_read():
            with open(path, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()[:10]
            source = ZipUpload(path, size, f"{filename} ({digest}, {size[0]}×{size[1]})")
            return source, source.survey()

    @contextlib.contextmanager
    def _one_read(self):
        if not self._reading.acquire(blocking=False):
            raise DataError("Another upload is being read right now; try again in a few seconds.")
        try:
            yield
        finally:
            self._reading.release()

    # -- the run ----------------------------------------------------------------------------
    def start_run(self, session: str, model: ModelConfig, train: TrainConfig,
                  upload: ZipUpload | None = None) -> tuple[LiveRun, bool]:
        """Start a run unless one is going; either way return the run to watch and whether it is new.

        `upload` is a surveyed zip, read by the run itself; the trainer loads any other dataset.
        """
        with self._lock:
            if self.run is not None and self.run.running:
                return self.run, False
            # unique even for two runs started within one second (one that failed at once, say)
            run_dir = self.settings.runs_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{model.kind}-{uuid.uuid4().hex[:6]}"
            # in a process of its own: see vae_core/train/process.py for why
            trainer = ProcessTrainer(model, replace(train, out=str(run_dir)), upload,
                                     on_epoch=functools.partial(epoch_pictures, seed=train.seed))
            self.run = LiveRun(trainer, model.kind, run_dir, session, self._finished)
            self._bound_disk(session, run_dir)
            self.run.start()
            return self.run, True

    def _bound_disk(self, session: str, run_dir: Path) -> None:
        """Delete the run folders (and zips) past each session's newest few and past the server's bound."""
        self._on_disk.append((session, run_dir))
        mine = [folder for owner, folder in self._on_disk if owner == session]
        doomed = set(mine[: -self.settings.runs_per_session])
        doomed |= {folder for _, folder in self._on_disk[: -self.settings.runs_kept]}
        for folder in doomed:
            shutil.rmtree(folder, ignore_errors=True)
            folder.with_suffix(".zip").unlink(missing_ok=True)
        self._on_disk = [(owner, folder) for owner, folder in self._on_disk if folder not in doomed]

    def stop(self) -> bool:
        run = self.run
        if run is None or not run.running:
            return False
        run.trainer.stop()
        return True

    def _finished(self, run: LiveRun) -> ActiveModel:
        """The run's checkpoint becomes its owner's active model (the collector thread calls this)."""
        result = open_checkpoint(run.run_dir, f"runs/{run.run_dir.name}")
        upload = run.trainer.dataset
        if upload is not None:  # later tabs draw test pictures from the zip
            with self._lock:
                self._uploads[upload.dataset_name] = upload
        self.sessions.set(run.owner, run.kind, result)
        return result
