"""Will a run fit? Its memory, estimated from the settings before anything is allocated.

The model is built on PyTorch's "meta" device (shapes, no storage) and one batch's loss is
computed there, counting every tensor autograd saves for the backward pass (each storage
once): the count of parameters and of saved activations holds for any architecture. The
data set adds its own tensors. A run that cannot fit in the memory free now is refused
with its numbers, instead of running the machine (or, on a shared server, its neighbours)
out of memory. The free memory honours a container's cgroup limit.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..config import ModelConfig
from ..models import build_model

FLOAT = 4  # bytes: everything trains in float32


class WontFit(ValueError):
    """A run refused before it allocates; the message gives the estimate and the free memory."""

HEADROOM = 0.8  # of the free memory a run may plan to use


def estimate_bytes(config: ModelConfig, batch_size: int, n_images: int) -> dict[str, int]:
    """Parameters with their gradients and Adam's two moments; what one batch saves for backward; the data."""
    saved: dict[int, int] = {}

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        saved[id(storage)] = max(saved.get(id(storage), 0), tensor.numel() * tensor.element_size())
        return tensor

    with torch.device("meta"):
        model = build_model(config)
        batch = min(batch_size, n_images)
        x = torch.empty(batch, *config.image_shape)
        labels = torch.zeros(batch, dtype=torch.long)
        with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
            model.loss_function(x, labels, 1.0)["loss"]
    params = sum(p.numel() for p in model.parameters())
    return {"model": 4 * params * FLOAT, "batch": sum(saved.values()), "data": n_images * config.n_pixels * FLOAT}


def check_fits(config: ModelConfig, batch_size: int, n_images: int, device: torch.device) -> None:
    """WontFit, naming the numbers, if the run needs more than the memory free on `device`."""
    free = free_bytes(device)
    if free is None:
        return
    need = estimate_bytes(config, batch_size, n_images)
    total = sum(need.values())
    if total > HEADROOM * free:
        gb = {k: v / 1e9 for k, v in need.items()}
        raise WontFit(f"out of memory with batch size {batch_size}: lower the batch size or the hidden width "
                         f"(this run needs about {total / 1e9:.1f} GB: model and optimizer {gb['model']:.1f}, one "
                         f"batch {gb['batch']:.1f}, data {gb['data']:.1f}; {free / 1e9:.1f} GB are free)")


def free_bytes(device: torch.device) -> int | None:
    """Memory free now on the device, or None where it cannot be read."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu":
        try:
            available = next(int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                             if line.startswith("MemAvailable:"))
        except (OSError, StopIteration, ValueError):
            return None
        return min(available, _cgroup_room() or available)
    return None


def _cgroup_room() -> int | None:
    """What a container's memory limit leaves (cgroup v2), where one is set: a Space's, Docker's."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(int(limit) - used, 0)

