"""The server's decoded datasets, read once and kept within a byte bound, and the zips that runs read.

Every tab's test pictures come from here; an upload is surveyed here before a run decodes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator

from vae_core.datasets import DATASETS, DataError, Dataset, ZipUpload, load_dataset

from .catalogue import ActiveModel

# Decoded datasets kept in memory, newest first: MNIST and Fashion-MNIST are 55 MB each, an
# upload at most 250 MB (its pixel budget); an older one is read again when asked for.
DATASET_BYTES_KEPT = 1_000_000_000


def trim_to(datasets: dict[str, Dataset], max_bytes: int) -> None:
    """Drop the oldest datasets until the rest fit in `max_bytes`; the newest is always kept."""
    while len(datasets) > 1 and sum(d.nbytes for d in datasets.values()) > max_bytes:
        datasets.pop(next(iter(datasets)))


class DataCache:
    """Datasets by name, decoded once; the zip each uploaded dataset was read from."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reading = threading.Lock()
        self._loading = threading.Lock()
        self._datasets: dict[str, Dataset] = {}
        self._uploads: dict[str, ZipUpload] = {}  # dataset name → the zip a run read it from

    def test_data(self, active: ActiveModel) -> Dataset:
        """The data the model was trained on, read once (an upload from the zip its run read)."""
        name = active.info.get("dataset", "mnist")
        with self._lock:
            cached, source = self._datasets.get(name), self._uploads.get(name)
        if cached is not None:
            return cached
        with self._loading:  # one read of each: a second caller waits for the first's, then finds it
            with self._lock:
                cached = self._datasets.get(name)
            if cached is None:
                if source is not None:
                    with self.one_read():
                        cached = source.load()
                else:
                    cached = load_dataset(name, image_size=active.model.config.image_shape[1:])
                with self._lock:
                    self._datasets[name] = cached
                    trim_to(self._datasets, DATASET_BYTES_KEPT)
        return cached

    def upload(self, path: str, size: tuple[int, int], filename: str) -> tuple[ZipUpload, int]:
        """Survey an uploaded zip of pictures (structure, count, decoded size, classes) for a run to read.

        One survey at a time: a second upload arriving meanwhile is told to try again, so that
        uploads can never add up to hold the server. Named by content as well as file name,
        so two different zips called the same are never confused. Returns it and its classes.
        """
        with self.one_read():
            with open(path, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()[:10]
            source = ZipUpload(path, size, f"{filename} ({digest}, {size[0]}×{size[1]})")
            return source, source.survey()

    def keep_upload(self, upload: ZipUpload) -> None:
        """A run read this zip: later tabs draw its test pictures from it, and a continued run reads it again."""
        with self._lock:
            self._uploads[upload.dataset_name] = upload

    def upload_of(self, dataset: str) -> ZipUpload | None:
        with self._lock:
            return self._uploads.get(dataset)

    def here(self, dataset: str) -> bool:
        """Whether this server has `dataset`'s pictures: a named dataset, or a zip uploaded here."""
        return dataset in DATASETS or self.upload_of(dataset) is not None

    @contextlib.contextmanager
    def one_read(self) -> Iterator[None]:
        """Hold the one upload read at a time, or refuse at once (never queue behind another upload)."""
        if not self._reading.acquire(blocking=False):
            raise DataError("Another upload is being read right now; try again in a few seconds.")
        try:
            yield
        finally:
            self._reading.release()
