"""The server's one training run at a time, and the run folders each session keeps on disk.

Tabs start, continue, stop and watch runs only through `RunManager`; a finished run's
checkpoint becomes its owner's model in the owners' store.
"""

from __future__ import annotations

import functools
import math
import shutil
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

from vae_core.card import model_card
from vae_core.checkpoint import (
    CARD,
    CONFIG,
    CheckpointError,
    checkpoint_from_files,
    load_checkpoint,
    read_checkpoint_zip,
    write_files,
)
from vae_core.config import LIMITS, ModelConfig, TrainConfig
from vae_core.datasets import DATASETS, ZIP_PREFIX, DataError, ZipUpload
from vae_core.explore import epoch_pictures
from vae_core.images import png_bytes
from vae_core.models import LabelConditioned
from vae_core.train import ProcessTrainer

from .catalogue import ActiveModel, Catalogue, as_active, open_checkpoint
from .data_cache import DataCache
from .live_run import LiveRun
from .owners import SessionModels
from .run_history import FILM, GRID, ORIGIN, ZIP
from .settings import Settings

# what a continued run keeps of its checkpoint's settings (each checked by TrainConfig); the rest is the server's
RESUMED_SETTINGS = ("batch_size", "lr", "seed", "kl_warmup", "shift", "step_every")
TEST_PICTURES = 64  # enough test pictures for a preview grid (a completion model shows 8 of them)


