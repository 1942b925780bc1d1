"""Between tensors and pictures: sample grids out, user images in."""

from __future__ import annotations

import io
import math

import numpy as np
import torch
from PIL import Image

MAX_UPLOAD_PIXELS = 20_000_000


class ImageError(Exception):
    """An image that cannot be used; its message is meant for the user."""


def to_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2) -> np.ndarray:
    """(N, C, H, W) in [0, 1] → one uint8 picture laid out as torchvision's `make_grid`.

    Same layout as `make_grid(images, nrow, padding=2)` (a test checks it), without
    importing torchvision, which costs seconds at every start. Grey images come back
    (H, W), colour ones (H, W, 3).
    """
    images = images.detach().float().cpu().clamp(0, 1)
    n, c, h, w = images.shape
    cols, rows = min(nrow, n), math.ceil(n / nrow)
    grid = torch.zeros(c, rows * (h + padding) + padding, cols * (w + padding) + padding)
    for i in range(n):
        top, left = (i // nrow) * (h + padding) + padding, (i % nrow) * (w + padding) + padding
        grid[:, top : top + h, left : left + w] = images[i]
    array = grid.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return array[..., 0].copy() if c == 1 else array


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
