"""Augmentation inside the training step, on the batch already on the device (no DataLoader)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(x: torch.Tensor, pixels: int, generator: torch.Generator) -> torch.Tensor:
    """Each picture of (B, C, H, W) moved by its own random offset of up to `pixels` each way.

    The edge is extended (replicate padding), so a picture's background fills what moves in,
    black for digits and white for a face shot against white. One gather for the whole batch.
    """
    b, c, h, w = x.shape
    padded = F.pad(x, (pixels,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * pixels + 1, (2, b), generator=generator, device=x.device)
    rows = torch.arange(h, device=x.device) + offsets[0][:, None]  # (B, H)
    cols = torch.arange(w, device=x.device) + offsets[1][:, None]  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]