class RunManager:
    """Starts and stops the run, keeps each session's run folders within the disk bounds, imports checkpoints."""

    def __init__(self, settings: Settings, catalogue: Catalogue, owners: SessionModels, data: DataCache):
        self.settings, self.catalogue, self.owners, self.data = settings, catalogue, owners, data
        self.current: LiveRun | None = None  # the last run started (maybe finished)
        self._lock = threading.Lock()
        self._on_disk: list[tuple[str, Path]] = []  # (session, run folder), oldest first
        self._roles: dict[Path, str] = {}  # run folder → the role its model takes (`ModelConfig.role`)

    # -- each session's run folders ------------------------------------------------------------
    def of(self, session: str) -> list[Path]:
        """This session's run folders that hold a checkpoint, newest first (the disk bound keeps a few)."""
        return [folder for owner, folder in reversed(self._on_disk) if owner == session and (folder / CONFIG).is_file()]

    def own(self, session: str, source: str) -> Path:
        """The folder of `source` (`runs/…`) if it is one of this session's runs; DataError otherwise."""
        if not source:
            raise DataError("Pick a run first: train one, or bring back a checkpoint")
        for folder in self.of(session):
            if source == f"runs/{folder.name}":
                return folder
        raise DataError(f"{str(source)[:80]} is not one of this session's runs; pick one from the list")

    def role_of(self, folder: Path) -> str | None:
        """The role the model in one of the runs' folders takes, as recorded when the folder was made."""
        return self._roles.get(folder)

    # -- the run -------------------------------------------------------------------------------
    def start(self, session: str, model: ModelConfig, train: TrainConfig,
              upload: ZipUpload | None = None, past: list[dict] | None = None) -> tuple[LiveRun, bool]:
        """Start a run unless one is going; either way return the run to watch and whether it is new.

        `upload` is a surveyed zip, read by the run itself; the trainer loads any other dataset.
        `past` is a continued run's history, which its curves start with.
        """
        with self._lock:
            if self.current is not None and self.current.running:
                return self.current, False
            run_dir = self._new_run_dir(model.role)
            # in a process of its own: see vae_core/train/process.py for why
            trainer = ProcessTrainer(model, replace(train, out=str(run_dir)), upload,
                                     on_epoch=functools.partial(epoch_pictures, seed=train.seed))
            limit = self.settings.max_run_minutes * 60 or None
            self.current = LiveRun(trainer, model.role, run_dir, session, self._finished, past or [], limit)
            self._bound_disk(session, run_dir, model.role)
            self.current.start()
            return self.current, True

    def continue_run(self, session: str, source: str, epochs: int) -> tuple[LiveRun, bool]:
        """Train one of this session's runs (or a checkpoint it brought back) `epochs` more, with its own settings.

        The run resumes with its optimizer state where the checkpoint has one, into a new run
        folder, so the original stays as it was; its epoch count continues.
        """
        folder = self.own(session, source)
        ckpt = load_checkpoint(folder)
        total = int(ckpt.info.get("epochs_trained", 0)) + epochs
        if total > LIMITS["epochs"].hi:
            raise DataError(f"that would make {total:,} epochs, over the limit of {LIMITS['epochs'].hi:,.0f}")
        dataset = ckpt.info.get("dataset", "mnist")
        upload = self.data.upload_of(dataset)
        if upload is None and dataset not in DATASETS:
            raise DataError(f"this run's pictures ({dataset.removeprefix(ZIP_PREFIX)}) are no longer on this server, "
                            "so it cannot train further here; train it with the CLI on your own copy")
        past = ckpt.info.get("train", {})
        # the run's own choices, each checked by TrainConfig; the data is the checked dataset, never a path
        kept = {key: past[key] for key in RESUMED_SETTINGS if key in past}
        train = TrainConfig(**kept, dataset=dataset, epochs=total, resume=str(folder),
                            device=self.settings.train_device,
                            image_size=tuple(past["image_size"]) if past.get("image_size") else None)
        return self.start(session, ckpt.model.config, train, upload, ckpt.info.get("history", []))

    def stop(self, session: str) -> str:
        """Stop the session's own run; what happened, in a sentence.

        Only the session that started a run may stop it: on a shared server a stranger's Stop
        would otherwise end anyone's run. The time limit frees the trainer when its owner is gone.
        """
        run = self.current
        if run is None or not run.running:
            return "No run is in progress."
        if run.owner != session:
            left = run.time_left()
            ends = f" It ends by itself within {_minutes(left)} at the latest." if left is not None else ""
            return ("The run in progress was started in another page (another visitor's, or one of yours "
                    f"before a reload), and only that page can stop it.{ends}")
        run.stop()
        return "Stopping: the run ends within a second and keeps its last finished epoch."

    def adopt(self, session: str) -> ActiveModel | None:
        """Make the last run's model active for this session too; None if it left no model."""
        run = self.current
        if run is None or run.result is None:
            return None
        self.owners.set(session, run.role, run.result, trained=False)
        return run.result

    def _finished(self, run: LiveRun) -> ActiveModel:
        """The run's checkpoint becomes its owner's active model (the collector thread calls this)."""
        result = self.catalogue.judged(open_checkpoint(run.run_dir, f"runs/{run.run_dir.name}"))
        if isinstance(run.trainer.dataset, ZipUpload):  # later tabs draw test pictures from the zip
            self.data.keep_upload(run.trainer.dataset)
        self.owners.set(run.owner, run.role, result, trained=True)
        return result

    # -- checkpoints from elsewhere ------------------------------------------------------------
    def bring_back(self, session: str, zip_path: str, filename: str) -> ActiveModel:
        """A checkpoint zip someone uploaded: checked whole, kept as one of this session's runs, and made active.

        Its files are checked in memory before anything is allocated or written (see
        `checkpoint_from_files`); the model card is written afresh from the checked config.
        """
        with self.data.one_read():
            files = read_checkpoint_zip(zip_path, filename)
            ckpt = checkpoint_from_files(files, filename, foreign=True)
        dataset = ckpt.info.get("dataset", "mnist")
        if not self.data.here(dataset):
            raise CheckpointError(f"{filename} was trained on pictures uploaded to another server "
                                  f"({dataset.removeprefix(ZIP_PREFIX)[:80]}); this server shows models of "
                                  f"{', '.join(DATASETS)} or of a zip uploaded here")
        data = self.data.test_data(as_active(ckpt, filename))  # the tabs' test pictures; and the check below
        data.check_fits(ckpt.model.config, isinstance(ckpt.model, LabelConditioned), ckpt.info.get("class_names"),
                        filename)
        role = ckpt.model.config.role
        folder = self._new_run_dir(role)
        write_files(folder, {**{k: v for k, v in files.items() if k != CARD}, CARD: model_card(ckpt.info).encode()})
        folder.with_suffix(ORIGIN).write_text(filename)
        # its final grid, as a run trained here has one, for the Runs tab
        x, labels = data.tensors("test", limit=TEST_PICTURES)
        folder.with_suffix(GRID).write_bytes(png_bytes(epoch_pictures(ckpt.model, x, labels)["grid"]))
        with self._lock:
            self._bound_disk(session, folder, role)
        active = self.catalogue.judged(as_active(ckpt, f"runs/{folder.name}"))
        self.owners.set(session, role, active, trained=True)
        return active

    # -- disk ----------------------------------------------------------------------------------
    def _new_run_dir(self, role: str) -> Path:
        # unique even for two runs started within one second (one that failed at once, say)
        return self.settings.runs_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{role}-{uuid.uuid4().hex[:6]}"

    def _bound_disk(self, session: str, run_dir: Path, role: str) -> None:
        """Delete run folders (with zip, film and grid) past each session's newest few and past the server's bound."""
        self._on_disk.append((session, run_dir))
        self._roles[run_dir] = role
        mine = [folder for owner, folder in self._on_disk if owner == session]
        doomed = set(mine[: -self.settings.runs_per_session])
        doomed |= {folder for _, folder in self._on_disk[: -self.settings.runs_kept]}
        for folder in doomed:
            shutil.rmtree(folder, ignore_errors=True)
            for suffix in (ZIP, FILM, GRID, ORIGIN):
                folder.with_suffix(suffix).unlink(missing_ok=True)
            self._roles.pop(folder, None)
        self._on_disk = [(owner, folder) for owner, folder in self._on_disk if folder not in doomed]


def _minutes(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))  # "at the latest": rounded up
    return f"{minutes} minute{'s' if minutes > 1 else ''}"
