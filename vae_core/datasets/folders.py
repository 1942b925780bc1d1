"""Your own pictures as a dataset: a folder or a .zip of images, subfolders as classes.

Every picture becomes grey and is resized to one size, its aspect kept by padding
(`images.pad_resize`), as an uploaded picture is when a model trained on them sees it. Files
that are not readable images are skipped and counted; archives that could hurt the
server (a zip bomb, a path that leaves the folder, too many files) are refused whole.
"""

from __future__ import annotations

import functools
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from ..archive import Entry, checked_entries, is_hidden, open_zip, strip_common_folder
from ..config import LIMITS
from ..images import ImageError, pad_resize, read_grey
from .base import DataError, Dataset, split_deterministic

FOLDER_PREFIX = "folder:"
ZIP_PREFIX = "zip:"  # the name of an uploaded zip's dataset: it lives only in the app's memory
MAX_IMAGES = 100_000
MAX_UNPACKED_BYTES = 1_000_000_000
# Decoded pixels across one dataset, checked from each picture's header before it is decoded:
# 100,000 digits at 28×28 are 78 megapixels; 400 blank 10-megapixel PNGs (5.7 MB zipped) are 4,000.
MAX_TOTAL_PIXELS = 250_000_000
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm"}

HEADER_BYTES = 65_536  # enough for any picture format's size header (a JPEG's may follow 64 kB of EXIF)
Progress = Callable[[int, int], None]


