"""Datasets as whole tensors: MNIST, Fashion-MNIST, Frey Face, the offline MNIST subset, your own pictures.

A 70 k × 784 dataset is 220 MB as float32, so it lives on the training device in one
tensor and batches are `randperm` slices; a per-sample DataLoader would spend most of
an epoch in Python instead of in matrix products.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import socket
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DATASETS = ("mnist", "fashion-mnist", "frey-face")
FOLDER_PREFIX = "folder:"
ZIP_PREFIX = "zip:"  # the name of an uploaded zip's dataset: it lives only in the app's memory
# Frey Face, the original VAE paper's second dataset: 1,965 grey faces of 28×20 pixels
# (height × width) in a MATLAB file, `ff` holding one face per column.
FREY_URL = "https://cs.nyu.edu/~roweis/data/frey_rawface.mat"
FREY_FILE = "frey_rawface.mat"
FREY_SHAPE = (1965, 28, 20)
FREY_MAX_BYTES = 5_000_000
# Real-valued faces, as in Kingma & Welling's experiment: a Gaussian decoder, not Bernoulli.
DEFAULT_LIKELIHOOD = {"frey-face": "gaussian"}
OFFLINE_SUBSET = Path(__file__).parent / "assets" / "mnist_5k.npz"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
PROBE_TIMEOUT_S = 5.0
DOWNLOAD_LIMIT_S = 300.0
SUBSET_NOTE = (
    "MNIST could not be downloaded (no network), so this uses the 5,000-digit offline subset "
    "shipped with VAE Studio: 4,500 training and 500 test digits, not the full 70,000."
)
_TV_FOLDER = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
_IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


class DataError(Exception):
    """A dataset that cannot be found or read; its message is meant for the user."""


@dataclass
class Dataset:
    """Images as uint8 (N, C, H, W) on the CPU; `tensors` puts them on a device as floats in [0, 1]."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    note: str = ""
    class_names: tuple[str, ...] = tuple(str(d) for d in range(10))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def tensors(self, split: str, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        images = self.train_images if split == "train" else self.test_images
        labels = self.train_labels if split == "train" else self.test_labels
        x = torch.from_numpy(images).to(device).float().div_(255.0)
        return x, torch.from_numpy(labels.astype(np.int64)).to(device)


def load_dataset(
    name: str, data_root: str | os.PathLike | None = None, image_size: tuple[int, int] | None = None
) -> Dataset:
    """Find a dataset locally, else download it, else (MNIST only) use the shipped subset.

    `folder:PATH` reads your own pictures at `image_size` (default 28×28).
    """
    if name.startswith(FOLDER_PREFIX):
        from .folders import load_image_folder  # folders builds on this module

        return load_image_folder(name[len(FOLDER_PREFIX):], image_size or (28, 28))
    if name.startswith(ZIP_PREFIX):
        raise DataError(f"this was trained on an uploaded zip ({name[len(ZIP_PREFIX):]}); unzip it and pass "
                        "--dataset folder:PATH")
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} or folder:PATH")
    if name == "frey-face":
        return load_frey_face(data_root)
    if data_root is not None:
        root = Path(data_root)
        if not root.is_dir():
            raise DataError(f"data root {str(root)!r} is not a folder")
        found = _idx_folder(root, name)
        if found is None:
            raise DataError(
                f"no {name} idx files in {str(root)!r}: expected {root / _TV_FOLDER[name] / 'raw'} "
                f"or the four files ({', '.join(_IDX_FILES.values())}, optionally .gz) in the folder itself"
            )
        return _read_idx_dataset(name, found)
    cache = default_cache_dir()
    candidates = [cache] + ([DEBIAN_FASHION] if name == "fashion-mnist" else [])
    for root in candidates:
        found = _idx_folder(root, name)
        if found is not None:
            return _read_idx_dataset(name, found)
    if _download(name, cache):
        return _read_idx_dataset(name, _idx_folder(cache, name))
    if name == "mnist":
        return load_offline_subset()
    raise DataError(
        "Fashion-MNIST is not on this machine and could not be downloaded (no network). "
        "Install Debian's dataset-fashion-mnist package or pass --data-root with its idx files."
    )


def load_frey_face(data_root: str | os.PathLike | None = None) -> Dataset:
    """Frey Face from `data_root`, the cache, or the web; split 90/10 with the seeded split.

    No published checksum for the file could be found, so a download is checked by its
    exact contents (1,965 uint8 faces of 28×20) and its SHA-256 is recorded beside it;
    every later load must match that record, so a damaged or swapped file is noticed.
    """
    folder = Path(data_root) if data_root is not None else default_cache_dir()
    path = folder / FREY_FILE
    if not path.is_file():
        if data_root is not None:
            raise DataError(f"no {FREY_FILE} in {str(folder)!r}")
        _fetch_frey(path)
    raw = path.read_bytes()
    faces = _frey_faces(raw, path.name)
    record = path.with_name(path.name + ".sha256")
    digest = hashlib.sha256(raw).hexdigest()
    if not record.is_file():
        record.write_text(digest + "\n")
    elif record.read_text().strip() != digest:
        raise DataError(f"{path} no longer matches the SHA-256 recorded when it was downloaded; delete it and "
                        "its .sha256 file to download it again")
    labels = np.zeros(len(faces), dtype=np.int64)
    train, test = split_deterministic(labels)
    return Dataset("frey-face", faces[train, None], labels[train], faces[test, None], labels[test], "", ())


