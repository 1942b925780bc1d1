"""One training run as the browser sees it: plot rows, latest pictures, a status line.

The run itself is vae_core's Trainer thread, hosted in a worker process (ProcessTrainer);
this object only reads its events, so any number of browsers (or none) can watch, and a
browser that closes changes nothing.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vae_core.film import Film
from vae_core.images import png_bytes
from vae_core.kinds import LOSS_TERMS
from vae_core.models import spec
from vae_core.train import ProcessTrainer, is_final
from vae_core.train.events import (
    TRAIN_PREFIX,
    DatasetNote,
    Done,
    Epoch,
    Event,
    Failed,
    Final,
    Reading,
    Start,
    Step,
    Stopped,
)

from .run_history import FILM, GRID, part_name, term_label, zipped

log = logging.getLogger("vae_studio")
MAX_POINTS_PER_SERIES = 400
PLOT_COLUMNS = ["epoch", "nats", "series"]
LOSS_SERIES = ("train loss", "test loss")


def part_series(terms: tuple[str, ...]) -> tuple[str, ...]:
    """The parts plot's series for a kind's loss terms: each on the training batches, then each on the test set."""
    return tuple(part_name(term, where) for where in ("train", "test") for term in terms)


PART_SERIES = part_series(LOSS_TERMS)  # a VAE's, and the plot's before any run


@dataclass
class Snapshot:
    version: int
    pictures: int
    status: str  # as the session that started the run reads it
    others_status: str  # as every other session reads it
    progress_html: str
    loss_frame: pd.DataFrame
    parts_frame: pd.DataFrame
    grid: np.ndarray | None
    reconstructions: np.ndarray | None
    download: str | None
    finished: Final | None


# A run stopped for its time limit that has not ended this much later (or its limit's length,
# if shorter) has its worker ended.
STOP_GRACE_S = 60.0


class LiveRun:
    """Folds one Trainer's events into what a page shows; `owner` is the session that started it.

    When the run ends with a checkpoint, `on_finish(run)` turns it into a model (`result`),
    active for the owner; other sessions may adopt it.
    """

    def __init__(self, trainer: ProcessTrainer, role: str, run_dir: Path, owner: str,
                 on_finish: Callable[[LiveRun], Any], past: Sequence[dict] = (), time_limit_s: float | None = None):
        """`past`: the per-epoch history of the checkpoint a continued run resumes, drawn before its new epochs.
        `time_limit_s`: the run is stopped (as Stop does) this long after it started; None for no limit."""
        self.trainer, self.role, self.run_dir, self.owner = trainer, role, run_dir, owner
        self.on_finish = on_finish
        self.time_limit_s = time_limit_s
        self.timed_out = False  # stopped by the time limit (not by its owner)
        self._stop_asked = False
        self._killed = False  # its worker did not answer the stop and was ended
        self.result: Any = None
        self.started = time.monotonic()
        self.terms = spec(trainer.model_config.kind).loss_terms  # the parts of the loss its events report
        self.part_series = part_series(self.terms)
        self.loss_rows: list = []
        self.part_rows: list = []
        for entry in past:  # each past epoch's training figures as one point (its mean) at the epoch's end
            x = float(entry["epoch"])
            self._add_test(x, entry["test_loss"], {term: entry[term] for term in self.terms})
            self.loss_rows.append((x, entry.get("train_loss"), "train loss"))
            self._add_parts(x, {term: entry.get(TRAIN_PREFIX + term) for term in self.terms}, "train")
        self.grid: np.ndarray | None = None
        self.reconstructions: np.ndarray | None = None
        self.note = ""
        self.status = "Starting…"
        self.others_final = ""
        self.fraction = 0.0
        self.speed: float | None = None
        self.download: str | None = None
        self.finished: Final | None = None
        self.version = 0
        self.pictures = 0
        self.first_epoch, self.epochs = 1, trainer.config.epochs  # until the run's start event says (a resume)
        self.device = ""
        self.film = Film()
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._ended = threading.Event()
        self._events = trainer.subscribe()

    def start(self) -> None:
        """Start the trainer and the thread that folds its events in (it needs no browser watching).

        The trainer first: the thread may stop it, and its events wait in the queue meanwhile.
        """
        self.trainer.start()
        threading.Thread(target=self._collect, name="live-run", daemon=True).start()

    def stop(self) -> None:
        """Its owner's Stop: the trainer ends within a second, keeping its last finished epoch."""
        self._stop_asked = True
        self.trainer.stop()

    def _collect(self) -> None:
        """Fold events in until the final one; at the time limit stop the run, and if it has not ended a
        grace later (STOP_GRACE_S, or the limit if shorter), end its worker."""
        deadline = None if self.time_limit_s is None else self.started + self.time_limit_s
        grace = STOP_GRACE_S if self.time_limit_s is None else min(STOP_GRACE_S, self.time_limit_s)
        stopped_at_limit = False
        while True:
            wait = None if deadline is None else min(max(0.0, deadline - time.monotonic()), threading.TIMEOUT_MAX)
            try:
                event = self._events.get(timeout=wait)
            except queue.Empty:
                if stopped_at_limit:  # still going a grace after its stop: the worker hangs
                    log.warning("the run did not stop within %.0f s of its time limit; ending its worker", grace)
                    self._killed = True
                    self.trainer.kill()  # the worker's end arrives as the run's final event
                    deadline = None
                else:
                    stopped_at_limit = True
                    self.timed_out = not self._stop_asked  # an owner's Stop just before keeps its own words
                    self.trainer.stop()
                    deadline = time.monotonic() + grace
                continue
            if is_final(event):
                self._finish(event)  # one update: the page never shows a half-finished run
                return
            with self._lock:
                self._apply(event)
                self.version += 1

    def _finish(self, event: Final) -> None:
        download = None
        if event.checkpoint:
            try:
                download = str(zipped(self.run_dir))
                self._keep_pictures()
                self.result = self.on_finish(self)
            except Exception as exc:  # noqa: BLE001 - the run must still end, and say why
                log.exception("could not activate the finished run")
                event = Failed(kind=type(exc).__name__, checkpoint=None, time=event.time,
                               message=f"{event.message} But its checkpoint could not be loaded ({exc}).")
        with self._lock:
            self.download = download
            self.pictures += 1
            self.finished = event
            self.status, self.others_final = self._final_texts(event)
            self.version += 1
        self._ended.set()

    def _keep_pictures(self) -> None:
        """The run's film and last sample grid, beside its folder, for the Runs tab."""
        if self.film.frames and self.grid is not None:
            self.run_dir.with_suffix(FILM).write_bytes(self.film.gif())
            self.run_dir.with_suffix(GRID).write_bytes(png_bytes(self.grid))

    def time_left(self) -> float | None:
        """Seconds until the run's time limit stops it; None without a limit."""
        if self.time_limit_s is None:
            return None
        return max(0.0, self.started + self.time_limit_s - time.monotonic())

    def wait(self, timeout: float | None = None) -> bool:
        return self._ended.wait(timeout)

    def snapshot(self) -> Snapshot:
        """The run as it stands; rebuilt only when an event arrived since the last look."""
        with self._lock:
            if self._snapshot is None or self._snapshot.version != self.version:
                self._snapshot = Snapshot(
                    self.version, self.pictures, self._status_text(self.status),
                    self._status_text(self.others_final or self.status), self._progress_html(),
                    plot_frame(self.loss_rows, LOSS_SERIES), plot_frame(self.part_rows, self.part_series),
                    self.grid, self.reconstructions, self.download, self.finished,
                )
            return self._snapshot

    @property
    def running(self) -> bool:
        return not self._ended.is_set()

    @functools.singledispatchmethod
    def _apply(self, event: Event) -> None:
        """Fold one event into what the page shows, by its type (the final one goes to `_finish`)."""

    @_apply.register
    def _apply_note(self, event: DatasetNote) -> None:
        self.note = event.dataset_note

    @_apply.register
    def _apply_reading(self, event: Reading) -> None:
        self.status = f"Reading your pictures: {event.done:,} of {event.total:,} files…"

    @_apply.register
    def _apply_start(self, event: Start) -> None:
        self.first_epoch, self.epochs = event.first_epoch, event.epochs
        self.device = event.device
        self.status = f"Training on {event.device} · {event.n_train:,} images · {event.parameters:,} parameters"

    @_apply.register
    def _apply_step(self, event: Step) -> None:
        x = event.progress
        self.loss_rows.append((x, event.loss, "train loss"))
        self._add_parts(x, event.terms, "train")
        self.fraction = (x - self.first_epoch + 1) / (self.epochs - self.first_epoch + 1)

    @_apply.register
    def _apply_epoch(self, event: Epoch) -> None:
        self._add_test(float(event.epoch), event.test_loss, event.terms)
        self.grid, self.reconstructions = event.extras["grid"], event.extras["reconstructions"]
        self.film.add(event.epoch, event.test_loss, self.grid)
        self.pictures += 1
        self.speed = event.samples_per_s
        parts = " + ".join(f"{term_label(term)} {value:.2f}" for term, value in event.terms.items())
        self.status = f"Epoch {event.epoch}/{event.epochs}: test loss {event.test_loss:.2f} ({parts}) nats per image"

    def _add_test(self, x: float, loss: float, terms: dict[str, float]) -> None:
        """An epoch's test figures on the curves (its training figures arrive step by step)."""
        self.loss_rows.append((x, loss, "test loss"))
        self._add_parts(x, terms, "test")

    def _add_parts(self, x: float, terms: Mapping[str, float | None], where: str) -> None:
        self.part_rows += [(x, value, part_name(term, where)) for term, value in terms.items()]

    def _final_texts(self, event: Final) -> tuple[str, str]:
        """How the run ended, for the session that started it and for everyone else."""
        kept = bool(event.checkpoint)
        title = spec(self.result.model.config.kind).title if kept and self.result is not None else ""
        theirs = f" Its {title} is active for whoever started it; the button below uses it in your tabs." \
            if kept else ""
        judged = f"\n\n{self.result.info['recognition']}" if kept and "recognition" in self.result.info else ""
        return self._ending(event, kept, title, theirs, judged)

    @functools.singledispatchmethod
    def _ending(self, event: Final, kept: bool, title: str, theirs: str, judged: str) -> tuple[str, str]:
        """`_final_texts` for each kind of ending: `theirs` and `judged` end the texts where they apply."""
        raise TypeError(f"{type(event).__name__} does not end a run")

    @_ending.register
    def _done_texts(self, event: Done, kept: bool, title: str, theirs: str, judged: str) -> tuple[str, str]:
        return (f"✅ Done: {event.message}. The new {title} is now the active model in every tab.{judged}",
                f"✅ Done: {event.message}.{theirs}{judged}")

    @_ending.register
    def _stopped_texts(self, event: Stopped, kept: bool, title: str, theirs: str, judged: str) -> tuple[str, str]:
        message = f"{self._limit_text()}. {event.message}" if self.timed_out else event.message
        return f"⏹ Stopped. {message}{' It is now the active model.' if kept else ''}{judged}", \
            f"⏹ Stopped. {message}{theirs}{judged}"

    @_ending.register
    def _failed_texts(self, event: Failed, kept: bool, title: str, theirs: str, judged: str) -> tuple[str, str]:
        message = event.message
        if self._killed:
            message = f"{self._limit_text()}, and this one did not stop, so its process was ended: {message}"
        return (f"⚠️ Training failed: {message}{' That checkpoint is now the active model.' if kept else ''}",
                f"⚠️ Training failed: {message}{theirs}")

    def _limit_text(self) -> str:
        return f"This server stops a run after {_duration(self.time_limit_s)}" if self.time_limit_s else ""

    def _status_text(self, status: str) -> str:
        note = f"\n\n> ℹ️ {self.note}" if self.note else ""
        return status + note

    def _progress_html(self) -> str:
        pct = 100 * min(max(self.fraction, 0.0), 1.0)
        # finished epochs, the number the status line and Stop's message use too
        done = min(self.epochs, self.first_epoch - 1 + int(self.fraction * (self.epochs - self.first_epoch + 1)))
        parts = [f"{done}/{self.epochs} epochs done"] + ([self.device] if self.device else [])
        if self.speed:
            parts.append(f"{self.speed:,.0f} images/s")
        elapsed = time.monotonic() - self.started
        if self.finished is None and 0.02 < self.fraction < 1:
            parts.append(f"ETA {_duration(elapsed * (1 - self.fraction) / self.fraction)}")
        elif self.finished is not None:
            parts.append(f"took {_duration(elapsed)}")
        return (f'<div class="run-progress"><progress value="{pct:.1f}" max="100"></progress>'
                f'<span>{" · ".join(parts)}</span></div>')


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def plot_frame(rows: list, series: tuple[str, ...]) -> pd.DataFrame:
    """Long format for gr.LinePlot, each series thinned to at most MAX_POINTS_PER_SERIES points.

    Every series is in every frame: a plot that first sees no series never draws the lines
    of later updates (Gradio 6.31). A series with no point yet gets two NaN rows, which draw
    nothing, at epochs 0 and 1, so that an empty plot's axis spans an epoch rather than the
    single tick "0.000000". A series with points gets none: a NaN among them, at epoch 1,
    cut its line there and left the first epoch's lone point undrawn.
    """
    frame = pd.DataFrame(rows, columns=PLOT_COLUMNS)
    parts = []
    for name in series:  # always in this order, so that no series changes colour mid-run
        own = frame[frame["series"] == name]
        if own.empty:
            own = pd.DataFrame([(x, float("nan"), name) for x in (0.0, 1.0)], columns=PLOT_COLUMNS)
        step = max(1, len(own) // MAX_POINTS_PER_SERIES)
        parts.append(own.iloc[::-1].iloc[::step].iloc[::-1])
    return pd.concat(parts, ignore_index=True)
