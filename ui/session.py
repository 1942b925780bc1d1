"""Who holds which model: the pretrained ones for everyone, a run's result for the session that trained it.

The server has one set of pretrained models, one dataset cache and at most one live
training run; every browser session (a page, or one gradio_client) has its own active
models. A session starts on the pretrained models; a run's model becomes active for the
session that started it, and any other session can adopt it. Sessions' own models are
kept for the `max_sessions` most recently active sessions that trained (within a memory
bound; see `SessionModels`); an older session that comes back is told once that its models
were dropped, and is on the pretrained ones again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

from vae_core.card import model_card
from vae_core.checkpoint import (
    CARD,
    CONFIG,
    Checkpoint,
    CheckpointError,
    checkpoint_from_files,
    load_checkpoint,
    read_checkpoint_zip,
    write_files,
)
from vae_core.config import LIMITS, ModelConfig, TrainConfig, options_of
from vae_core.datasets import DATASETS, ZIP_PREFIX, DataError, Dataset, ZipUpload, load_dataset
from vae_core.explore import epoch_pictures
from vae_core.images import png_bytes
from vae_core.models import LabelConditioned, Model, kinds, spec
from vae_core.recognize import can_judge, describe, load_judge, recognized
from vae_core.train import ProcessTrainer, process

from .live_run import LiveRun
from .run_history import FILM, GRID, ORIGIN, ZIP
from .settings import Settings

# what a continued run keeps of its checkpoint's settings (each checked by TrainConfig); the rest is the server's
RESUMED_SETTINGS = ("batch_size", "lr", "seed", "kl_warmup", "shift", "step_every")
TEST_PICTURES = 64  # enough test pictures for a preview grid (a completion model shows 8 of them)
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
DROPPED_NOTICE = ("This server keeps the models of its {n} most recently active training sessions, and yours "
                  "were dropped to make room: the pretrained models are active again. Download a run's checkpoint "
                  "to keep it.")
_REMEMBER_DROPPED = 10_000
# Decoded datasets kept in memory, newest first: MNIST and Fashion-MNIST are 55 MB each, an
# upload at most 250 MB (its pixel budget); an older one is read again when asked for.
DATASET_BYTES_KEPT = 1_000_000_000


@dataclass(frozen=True)
class ActiveModel:
    model: Model
    source: str
    info: dict

    def describe(self) -> str:
        cfg = self.model.config
        metrics = self.info.get("metrics") or {}
        trained = f"{self.info.get('epochs_trained', '?')} epochs on {self.info.get('dataset', '?')}"
        loss = f", test loss {metrics['test_loss']:.2f}" if "test_loss" in metrics else ""
        note = " (offline 5k subset)" if self.info.get("dataset_note") else ""
        own = "".join(f", {name.replace('_', ' ')} {getattr(cfg, name)}" for name in options_of(type(cfg))
                      if name not in options_of(ModelConfig))  # the kind's own settings
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


def trim_to(datasets: dict[str, Dataset], max_bytes: int) -> None:
    """Drop the oldest datasets until the rest fit in `max_bytes`; the newest is always kept."""
    while len(datasets) > 1 and sum(d.nbytes for d in datasets.values()) > max_bytes:
        datasets.pop(next(iter(datasets)))


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


class Studio:
    """The server's models, datasets and run; each session's view of them."""

    def __init__(self, settings: Settings, pretrained: dict[str, ActiveModel],
                 shipped: dict[str, dict[str, ActiveModel]] | None = None):
        self.settings = settings
        self.pretrained = pretrained
        # role → {source: model}: every shipped checkpoint a session may pick for that role
        self.shipped = shipped or {role: {active.source: active} for role, active in pretrained.items()}
        self.judge = load_judge(settings.weights_dir / JUDGE)
        self.sessions = SessionModels(settings.max_sessions, settings.max_model_mb * 1_000_000)
        self.run: LiveRun | None = None
        self._lock = threading.Lock()
        self._reading = threading.Lock()
        self._loading = threading.Lock()
        self._datasets: dict[str, Dataset] = {}
        self._uploads: dict[str, ZipUpload] = {}  # dataset name → the zip a run read it from
        self._on_disk: list[tuple[str, Path]] = []  # (session, run folder), oldest first
        self._roles: dict[Path, str] = {}  # run folder → the role its model takes (`ModelConfig.role`)
        self._recognition: dict[str, str] = {}  # shipped model's source → its recognizability

    @classmethod
    def open(cls, settings: Settings) -> Studio:
        folders = {*PRETRAINED.values(), *(f for kind in kinds().values() for f in kind.pretrained)}
        opened = {folder: open_checkpoint(settings.weights_dir / folder, f"weights/{folder}") for folder in folders}
        pretrained = {role: opened[folder] for role, folder in PRETRAINED.items()}
        # role → {source: model}: every shipped checkpoint a session may pick for that role
        shipped = {role: {opened[f].source: opened[f] for f in (folder, *_kind_pretrained(role))}
                   for role, folder in PRETRAINED.items()}
        process.warm()  # the first run's worker imports PyTorch now, not when someone presses Start
        process.leave_cores_to_training()
        studio = cls(settings, pretrained, shipped)
        # the tabs' first test digits must not wait seconds for the test set: read it now, in the background
        first = next(iter(pretrained.values()))
        threading.Thread(target=studio.test_data, args=(first,), name="read-test-set", daemon=True).start()
        return studio

    # -- each session's models ------------------------------------------------------------
    def models(self, session: str) -> dict[str, ActiveModel]:
        return self.pretrained | self.sessions.get(session)

    def active(self, session: str, role: str) -> ActiveModel:
        """This session's model for `role`: a kind's name, or a pretrained companion's (`KindSpec.companions`)."""
        return self.models(session)[role]

    def model_for(self, session: str, capability: type, kind: str | None = None) -> ActiveModel:
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
                return models[name]
        what = f"no {kind} model yet (train one)" if kind else "no model"
        raise DataError(f"This session has {what} that can do that; its models that can: "
                        f"{', '.join(self.kinds_for(session, capability)) or 'none'}")

    def kinds_for(self, session: str, capability: type) -> list[str]:
        """The kinds of this session's models that have `capability`, in the registry's order."""
        models = self.models(session)
        return [name for name in kinds() if name in models and isinstance(models[name].model, capability)]

    def notice(self, session: str) -> str | None:
        """A sentence to show once if this session's own models were dropped for lack of room."""
        return DROPPED_NOTICE.format(n=self.sessions.capacity) if self.sessions.take_dropped(session) else None

    def choices(self, session: str, role: str) -> list[str]:
        """What this session may pick for `role`: the shipped checkpoints, then its own runs still on disk."""
        return [*self.shipped[role], *(f"runs/{folder.name}" for folder in self.runs(session)
                                       if self._roles.get(folder) == role)]

    def runs(self, session: str) -> list[Path]:
        """This session's run folders that hold a checkpoint, newest first (the disk bound keeps a few)."""
        return [folder for owner, folder in reversed(self._on_disk) if owner == session and (folder / CONFIG).is_file()]

    def choose(self, session: str, role: str, source: str) -> None:
        """Make `source` (one of `choices`) this session's model for `role`."""
        if source not in self.choices(session, role):
            raise DataError(f"{source} is not a model this session can pick for the {role.upper()}")
        if source in self.shipped[role]:
            self.sessions.set(session, role, self.shipped[role][source], trained=False)
        else:
            self.sessions.set(session, role, open_checkpoint(self.own_run(session, source), source), trained=True)

    def choose_run(self, session: str, source: str) -> ActiveModel:
        """Make one of this session's runs (`runs/…`) its model for the role that run's model takes."""
        role = self._roles[self.own_run(session, source)]
        self.choose(session, role, source)
        return self.active(session, role)

    def own_run(self, session: str, source: str) -> Path:
        """The folder of `source` (`runs/…`) if it is one of this session's runs; DataError otherwise."""
        if not source:
            raise DataError("Pick a run first: train one, or bring back a checkpoint")
        for folder in self.runs(session):
            if source == f"runs/{folder.name}":
                return folder
        raise DataError(f"{str(source)[:80]} is not one of this session's runs; pick one from the list")

    def restore(self, session: str) -> None:
        """Back to the pretrained models; the session's runs stay on disk, to be picked again."""
        self.sessions.forget(session)

    def describe(self, session: str) -> str:
        return "\n\n".join(f"- {active.describe()}" for active in self.models(session).values())

    def adopt_run(self, session: str) -> ActiveModel | None:
        """Make the last run's model active for this session too; None if it left no model."""
        run = self.run
        if run is None or run.result is None:
            return None
        self.sessions.set(session, run.role, run.result, trained=False)
        return run.result

    # -- data -------------------------------------------------------------------------------
    def test_data(self, active: ActiveModel) -> Dataset:
        """The data the model was trained on, read once (an upload from the zip its run read)."""
        name = active.info.get("dataset", "mnist")
        with self._lock:
            cached, source = self._datasets.get(name), self._uploads.get(name)
        if cached is not None:
            return cached
        with self._loading:  # one read of each: a second caller waits for the first's, then finds it
            with self._lock:
                cached = self._datasets.get(name)
            if cached is None:
                if source is not None:
                    with self._one_read():
                        cached = source.load()
                else:
                    cached = load_dataset(name, image_size=active.model.config.image_shape[1:])
                with self._lock:
                    self._datasets[name] = cached
                    trim_to(self._datasets, DATASET_BYTES_KEPT)
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
                  upload: ZipUpload | None = None, past: list[dict] = ()) -> tuple[LiveRun, bool]:
        """Start a run unless one is going; either way return the run to watch and whether it is new.

        `upload` is a surveyed zip, read by the run itself; the trainer loads any other dataset.
        `past` is a continued run's history, which its curves start with.
        """
        with self._lock:
            if self.run is not None and self.run.running:
                return self.run, False
            run_dir = self._new_run_dir(model.role)
            # in a process of its own: see vae_core/train/process.py for why
            trainer = ProcessTrainer(model, replace(train, out=str(run_dir)), upload,
                                     on_epoch=functools.partial(epoch_pictures, seed=train.seed))
            limit = self.settings.max_run_minutes * 60 or None
            self.run = LiveRun(trainer, model.role, run_dir, session, self._finished, past, limit)
            self._bound_disk(session, run_dir, model.role)
            self.run.start()
            return self.run, True

    def _new_run_dir(self, role: str) -> Path:
        # unique even for two runs started within one second (one that failed at once, say)
        return self.settings.runs_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{role}-{uuid.uuid4().hex[:6]}"

    def continue_run(self, session: str, source: str, epochs: int) -> tuple[LiveRun, bool]:
        """Train one of this session's runs (or a checkpoint it brought back) `epochs` more, with its own settings.

        The run resumes with its optimizer state where the checkpoint has one, into a new run
        folder, so the original stays as it was; its epoch count continues.
        """
        folder = self.own_run(session, source)
        ckpt = load_checkpoint(folder)
        total = int(ckpt.info.get("epochs_trained", 0)) + epochs
        if total > LIMITS["epochs"].hi:
            raise DataError(f"that would make {total:,} epochs, over the limit of {LIMITS['epochs'].hi:,.0f}")
        dataset = ckpt.info.get("dataset", "mnist")
        with self._lock:
            upload = self._uploads.get(dataset)
        if upload is None and dataset not in DATASETS:
            raise DataError(f"this run's pictures ({dataset.removeprefix(ZIP_PREFIX)}) are no longer on this server, "
                            "so it cannot train further here; train it with the CLI on your own copy")
        past = ckpt.info.get("train", {})
        # the run's own choices, each checked by TrainConfig; the data is the checked dataset, never a path
        kept = {key: past[key] for key in RESUMED_SETTINGS if key in past}
        train = TrainConfig(**kept, dataset=dataset, epochs=total, resume=str(folder),
                            device=self.settings.train_device,
                            image_size=tuple(past["image_size"]) if past.get("image_size") else None)
        return self.start_run(session, ckpt.model.config, train, upload, ckpt.info.get("history", []))

    def bring_back(self, session: str, zip_path: str, filename: str) -> ActiveModel:
        """A checkpoint zip someone uploaded: checked whole, kept as one of this session's runs, and made active.

        Its files are checked in memory before anything is allocated or written (see
        `checkpoint_from_files`); the model card is written afresh from the checked config.
        """
        with self._one_read():
            files = read_checkpoint_zip(zip_path, filename)
            ckpt = checkpoint_from_files(files, filename, foreign=True)
        dataset = ckpt.info.get("dataset", "mnist")
        with self._lock:
            here = dataset in DATASETS or dataset in self._uploads
        if not here:
            raise CheckpointError(f"{filename} was trained on pictures uploaded to another server "
                                  f"({dataset.removeprefix(ZIP_PREFIX)[:80]}); this server shows models of "
                                  f"{', '.join(DATASETS)} or of a zip uploaded here")
        config = ckpt.model.config
        data = self.test_data(as_active(ckpt, filename))  # the tabs' test pictures; and the check below
        fitted = data.fit(config)
        labelled = isinstance(ckpt.model, LabelConditioned)
        if fitted.image_shape != config.image_shape or (labelled and fitted.n_classes != config.n_classes):
            raise CheckpointError(f"{filename} says it was trained on {dataset}, but its model takes "
                                  f"{config.n_classes} classes of {'×'.join(map(str, config.image_shape))} pictures "
                                  f"and {dataset} has {fitted.n_classes} of "
                                  f"{'×'.join(map(str, fitted.image_shape))}")
        if ckpt.info.get("class_names", list(data.class_names)) != list(data.class_names):
            raise CheckpointError(f"{filename} names its classes differently from {dataset}'s")
        role = config.role
        folder = self._new_run_dir(role)
        write_files(folder, {**{k: v for k, v in files.items() if k != CARD}, CARD: model_card(ckpt.info).encode()})
        folder.with_suffix(ORIGIN).write_text(filename)
        # its final grid, as a run trained here has one, for the Runs tab
        x, labels = data.tensors("test", limit=TEST_PICTURES)
        folder.with_suffix(GRID).write_bytes(png_bytes(epoch_pictures(ckpt.model, x, labels)["grid"]))
        self._bound_disk(session, folder, role)
        active = self._judged(as_active(ckpt, f"runs/{folder.name}"))
        self.sessions.set(session, role, active, trained=True)
        return active

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
        self._on_disk = [(owner, folder) for owner, folder in self._on_disk if folder not in doomed]
        for folder in doomed:
            self._roles.pop(folder, None)

    def stop(self, session: str) -> str:
        """Stop the session's own run; what happened, in a sentence.

        Only the session that started a run may stop it: on a shared server a stranger's Stop
        would otherwise end anyone's run. The time limit frees the trainer when its owner is gone.
        """
        run = self.run
        if run is None or not run.running:
            return "No run is in progress."
        if run.owner != session:
            left = run.time_left()
            ends = f" It ends by itself within {_minutes(left)} at the latest." if left is not None else ""
            return ("The run in progress was started in another page (another visitor's, or one of yours "
                    f"before a reload), and only that page can stop it.{ends}")
        run.stop()
        return "Stopping: the run ends within a second and keeps its last finished epoch."

    def _finished(self, run: LiveRun) -> ActiveModel:
        """The run's checkpoint becomes its owner's active model (the collector thread calls this)."""
        result = self._judged(open_checkpoint(run.run_dir, f"runs/{run.run_dir.name}"))
        upload = run.trainer.dataset
        if upload is not None:  # later tabs draw test pictures from the zip
            with self._lock:
                self._uploads[upload.dataset_name] = upload
        self.sessions.set(run.owner, run.role, result, trained=True)
        return result

    def _judged(self, active: ActiveModel) -> ActiveModel:
        """A labelled model of MNIST digits gets its recognizability beside its shipped kind's, for the run's end."""
        shipped = self.pretrained.get(active.model.config.role)
        if not can_judge(active.model, active.info.get("dataset", "")) or shipped is None:
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


def _minutes(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))  # "at the latest": rounded up
    return f"{minutes} minute{'s' if minutes > 1 else ''}"