def load_image_folder(path: str | Path, size: tuple[int, int] = (28, 28)) -> Dataset:
    """A folder of pictures; first-level subfolders, if every picture is in one, name the classes."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{str(root)!r} is not a folder")
    real_root = root.resolve()
    entries: list[tuple[PurePosixPath, Callable[..., bytes]]] = []
    for file in sorted(root.rglob("*")):
        if not file.is_file():
            continue
        if not file.resolve().is_relative_to(real_root):
            raise DataError(f"{file.relative_to(root)} links outside the folder; refusing the folder")
        entries.append((PurePosixPath(file.relative_to(root).as_posix()), functools.partial(_read_file, file)))
        if len(entries) > MAX_IMAGES:
            raise DataError(f"the folder holds more than {MAX_IMAGES:,} files; use a smaller set")
    return images_to_dataset(f"{FOLDER_PREFIX}{root}", entries, size)


def load_image_zip(path: str | Path, size: tuple[int, int] = (28, 28), name: str | None = None) -> Dataset:
    """A .zip of pictures, read in memory (never extracted), after checks that it is safe to read."""
    return ZipUpload(str(path), size, name or Path(path).name).load()


@dataclass(frozen=True)
class ZipUpload:
    """An uploaded zip of pictures, read where it is used: inside the run, with progress and a way to stop.

    `survey` is the cheap part, done when the user presses Start: the archive's structure,
    its picture count, its classes and its decoded size from each picture's header.
    `load` decodes; a run calls it so that a long read shows progress and obeys Stop.
    """

    path: str
    size: tuple[int, int]
    name: str  # shown to the user; the dataset is called ZIP_PREFIX + name

    @property
    def dataset_name(self) -> str:
        return f"{ZIP_PREFIX}{self.name}"

    def survey(self) -> int:
        """The number of classes; DataError for a zip that is unsafe, over budget, or holds under 2 pictures."""
        with self._open() as archive:
            entries = self._entries(archive)
            pictures = [(rel, read) for rel, read in entries if rel.suffix.lower() in IMAGE_SUFFIXES]
            if len(pictures) < 2:
                raise DataError(_too_few(len(pictures), self.name, []))
            budget = PixelBudget(MAX_TOTAL_PIXELS, check_size(self.size))
            for _, read in pictures:
                try:
                    with Image.open(io.BytesIO(read(HEADER_BYTES))) as im:  # the header: nothing else is unpacked
                        budget.spend(im.size[0] * im.size[1])
                except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
                    continue  # unreadable: skipped by load, and counted in its note
            classes = {rel.parts[0] if len(rel.parts) > 1 else None for rel, _ in pictures}
            return len(classes) if None not in classes and len(classes) >= 2 else 0

    def load(self, progress: Progress | None = None, should_stop: Callable[[], bool] | None = None) -> Dataset:
        with self._open() as archive:
            return images_to_dataset(self.dataset_name, self._entries(archive), self.size, progress, should_stop)

    def _open(self) -> zipfile.ZipFile:
        return open_zip(self.path, self.name, DataError)

    @staticmethod
    def _entries(archive: zipfile.ZipFile) -> list[Entry]:
        return checked_entries(archive, MAX_IMAGES, MAX_UNPACKED_BYTES, DataError)


def _read_file(file: Path, count: int = -1) -> bytes:
    with open(file, "rb") as f:
        return f.read(count)


class PixelBudget:
    """Pixels left for one dataset: each picture is charged from its header, before decoding.

    A picture costs its decoded size or its size after resizing to the training size, whichever
    is larger: 20,000 8×8 pictures decode to little, but trained at 256×256 they hold 1.3
    gigapixels, which the dataset then keeps in memory.
    """

    def __init__(self, pixels: int, size: tuple[int, int]):
        self.left = pixels
        self.floor = size[0] * size[1]

    def spend(self, pixels: int) -> None:
        self.left -= max(pixels, self.floor)
        if self.left < 0:
            raise DataError(f"the pictures add up to more than {MAX_TOTAL_PIXELS // 1_000_000} megapixels; use "
                            "fewer or smaller pictures (they are resized to the training size anyway)")


def images_to_dataset(name: str, entries: list[Entry], size: tuple[int, int], progress: Progress | None = None,
                      should_stop: Callable[[], bool] | None = None) -> Dataset:
    """Decode, label and split the pictures; the data note counts what was skipped.

    `progress(done, total)` hears about every 1 % of the files; `should_stop()` is asked as
    often, and a True ends the read with `ReadStopped`.
    """
    height, width = check_size(size)
    entries = strip_common_folder([(rel, read) for rel, read in entries if not is_hidden(rel)])
    pictures, classes, skipped = [], [], []
    budget = PixelBudget(MAX_TOTAL_PIXELS, (height, width))
    every = max(1, len(entries) // 100)
    for done, (rel, read) in enumerate(entries):
        if done % every == 0:
            if should_stop is not None and should_stop():
                raise ReadStopped("the read was stopped")
            if progress is not None:
                progress(done, len(entries))
        try:
            if rel.suffix.lower() not in IMAGE_SUFFIXES:
                raise ImageError("not an image")
            pictures.append(pad_resize(read_grey(io.BytesIO(read()), budget.spend), (height, width)))
            classes.append(rel.parts[0] if len(rel.parts) > 1 else None)
        except (ImageError, OSError, ValueError, SyntaxError, zipfile.BadZipFile, Image.DecompressionBombError):
            skipped.append(str(rel))
    if len(pictures) < 2:
        raise DataError(_too_few(len(pictures), name.split(":", 1)[-1], skipped))
    labelled = None not in classes and len(set(classes)) >= 2
    class_names = tuple(sorted({c for c in classes if c is not None})) if labelled else ()
    labels = np.array([class_names.index(c) for c in classes] if labelled else [0] * len(classes), dtype=np.int64)
    images = np.stack(pictures)[:, None]
    train, test = split_deterministic(labels)
    kind = f"{len(class_names)} classes from subfolder names" if labelled else "no classes (no class subfolders)"
    note = (f"Your images: {len(pictures):,} pictures at {height}×{width}, {kind}; "
            f"{len(train):,} for training and {len(test):,} for testing{_skipped_text(skipped)}.")
    return Dataset(name, images[train], labels[train], images[test], labels[test], note, class_names,
                   preparation="padded-picture")


def _too_few(found: int, name: str, skipped: list[str]) -> str:
    return (f"found {found} readable image(s) in {name}; at least 2 are needed (PNG, JPEG and the like"
            f"{_skipped_text(skipped)})")


class ReadStopped(DataError):
    """A read ended early because its run was stopped."""


def check_size(size: tuple[int, int]) -> tuple[int, int]:
    try:
        height, width = size
        return LIMITS["image_side"].check("height", height), LIMITS["image_side"].check("width", width)
    except ValueError as exc:
        raise DataError(f"image {exc}") from None


def _skipped_text(skipped: list[str]) -> str:
    if not skipped:
        return ""
    shown = ", ".join(skipped[:3]) + (", …" if len(skipped) > 3 else "")
    return f"; skipped {len(skipped):,} file(s) that are not readable images ({shown})"
