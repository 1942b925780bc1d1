"""Training: the loop (a background thread), its events, data-parallel runs, device choice."""

from ..config import TrainConfig
from .device import resolve_device
from .distributed import DDP_NEEDS_TORCHRUN
from .events import FINAL_EVENTS, is_final, to_json
from .loop import Trainer

__all__ = ["DDP_NEEDS_TORCHRUN", "FINAL_EVENTS", "TrainConfig", "Trainer", "is_final", "resolve_device", "to_json"]
