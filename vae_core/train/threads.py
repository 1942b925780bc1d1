"""Threads and cores: torch work before a run done in a thread that ends, and a run that shares its cores.

GNU OpenMP keeps a team of worker threads for every live thread that has run a parallel
region; on a small CPU an idle team in the main thread slows every parallel op of the
training thread. Work done in a thread that has ended leaves no team behind (measured in
`bench/train_speed.py`; docs/benchmarks.md, "Why the app trains in a process of its own").
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")


def in_passing_thread(fn: Callable[..., T], *args, **kwargs) -> T:
    """`fn(*args, **kwargs)` run in a short-lived thread; its result, or its exception re-raised here."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as it is
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="vae-prepare")
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class CoreShare:
    """Train on one thread while other processes want the CPU, and on all of them again once they stop.

    On a machine shared with a server's requests, a run on every core loses far more than
    the cores the requests take: each parallel op waits at its barrier for the thread that
    was descheduled. On one thread the run keeps most of a core, and the requests get the
    rest (measured: docs/benchmarks.md, "Load and faults"). `adjust()` is called from the training
    thread between windows of steps; it reads the CPU time of the whole machine and of
    this process from /proc (Linux), and does nothing where those are missing.
    """

    def __init__(self, busy_cores: float = 0.5, every_s: float = 0.5):
        self.full = torch.get_num_threads()
        self.busy_cores, self.every_s = busy_cores, every_s
        self._last = _cpu_seconds()

    def adjust(self) -> None:
        now = _cpu_seconds()
        if now is None or self._last is None or now[0] - self._last[0] < self.every_s:
            return
        wall, machine, mine = (a - b for a, b in zip(now, self._last, strict=True))
        self._last = now
        others = (machine - mine) / wall  # cores' worth of CPU used by every other process
        wanted = 1 if others > self.busy_cores else self.full
        if wanted != torch.get_num_threads():
            torch.set_num_threads(wanted)


def _cpu_seconds() -> tuple[float, float, float] | None:
    """(wall clock, CPU seconds used by the whole machine, by this process), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    return time.monotonic(), busy / tick, (int(own[11]) + int(own[12])) / tick
