"""The events a run streams, and the hub that fans them out to any number of subscribers.

Events are plain dicts with an "event" name: `reading` (progress while an upload is
decoded), `dataset_note`, `start`, `step` (every `step_every` steps), `epoch` (after each
epoch, with whatever the run's `on_epoch` callback added, e.g. pictures), then exactly one
final event.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator

import numpy as np

DONE, STOPPED, ERROR = "done", "stopped", "error"
FINAL_EVENTS = (DONE, STOPPED, ERROR)
NO_CHECKPOINT = "No epoch had finished, so there is no checkpoint from this run."


def is_final(event: dict) -> bool:
    return event["event"] in FINAL_EVENTS


def to_json(event: dict) -> str:
    """One JSON line; arrays (pictures) are left out, they are for screens, not logs."""
    return json.dumps({k: v for k, v in event.items() if not isinstance(v, np.ndarray)})


class EventHub:
    """Every event goes to every subscriber's queue; a late subscriber gets the history replayed first.

    Publishing never blocks: a slow subscriber loses its oldest events rather than ever
    holding up training. The history keeps events without their arrays (pictures), so a run
    of thousands of epochs does not keep thousands of pictures.
    """

    def __init__(self) -> None:
        self.history: list[dict] = []
        self._subscribers: list[queue.Queue] = []
        self._lock = threading.Lock()

    def publish(self, event: dict) -> None:
        event.setdefault("time", time.time())
        with self._lock:
            self.history.append({k: v for k, v in event.items() if not isinstance(v, np.ndarray)})
            for q in self._subscribers:
                _put_dropping_oldest(q, event)

    def subscribe(self, maxsize: int = 10_000) -> queue.Queue:
        q: queue.Queue = queue.Queue(maxsize)
        with self._lock:
            for event in self.history:
                _put_dropping_oldest(q, event)
            self._subscribers.append(q)
        return q

    def close(self) -> None:
        with self._lock:
            self._subscribers.clear()

    def follow(self, timeout: float | None = None) -> Iterator[dict]:
        """Every event, from the first, until the final one."""
        q = self.subscribe()
        while True:
            event = q.get(timeout=timeout)
            yield event
            if is_final(event):
                return


def _put_dropping_oldest(q: queue.Queue, event: dict) -> None:
    while True:
        try:
            q.put_nowait(event)
            return
        except queue.Full:
            try:
                q.get_nowait()
            except queue.Empty:
                pass


class Followed:
    """What a run offers its watchers, over its `hub`: a queue of every event, or the events until the end."""

    hub: EventHub

    def join(self, timeout: float | None = None) -> bool:
        raise NotImplementedError

    def subscribe(self, maxsize: int = 10_000) -> queue.Queue:
        """A queue that receives every event from now on (and every earlier one, replayed)."""
        return self.hub.subscribe(maxsize)

    def events(self, timeout: float | None = None) -> Iterator[dict]:
        """Every event until the run ends; returns once the run has finished."""
        yield from self.hub.follow(timeout)
        self.join()
