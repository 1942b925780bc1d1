"""Training: the loop (a background thread), its events, a run in a process of its own, DDP, device choice."""

from ..config import TrainConfig
from .device import resolve_device
from .distributed import DDP_NEEDS_TORCHRUN
from .events import DatasetNote, Done, Epoch, Event, Failed, Final, Reading, Start, Step, Stopped, is_final
from .loop import Trainer
from .process import ProcessTrainer
from .threads import in_passing_thread

__all__ = ["DDP_NEEDS_TORCHRUN", "DatasetNote", "Done", "Epoch", "Event", "Failed", "Final", "ProcessTrainer",
           "Reading", "Start", "Step", "Stopped", "TrainConfig", "Trainer", "in_passing_thread", "is_final",
           "resolve_device"]
