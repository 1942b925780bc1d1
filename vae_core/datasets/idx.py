"""MNIST and Fashion-MNIST from idx files: a local folder, the cache, Debian's package, a download, or
(MNIST only) the 5,000 digits shipped with VAE Studio."""

from __future__ import annotations

import gzip
import os
import threading
from pathlib import Path

import numpy as np

from ..network import reachable
from .base import DataError, Dataset, default_cache_dir, split_deterministic

OFFLINE_SUBSET = Path(__file__).resolve().parents[1] / "assets" / "mnist_5k.npz"
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


def load_idx_dataset(name: str, data_root: str | os.PathLike | None = None) -> Dataset:
    """`name` from `data_root` alone if given; else the cache, Debian's folder, a download, the subset."""
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
    if _download(name, cache) and (found := _idx_folder(cache, name)) is not None:
        return _read_idx_dataset(name, found)
    if name == "mnist":
        return load_offline_subset()
    raise DataError(
        "Fashion-MNIST is not on this machine and could not be downloaded (no network). "
        "Install Debian's dataset-fashion-mnist package or pass --data-root with its idx files."
    )


def load_offline_subset() -> Dataset:
    """The 5,000 shipped digits, split 450/50 per class with a fixed seed (stratified, deterministic)."""
    with np.load(OFFLINE_SUBSET, allow_pickle=False) as npz:
        images, labels = npz["images"], npz["labels"]
    train, test = split_deterministic(labels)
    return Dataset("mnist", images[train, None], labels[train], images[test, None], labels[test], SUBSET_NOTE)


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
    paths = {key: _idx_path(folder, stem) for key, stem in _IDX_FILES.items()}
    missing = [stem for key, stem in _IDX_FILES.items() if paths[key] is None]
    if missing:
        raise DataError(f"{folder} lacks {', '.join(missing)}")
    arrays = {key: read_idx(path) for key, path in paths.items() if path is not None}
    for split in ("train", "test"):  # refused here, before any training, not after an epoch
        images, labels = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) == 0 or len(images) != len(labels):
            raise DataError(f"the {split} idx files of {name} hold {images.shape[0] if images.ndim else 0} images "
                            f"and {len(labels) if labels.ndim else 0} labels: they must match and not be empty")
    if arrays["train_x"].shape[1:] != arrays["test_x"].shape[1:]:
        raise DataError(f"the train and test images of {name} differ in size ({arrays['train_x'].shape[1:]} vs "
                        f"{arrays['test_x'].shape[1:]})")
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
    if not reachable(cls.mirrors[0].split("/")[2], PROBE_TIMEOUT_S):
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
