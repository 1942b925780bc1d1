"""Will a run fit? Its memory, estimated from the settings before anything is allocated.

The model is built on PyTorch's "meta" device (shapes, no storage) and one batch is run
through it there, so the count of parameters and of the activations kept for the
backward pass is exact for any architecture; the data set adds its own tensors. A run
that cannot fit in the memory free now is refused with its numbers, instead of running
the machine out of memory (or, on a shared server, its neighbours).
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
    """Parameters with their gradients and Adam's two moments; one batch's saved activations; the data."""
    with torch.device("meta"):
        model = build_model(config)
        sizes: list[int] = []
        hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(_numel(out))) for m in model.modules()]
        batch = min(batch_size, n_images)
        x = torch.empty(batch, *config.image_shape)
        labels = torch.zeros(batch, dtype=torch.long)
        model.loss_function(x, labels, 1.0)
        for hook in hooks:
            hook.remove()
    params = sum(p.numel() for p in model.parameters())
    return {"model": 4 * params * FLOAT, "batch": 2 * sum(sizes) * FLOAT,  # outputs and their gradients
            "data": n_images * config.n_pixels * FLOAT}


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
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None


def _numel(out) -> int:
    if isinstance(out, torch.Tensor):
        return out.numel()
    if isinstance(out, tuple | list):
        return sum(_numel(o) for o in out)
    return 0
