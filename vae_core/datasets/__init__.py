"""Datasets as whole tensors: MNIST, Fashion-MNIST, Frey Face, the offline MNIST subset, your own pictures.

`load_dataset` is the one entry point. To add a dataset: a module here with a loader
returning `base.Dataset` (with its `preparation`), a name in `DATASETS`, and a branch below.
"""

from __future__ import annotations

import os

from .base import DataError, Dataset, split_deterministic
from .folders import FOLDER_PREFIX, ZIP_PREFIX, ReadStopped, ZipUpload, load_image_folder, load_image_zip
from .frey import load_frey_face
from .idx import DEBIAN_FASHION, load_idx_dataset, load_offline_subset, read_idx

DATASETS = ("mnist", "fashion-mnist", "frey-face")
# Real-valued faces, as in Kingma & Welling's experiment: a Gaussian decoder, not Bernoulli.
DEFAULT_LIKELIHOOD = {"frey-face": "gaussian"}


def load_dataset(
    name: str, data_root: str | os.PathLike | None = None, image_size: tuple[int, int] | None = None
) -> Dataset:
    """Find a dataset locally, else download it, else (MNIST only) use the shipped subset.

    `folder:PATH` reads your own pictures at `image_size` (default 28×28).
    """
    if name.startswith(FOLDER_PREFIX):
        return load_image_folder(name[len(FOLDER_PREFIX):], image_size or (28, 28))
    if name.startswith(ZIP_PREFIX):
        raise DataError(f"this was trained on an uploaded zip ({name[len(ZIP_PREFIX):]}); unzip it and pass "
                        "--dataset folder:PATH")
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} or folder:PATH")
    if name == "frey-face":
        return load_frey_face(data_root)
    return load_idx_dataset(name, data_root)


__all__ = ["DATASETS", "DEBIAN_FASHION", "DEFAULT_LIKELIHOOD", "FOLDER_PREFIX", "ZIP_PREFIX", "DataError", "Dataset",
           "ReadStopped", "ZipUpload",
           "load_dataset", "load_image_folder", "load_image_zip", "load_offline_subset", "read_idx",
           "split_deterministic"]
