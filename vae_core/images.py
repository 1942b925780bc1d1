"""Between tensors and pictures: sample grids out, user images in."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image, ImageOps

from .config import ModelConfig

MAX_UPLOAD_PIXELS = 10_000_000
MAX_UPLOAD_BYTES = 10_000_000
MAX_ASPECT = 20  # a 5×300 strip is no picture of anything; its resize would be a library's error


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


def read_grey(source: str | os.PathLike | io.BytesIO, charge: Callable[[int], None] | None = None) -> np.ndarray:
    """A picture file (path or bytes) → grey floats in [0, 1], upright as its EXIF says, after size checks.

    The header is read first, so a 20-megapixel image is refused without decoding it, and
    `charge(pixels)` (a dataset's budget) can refuse it before it is decoded too.
    """
    try:
        with open_checked(source) as im:
            if charge is not None:
                charge(im.size[0] * im.size[1])
            im.load()
            # phone photos are stored sideways with an EXIF note; the model should see them as people do
            return to_grey(ImageOps.exif_transpose(im))
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageError("that file is not an image that can be read (try a PNG or JPEG)") from exc


def open_checked(source: str | os.PathLike | io.BytesIO) -> Image.Image:
    """A picture opened lazily (its header only), refused if its file or its decoded size is too large.

    Everything that decodes a user's picture opens it here first, so no upload, zip member or
    drawing can make the server decode more than `MAX_UPLOAD_PIXELS`.
    """
    size = source.getbuffer().nbytes if isinstance(source, io.BytesIO) else os.path.getsize(source)
    if size > MAX_UPLOAD_BYTES:
        raise ImageError(f"that file is over {MAX_UPLOAD_BYTES // 1_000_000} MB; upload a smaller picture")
    try:
        im = Image.open(source)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageError("that file is not an image that can be read (try a PNG or JPEG)") from exc
    width, height = im.size
    if width * height > MAX_UPLOAD_PIXELS:
        im.close()
        raise ImageError(f"that image is {width}×{height} ({width * height / 1e6:.0f} megapixels); "
                         f"upload one under {MAX_UPLOAD_PIXELS // 1_000_000} megapixels")
    if max(width, height) > MAX_ASPECT * min(width, height):
        im.close()
        raise ImageError(f"that image is {width}×{height}, too thin to hold a picture; crop it closer to square")
    return im


def load_digit(path: str, size: tuple[int, int] = (28, 28)) -> torch.Tensor:
    """An uploaded picture as a (1, 1, H, W) tensor in MNIST's style: white ink on black.

    Dark-ink-on-light pictures are inverted; the ink is cropped, scaled to fit 20×20
    of 28×28 and centred by its centre of mass, as MNIST's digits were prepared.
    """
    return ink_to_tensor(read_grey(path), size)


def prepare_upload(path: str, config: ModelConfig) -> torch.Tensor:
    """An uploaded picture prepared the way the model's training pictures were (`config.preparation`).

    The model's config records it, so a 28×28 model trained on your own pictures gets
    padded pictures, not MNIST's digit recipe, although its image size is MNIST's.
    """
    size = config.image_shape[1:]
    return load_digit(path, size) if config.preparation == "mnist-digit" else load_picture(path, size)


def load_picture(path: str, size: tuple[int, int]) -> torch.Tensor:
    """An uploaded picture as a (1, 1, H, W) tensor prepared like a folder dataset's pictures."""
    return torch.from_numpy(pad_resize(read_grey(path), size)).float().div(255).view(1, 1, *size)


def pad_resize(grey: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Grey [0, 1] → uint8 (height, width), aspect kept by padding with the picture's border colour.

    Padding with the border colour, not black, keeps a face shot against white from being boxed in.
    """
    height, width = size
    picture = Image.fromarray(np.round(grey * 255).astype(np.uint8))
    fitted = ImageOps.pad(picture, (width, height), Image.Resampling.LANCZOS, color=int(round(_background(grey) * 255)))
    return np.array(fitted, dtype=np.uint8)  # a copy: torch wants a writable array


def to_grey(im: Image.Image) -> np.ndarray:
    """Any mode → float grey in [0, 1]; transparency is laid over white, like ink on paper."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(im, dtype=np.float64)
        top = 65535.0 if array.max() > 255 else 255.0
        return np.clip(array / top, 0, 1)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    return np.asarray(im.convert("L"), dtype=np.float64) / 255.0


def ink_to_tensor(grey: np.ndarray, size: tuple[int, int] = (28, 28)) -> torch.Tensor:
    """Grey picture in [0, 1] → MNIST-style (1, 1, H, W): ink white, cropped, scaled, centred."""
    if grey.ndim != 2 or min(grey.shape) < 1:
        raise ImageError("the image is empty")
    paper = _background(grey)
    # the paper's own level is subtracted, so off-white paper is black, not a grey box, and the ink keeps its range
    ink = (paper - grey) / max(paper, 1e-6) if paper > 0.5 else (grey - paper) / max(1.0 - paper, 1e-6)
    ink = np.clip(ink, 0.0, 1.0)
    mask = ink > 0.2
    if not mask.any():
        raise ImageError("no digit found: the image is blank")
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height, width = size
    box = max(1, round(min(height, width) * 20 / 28))
    scale = box / max(crop.shape)
    new_h, new_w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    small = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize((new_w, new_h), Image.Resampling.LANCZOS),
                       dtype=np.float64) / 255.0
    canvas = np.zeros((height, width))
    total = small.sum()
    cy, cx = (np.indices(small.shape) * small).reshape(2, -1).sum(1) / max(total, 1e-8)
    top = int(np.clip(round(height / 2 - cy), 0, height - new_h))
    left = int(np.clip(round(width / 2 - cx), 0, width - new_w))
    canvas[top : top + new_h, left : left + new_w] = small
    return torch.from_numpy(canvas).float().clamp(0, 1).view(1, 1, height, width)


def _background(grey: np.ndarray) -> float:
    """The picture's background level: the median of its border pixels."""
    return float(np.median(np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])))


def sketch_ink(composite: np.ndarray | None) -> np.ndarray | None:
    """A Sketchpad composite (RGBA, transparent background, dark brush) → grey ink image, or None if blank.

    The ink is where the user painted: opaque and dark. Returns white-on-black uint8.
    """
    if composite is None:
        return None
    array = np.asarray(composite)
    if array.ndim == 3 and array.shape[2] == 4:
        ink = (array[..., 3] / 255.0) * (1.0 - array[..., :3].mean(2) / 255.0)
    else:
        grey = array.mean(2) if array.ndim == 3 else array
        ink = 1.0 - grey / 255.0
    if ink.max() < 0.2:
        return None
    return (ink * 255).astype(np.uint8)
