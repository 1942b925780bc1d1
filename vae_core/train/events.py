"""The events a run streams, and the hub that fans them out to any number of subscribers.

A run streams `Reading` (progress while an upload is decoded), `DatasetNote`, `Start`,
`Step` (every `step_every` steps), `Epoch` (after each epoch, with whatever the run's
`on_epoch` callback added, e.g. pictures), then exactly one final event: `Done`, `Stopped`
or `Failed`. Each is a frozen dataclass, so that a consumer dispatches on its type and a
typo in a field is an error, not a silent `None`.

Their dict form (`to_dict`, and the JSON lines of `train --json`) is flat and names the
type under "event", as the logs and the checkpoints' histories always have: the loss
terms, which a model kind names (`KindSpec.loss_terms`), are spread out under their own
names (`recon`, `kl`; `train_recon`, `train_kl` for the training means). An event also
reads as that dict (`event["test_loss"]`), for scripts that look at a run's events by key.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

import numpy as np

from ..kinds import LOSS_TERMS

NO_CHECKPOINT = "No epoch had finished, so there is no checkpoint from this run."
# field metadata: a dict of loss terms spread into the dict form, each key under this prefix
TERMS = "terms_prefix"
# field metadata: a dict spread into the dict form as it is (and what a dict form has beyond the other fields)
EXTRAS = "extras"
TRAIN_PREFIX = "train_"  # an epoch's training means in its dict form: train_loss, train_recon, train_kl…


@dataclass(frozen=True, kw_only=True)
class Event(Mapping):
    """What every event has: its `name` in the dict form, and when it was first published."""

    name: ClassVar[str]
    time: float | None = None  # stamped by the first hub that publishes it; kept as it crosses processes

    def to_dict(self) -> dict[str, Any]:
        """The flat form: "event", the fields in their order (loss terms and extras spread out), then "time"."""
        out: dict[str, Any] = {"event": self.name}
        for f in fields(self):
            if f.name == "time":
                continue
            value = getattr(self, f.name)
            if TERMS in f.metadata:
                out.update({f.metadata[TERMS] + term: v for term, v in value.items()})
            elif EXTRAS in f.metadata:
                out.update(value)
            else:
                out[f.name] = value
        if self.time is not None:
            out["time"] = self.time
        return out

    def to_json(self) -> str:
        """One JSON line; arrays (pictures) are left out, they are for screens, not logs."""
        return json.dumps(_without_arrays(self.to_dict()))

    def without_arrays(self) -> Event:
        """This event as a history keeps it: without pictures, so that a long run does not hold them all."""
        return self

    @staticmethod
    def from_dict(data: Mapping[str, Any], loss_terms: tuple[str, ...] = LOSS_TERMS) -> Event:
        """The event that a dict form (a parsed line of `train --json`) describes, its terms named `loss_terms`."""
        event_type = EVENTS[data["event"]]
        given: dict[str, Any] = {"time": data.get("time")}
        taken, rest = {"event", "time"}, None
        for f in fields(event_type):
            if TERMS in f.metadata:
                keys = {term: f.metadata[TERMS] + term for term in loss_terms}
                given[f.name] = {term: data[key] for term, key in keys.items()}
                taken |= set(keys.values())
            elif EXTRAS in f.metadata:
                rest = f.name
            elif f.name != "time":
                given[f.name] = data[f.name]
                taken.add(f.name)
        left = {key: value for key, value in data.items() if key not in taken}
        if left and rest is None:
            raise ValueError(f"a {event_type.name} event has no {', '.join(left)}")
        if rest:
            given[rest] = left
        return event_type(**given)

    # the dict form, read-only, for whoever indexes an event by key
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


@dataclass(frozen=True, kw_only=True)
class Reading(Event):
    """Progress while an upload's pictures are decoded."""

    name: ClassVar[str] = "reading"
    done: int
    total: int


@dataclass(frozen=True, kw_only=True)
class DatasetNote(Event):
    """What to know about the data, e.g. that it is the offline subset."""

    name: ClassVar[str] = "dataset_note"
    dataset_note: str


