"""One training run as the browser sees it: plot rows, latest pictures, a status line.

The run itself is vae_core's Trainer thread; this object only reads its events, so any
number of browsers (or none) can watch, and a browser that closes changes nothing.
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vae_core.trainer import Trainer

log = logging.getLogger("vae_studio")
MAX_POINTS_PER_SERIES = 400
PLOT_COLUMNS = ["epoch", "nats", "series"]
LOSS_SERIES = ("train loss", "test loss")
PART_SERIES = ("recon (train)", "KL (train)", "recon (test)", "KL (test)")


@dataclass
class Snapshot:
    version: int
    pictures: int
    status: str
    progress_html: str
    loss_frame: pd.DataFrame
    parts_frame: pd.DataFrame
    grid: np.ndarray | None
    reconstructions: np.ndarray | None
    download: str | None
    finished: dict | None


@dataclass
class LiveRun:
    trainer: Trainer
    kind: str
    run_dir: Path
    on_finish: Callable[[LiveRun], None]
    started: float = field(default_factory=time.monotonic)
    loss_rows: list = field(default_factory=list)
    part_rows: list = field(default_factory=list)
    grid: np.ndarray | None = None
    reconstructions: np.ndarray | None = None
    note: str = ""
    status: str = "Starting…"
    fraction: float = 0.0
    speed: float | None = None
    download: str | None = None
    finished: dict | None = None
    version: int = 0
    pictures: int = 0
    first_epoch: int = 1
    epochs: int = 1

    def __post_init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._ended = threading.Event()
        events = self.trainer.subscribe()
        threading.Thread(target=self._collect, args=(events,), name="live-run", daemon=True).start()

    def _collect(self, events: queue.Queue) -> None:
        """Fold events in as they come, so the run ends properly even with no browser watching."""
        while True:
            event = events.get()
            if event["event"] in ("done", "stopped", "error"):
                self._finish(event)  # one update: the page never shows a half-finished run
                return
            with self._lock:
                self._apply(event)
                self.version += 1

    def _finish(self, event: dict) -> None:
        download = None
        if event.get("checkpoint"):
            try:
                download = shutil.make_archive(str(self.run_dir), "zip", self.run_dir)
                self.on_finish(self)
            except Exception as exc:  # noqa: BLE001 - the run must still end, and say why
                log.exception("could not activate the finished run")
                event = {**event, "event": "error", "checkpoint": None,
                         "message": f"{event['message']} But its checkpoint could not be loaded ({exc})."}
        with self._lock:
            self.download = download
            self.pictures += 1
            self.finished = event
            self.status = self._final_text(event)
            self.version += 1
        self._ended.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._ended.wait(timeout)

    def snapshot(self) -> Snapshot:
        """The run as it stands; rebuilt only when an event arrived since the last look."""
        with self._lock:
            if self._snapshot is None or self._snapshot.version != self.version:
                self._snapshot = Snapshot(
                    self.version, self.pictures, self._status_text(), self._progress_html(),
                    plot_frame(self.loss_rows, LOSS_SERIES), plot_frame(self.part_rows, PART_SERIES),
                    self.grid, self.reconstructions, self.download, self.finished,
                )
            return self._snapshot

    @property
    def running(self) -> bool:
        return not self._ended.is_set()

    def _apply(self, event: dict) -> None:
        kind = event["event"]
        if kind == "dataset_note":
            self.note = event["dataset_note"]
        elif kind == "start":
            self.first_epoch, self.epochs = event["first_epoch"], event["epochs"]
            self.status = f"Training on {event['device']} · {event['n_train']:,} images · " \
                          f"{event['parameters']:,} parameters"
        elif kind == "step":
            x = event["progress"]
            self.loss_rows.append((x, event["loss"], "train loss"))
            self.part_rows += [(x, event["recon"], "recon (train)"), (x, event["kl"], "KL (train)")]
            self.fraction = (x - self.first_epoch + 1) / (self.epochs - self.first_epoch + 1)
        elif kind == "epoch":
            x = float(event["epoch"])
            self.loss_rows.append((x, event["test_loss"], "test loss"))
            self.part_rows += [(x, event["recon"], "recon (test)"), (x, event["kl"], "KL (test)")]
            self.grid, self.reconstructions = event["grid"], event["reconstructions"]
            self.pictures += 1
            self.speed = event["samples_per_s"]
            self.status = f"Epoch {event['epoch']}/{event['epochs']}: test loss {event['test_loss']:.2f} " \
                          f"(recon {event['recon']:.2f} + KL {event['kl']:.2f}) nats per image"

    def _final_text(self, event: dict) -> str:
        kind = event["event"]
        if kind == "done":
            return f"✅ Done: {event['message']}. The new {self.kind.upper()} is now the active model in every tab."
        if kind == "stopped":
            tail = " It is now the active model." if event.get("checkpoint") else ""
            return f"⏹ Stopped. {event['message']}{tail}"
        tail = " That checkpoint is now the active model." if event.get("checkpoint") else ""
        return f"⚠️ Training failed: {event['message']}{tail}"

    def _status_text(self) -> str:
        note = f"\n\n> ℹ️ {self.note}" if self.note else ""
        return self.status + note

    def _progress_html(self) -> str:
        pct = 100 * min(max(self.fraction, 0.0), 1.0)
        epoch = min(self.epochs, self.first_epoch + int(self.fraction * (self.epochs - self.first_epoch + 1)))
        parts = [f"epoch {epoch}/{self.epochs}"]
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

    One NaN row per series leads the frame: a plot that first sees no series never
    draws the lines of later updates (Gradio 6.31), and a NaN point draws nothing.
    """
    frame = pd.DataFrame([(0.0, float("nan"), name) for name in series] + rows, columns=PLOT_COLUMNS)
    thinned = []
    for _, group in frame.groupby("series", sort=False):
        step = max(1, len(group) // MAX_POINTS_PER_SERIES)
        thinned.append(group.iloc[::-1].iloc[::step].iloc[::-1])
    return pd.concat(thinned, ignore_index=True)
