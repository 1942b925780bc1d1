"""Torch work before a run, done in a thread that ends.

GNU OpenMP keeps a team of worker threads for every live thread that has run a parallel
region; on a small CPU an idle team in the main thread slows every parallel op of the
training thread. Work done in a thread that has ended leaves no team behind (measured in
`bench/train_speed.py`; README, "Training speed").
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

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