@dataclass(frozen=True, kw_only=True)
class Start(Event):
    """Training begins: where, on what, and from which epoch (a resumed run starts past 1)."""

    name: ClassVar[str] = "start"
    device: str
    dataset: str
    dataset_note: str
    n_train: int
    n_test: int
    first_epoch: int
    epochs: int
    model: dict[str, Any]  # the model's config, as config.json has it
    parameters: int


@dataclass(frozen=True, kw_only=True)
class Step(Event):
    """The per-image means of the last window of steps."""

    name: ClassVar[str] = "step"
    epoch: int
    step: int  # counted over the whole run
    progress: float  # epochs done, with the fraction of this one
    loss: float
    terms: dict[str, float] = field(metadata={TERMS: ""})
    kl_weight: float


@dataclass(frozen=True, kw_only=True)
class Epoch(Event):
    """An epoch's training means and test figures, and what the run's `on_epoch` added (pictures)."""

    name: ClassVar[str] = "epoch"
    epoch: int
    epochs: int
    train_loss: float
    train_terms: dict[str, float] = field(metadata={TERMS: TRAIN_PREFIX})
    images_seen: int
    samples_per_s: float
    seconds: float
    test_loss: float
    terms: dict[str, float] = field(metadata={TERMS: ""})  # on the test set
    extras: dict[str, Any] = field(default_factory=dict, metadata={EXTRAS: True})

    def without_arrays(self) -> Epoch:
        return replace(self, extras=_without_arrays(self.extras))

    def history_entry(self) -> dict[str, Any]:
        """The epoch as a checkpoint's `history` records it: its figures, without the name, time or extras."""
        entry = replace(self, extras={}, time=None).to_dict()
        del entry["event"]
        return entry


class Final(Event):
    """The one event that ends a run (`Done`, `Stopped` or `Failed`); each has `checkpoint` and `message`."""

    checkpoint: str | None  # the checkpoint folder the run leaves, if any
    message: str


@dataclass(frozen=True, kw_only=True)
class Done(Final):
    name: ClassVar[str] = "done"
    epoch: int
    checkpoint: str | None
    message: str


@dataclass(frozen=True, kw_only=True)
class Stopped(Final):
    name: ClassVar[str] = "stopped"
    epoch: int  # the last finished epoch
    checkpoint: str | None
    message: str


@dataclass(frozen=True, kw_only=True)
class Failed(Final):
    name: ClassVar[str] = "error"
    kind: str  # what failed: "nan", "oom", "process", an exception's type…
    checkpoint: str | None
    message: str


EVENTS: dict[str, type[Event]] = {t.name: t for t in (Reading, DatasetNote, Start, Step, Epoch, Done, Stopped, Failed)}


def is_final(event: Event) -> bool:
    return isinstance(event, Final)


def _without_arrays(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if not isinstance(v, np.ndarray)}


class EventHub:
    """Every event goes to every subscriber's queue; a late subscriber gets the history replayed first.

    Publishing never blocks: a slow subscriber loses its oldest events rather than ever
    holding up training. The history keeps events without their arrays (pictures), so a run
    of thousands of epochs does not keep thousands of pictures.
    """

    def __init__(self) -> None:
        self.history: list[Event] = []
        self._subscribers: list[queue.Queue] = []
        self._lock = threading.Lock()

    def publish(self, event: Event) -> None:
        if event.time is None:
            event = replace(event, time=time.time())
        with self._lock:
            self.history.append(event.without_arrays())
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

    def follow(self, timeout: float | None = None) -> Iterator[Event]:
        """Every event, from the first, until the final one."""
        q = self.subscribe()
        while True:
            event = q.get(timeout=timeout)
            yield event
            if is_final(event):
                return


def _put_dropping_oldest(q: queue.Queue, event: Event) -> None:
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

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Every event until the run ends; returns once the run has finished."""
        yield from self.hub.follow(timeout)
        self.join()
