"""A run hosted in a process of its own: the same Trainer thread, with nothing else in its process.

PyTorch's CPU wheels use GNU OpenMP, which keeps a team of worker threads for every
live thread that has run a parallel region. A server's request threads that sample
from models, or a main thread that loaded data, each keep such a team, and on a small
CPU those idle teams slow every parallel op of the training thread (measured: see
docs/benchmarks.md, "Why the app trains in a process of its own"). In a process of its
own, the training thread is the only one that ever opens a parallel region.

`ProcessTrainer` keeps the `Trainer` interface the app uses (start, stop, join,
subscribe, events, dataset, config) and relays the child's events into an `EventHub`.
The child is `python -m vae_core.train.worker`: it imports PyTorch and vae_core only
(not the app), and a spare one is started ahead of time (`warm`), so a run does not
wait for the import. Parent and child talk through the child's stdin and stdout in
pickle frames: the job and "stop" down, events (their dataclasses, pictures and all) up.
Only our own two processes write those pipes; nothing from a user is unpickled.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

import torch

from ..config import ModelConfig, TrainConfig
from ..datasets import Dataset, ZipUpload
from .events import NO_CHECKPOINT, Epoch, Event, EventHub, Failed, Followed, Start, Stopped, is_final

STOP = "stop"
# The worker runs at a lower CPU priority than the server that started it: a server's requests
# (people sampling, drawing, exploring) are interactive and brief, a run is a batch job that
# takes whatever CPU they leave. Measured with bench/load.py (docs/benchmarks.md, "Load and faults").
WORKER_NICENESS = 5
_HOME = str(Path(__file__).resolve().parents[2])  # the folder holding vae_core, for a child started from anywhere
_spare: subprocess.Popen | None = None
_spare_lock = threading.Lock()


def warm() -> None:
    """Start a spare worker process now (it imports PyTorch while nobody waits for it)."""
    with _spare_lock:
        _ensure_spare()


def _ensure_spare() -> subprocess.Popen:
    global _spare
    if _spare is None or _spare.poll() is not None:
        path = os.pathsep.join(p for p in (_HOME, os.environ.get("PYTHONPATH")) if p)
        _spare = subprocess.Popen([sys.executable, "-m", "vae_core.train.worker", str(WORKER_NICENESS)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  env={**os.environ, "PYTHONPATH": path})
    return _spare


def leave_cores_to_training() -> None:
    """For a process whose runs train in workers (the app): its own PyTorch work runs on one thread.

    Its requests are small (a grid of samples); on one thread each, two at a time use at most
    the two cores a run also wants, instead of every request spreading over all cores.
    """
    torch.set_num_threads(1)


def _take_spare() -> subprocess.Popen:
    global _spare
    with _spare_lock:  # one section: two callers never share a spare
        taken, _spare = _ensure_spare(), None
    return taken


class ProcessTrainer(Followed):
    """A Trainer whose loop runs in a worker process; events arrive here as if it were local."""

    def __init__(self, model_config: ModelConfig, train_config: TrainConfig,
                 dataset: Dataset | ZipUpload | None = None, on_epoch=None):
        self.model_config, self.config, self.dataset, self.on_epoch = model_config, train_config, dataset, on_epoch
        self.hub = EventHub()
        self._relay = threading.Thread(target=self._follow, name="vae-run-relay", daemon=True)
        self._child: subprocess.Popen | None = None
        self._saved: str | None = None  # the checkpoint folder, once an epoch has been written to it
        self._lock = threading.Lock()
        self._begun = False  # the child has started training (its "start" event arrived)
        self._ended = False  # a final event has been published

    def start(self) -> ProcessTrainer:
        self._child = _take_spare()
        self._send((self.model_config, self.config, self.dataset, self.on_epoch))
        self._relay.start()
        return self

    def _pipes(self) -> tuple[subprocess.Popen, IO[bytes], IO[bytes]]:
        """The started child and its two pipes (both made at its start: `_ensure_spare`)."""
        child = self._child
        if child is None or child.stdin is None or child.stdout is None:
            raise RuntimeError("the training process has not been started")
        return child, child.stdin, child.stdout

    def _send(self, message) -> None:
        _, stdin, _ = self._pipes()
        try:
            pickle.dump(message, stdin)
            stdin.flush()
        except (OSError, ValueError):  # a broken pipe, or stdin already closed: the child is gone or done
            pass

    def stop(self) -> None:
        """Ask the child to stop; a run whose child has not begun yet ends here and now."""
        if self._child is not None:
            self._send(STOP)
        with self._lock:
            begun = self._begun
        if not begun:  # nothing worth keeping yet: end it here, and end the child, so no two runs overlap
            self._publish(Stopped(epoch=0, checkpoint=None, message=NO_CHECKPOINT))
            self.kill()

    def kill(self) -> None:
        """End the worker at once (one that does not answer a stop); the relay reports how the run ended."""
        if self._child is not None:
            self._child.kill()

    def join(self, timeout: float | None = None) -> bool:
        self._relay.join(timeout)
        return not self._relay.is_alive()

    def _publish(self, event: Event) -> bool:
        """Publish unless the run has already ended; True once it has."""
        with self._lock:
            if self._ended:
                return True
            self._begun = self._begun or isinstance(event, Start)
            self._ended = is_final(event)
            self.hub.publish(event)
            return self._ended

    def _follow(self) -> None:
        """Relay the child's events; a child that dies without a final event is reported as one."""
        child, stdin, stdout = self._pipes()
        try:
            while True:
                try:
                    event = pickle.load(stdout)
                    if not isinstance(event, Event):
                        raise ValueError("not an event")
                except Exception:  # noqa: BLE001 - EOF, a garbled frame: either way the child is done for
                    child.kill()
                    kept = "its last checkpoint is complete" if self._saved else "no epoch had finished"
                    event = Failed(kind="process", checkpoint=self._saved,
                                   message=f"the training process ended unexpectedly (exit code {child.wait()}); "
                                           f"{kept}")
                if isinstance(event, Epoch) and self.config.out:
                    self._saved = self.config.out
                if self._publish(event):
                    break
        finally:
            stdin.close()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
            self.hub.close()
            # The next run's spare imports PyTorch now, not during this run: started beside a run, its
            # import (seconds of a core, at the server's priority) slowed a 3-epoch run by 10-20 %.
            warm()