def _fetch_frey(path: Path) -> None:
    host = FREY_URL.split("/")[2]
    if not _reachable(host):
        # no server path in the message: the app shows it to whoever pressed Start
        raise DataError(f"Frey Face is not on this machine and could not be downloaded (no network). Download "
                        f"{FREY_URL} elsewhere, then pass its folder with --data-root or put it in the data cache "
                        "folder (VAE_STUDIO_DATA).")
    try:
        with urllib.request.urlopen(FREY_URL, timeout=60) as response:
            raw = response.read(FREY_MAX_BYTES + 1)
    except OSError as exc:
        raise DataError(f"downloading Frey Face from {FREY_URL} failed: {exc}") from None
    if len(raw) > FREY_MAX_BYTES:
        raise DataError(f"{FREY_URL} sent more than {FREY_MAX_BYTES // 1_000_000} MB; not a Frey Face file")
    _frey_faces(raw, FREY_URL)  # refuse anything that is not exactly the faces before keeping it
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(raw)
    partial.replace(path)


def _frey_faces(raw: bytes, name: str) -> np.ndarray:
    from scipy.io import loadmat  # MATLAB reader: plain arrays, nothing unpickled

    try:
        ff = np.asarray(loadmat(io.BytesIO(raw))["ff"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{name} is not the Frey Face MATLAB file ({exc})") from None
    n, h, w = FREY_SHAPE
    if ff.shape != (h * w, n) or ff.min() < 0 or ff.max() > 255:
        raise DataError(f"{name} holds an array of shape {ff.shape}, not Frey Face's {h * w}×{n} faces")
    return ff.T.reshape(n, h, w).astype(np.uint8)


def default_cache_dir() -> Path:
    return Path(os.environ.get("VAE_STUDIO_DATA", Path.home() / ".cache" / "vae-studio" / "data"))


def load_offline_subset() -> Dataset:
    """The 5,000 shipped digits, split 450/50 per class with a fixed seed (stratified, deterministic)."""
    with np.load(OFFLINE_SUBSET, allow_pickle=False) as npz:
        images, labels = npz["images"], npz["labels"]
    train, test = split_deterministic(labels)
    return Dataset("mnist", images[train, None], labels[train], images[test, None], labels[test], SUBSET_NOTE)


def split_deterministic(labels: np.ndarray, test_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices: per class, a seeded permutation holds out a tenth (at least one of two or more).

    Stratified so that a small class is never missing from the test set; seeded so the
    same files always give the same split, run after run.
    """
    rng = np.random.default_rng(0)
    train, test = [], []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_test = max(1, int(len(idx) * test_fraction)) if len(idx) > 1 else 0
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train, test = np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
    if len(test) == 0:
        raise DataError("too few images to hold any out for testing: give some class at least 2 images")
    return train, test


def _idx_folder(root: Path, name: str) -> Path | None:
    for folder in (root / _TV_FOLDER[name] / "raw", root):
        if all(_idx_path(folder, stem) is not None for stem in _IDX_FILES.values()):
            return folder
    return None


def _idx_path(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path) -> np.ndarray:
    """Parse an idx file (the MNIST format: big-endian dims, then uint8 data), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
        magic = int.from_bytes(raw[0:4], "big")
        if magic >> 8 != 0x08:
            raise DataError(f"{path.name} is not a uint8 idx file")
        ndim = magic & 0xFF
        dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
        data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).copy()
        return data.reshape(dims)
    except (OSError, EOFError, ValueError) as exc:
        raise DataError(f"cannot read {path.name}: {exc}") from exc


def _read_idx_dataset(name: str, folder: Path) -> Dataset:
    arrays = {key: read_idx(_idx_path(folder, stem)) for key, stem in _IDX_FILES.items()}
    return Dataset(
        name, arrays["train_x"][:, None], arrays["train_y"], arrays["test_x"][:, None], arrays["test_y"], ""
    )


def _download(name: str, root: Path) -> bool:
    """Let torchvision download into `root`; give up within PROBE_TIMEOUT_S when offline.

    A connection probe catches the offline case at once (torchvision itself would try
    every mirror, each with long timeouts); the download runs in a daemon thread so a
    stalled network cannot hold a caller past DOWNLOAD_LIMIT_S either.
    """
    from torchvision import datasets

    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    if not _reachable(cls.mirrors[0].split("/")[2]):
        return False
    result: list[bool] = []

    def fetch() -> None:
        try:
            cls(str(root), train=True, download=True)
            result.append(True)
        except Exception:  # noqa: BLE001 - any failure means "not downloaded": fall back
            result.append(False)

    worker = threading.Thread(target=fetch, daemon=True)
    worker.start()
    worker.join(timeout=DOWNLOAD_LIMIT_S)
    return bool(result and result[0]) and _idx_folder(root, name) is not None


def _reachable(host: str) -> bool:
    try:
        socket.create_connection((host, 443), timeout=PROBE_TIMEOUT_S).close()
        return True
    except OSError:
        return False
