"""What every dataset is: uint8 images and labels, split into train and test, with a note for the user.

A 70 k × 784 dataset is 220 MB as float32, so it lives on the training device in one
tensor and batches are `randperm` slices; a per-sample DataLoader would spend most of
an epoch in Python instead of in matrix products.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..config import ModelConfig

DIGITS = tuple(str(d) for d in range(10))


class DataError(Exception):
    """A dataset that cannot be found or read; its message is meant for the user."""


@dataclass
class Dataset:
    """Images as uint8 (N, C, H, W) on the CPU; `tensors` puts them on a device as floats in [0, 1].

    `preparation` says how a new picture must be prepared to look like these (see
    `config.PREPARATIONS`); a model trained on them records it in its config.
    """

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    note: str = ""
    class_names: tuple[str, ...] = DIGITS
    preparation: str = "mnist-digit"

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.train_images, self.train_labels, self.test_images, self.test_labels))

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def fit(self, config: ModelConfig) -> ModelConfig:
        """The model settings with this data's image shape, classes and preparation: checked against it."""
        return replace(config, image_shape=self.image_shape, n_classes=self.n_classes, preparation=self.preparation)

    def check_fits(self, config: ModelConfig, labelled: bool, class_names: list | None, name: str) -> None:
        """Refuse a model from elsewhere that says it was trained on this data but cannot take its pictures.

        A checkpoint's dataset name is only a claim: its pictures' shape, and for a labelled model
        its classes and their names, must be this data's before the app shows it beside its pictures.
        """
        fitted = self.fit(config)
        if fitted.image_shape != config.image_shape or (labelled and fitted.n_classes != config.n_classes):
            raise DataError(f"{name} says it was trained on {self.name}, but its model takes "
                            f"{config.n_classes} classes of {'×'.join(map(str, config.image_shape))} pictures "
                            f"and {self.name} has {fitted.n_classes} of {'×'.join(map(str, fitted.image_shape))}")
        if (class_names if class_names is not None else list(self.class_names)) != list(self.class_names):
            raise DataError(f"{name} names its classes differently from {self.name}'s")

    def tensors(self, split: str, device: torch.device | str = "cpu",
                limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The split as float tensors on `device`; only its first `limit` pictures, if given, are converted."""
        images = (self.train_images if split == "train" else self.test_images)[:limit]
        labels = (self.train_labels if split == "train" else self.test_labels)[:limit]
        x = torch.from_numpy(images).to(device).float().div_(255.0)
        return x, torch.from_numpy(labels.astype(np.int64)).to(device)


def split_deterministic(labels: np.ndarray, test_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices: per class, a seeded permutation holds out a tenth (at least one of two or more).

    Stratified so that a small class is never missing from the test set; seeded so the
    same files always give the same split, run after run.
    """
    rng = np.random.default_rng(0)
    train_parts, test_parts = [], []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_test = max(1, int(len(idx) * test_fraction)) if len(idx) > 1 else 0
        test_parts.append(idx[:n_test])
        train_parts.append(idx[n_test:])
    train, test = np.sort(np.concatenate(train_parts)), np.sort(np.concatenate(test_parts))
    if len(test) == 0:
        raise DataError("too few images to hold any out for testing: give some class at least 2 images")
    return train, test


def default_cache_dir() -> Path:
    return Path(os.environ.get("VAE_STUDIO_DATA", Path.home() / ".cache" / "vae-studio" / "data"))
