"""Frey Face, the original VAE paper's second dataset: 1,965 grey faces of 28×20 pixels
(height × width) in a MATLAB file, `ff` holding one face per column."""

from __future__ import annotations

import hashlib
import io
import os
import urllib.request
from pathlib import Path

import numpy as np

from ..network import reachable
from .base import DataError, Dataset, default_cache_dir, split_deterministic

FREY_URL = "https://cs.nyu.edu/~roweis/data/frey_rawface.mat"
FREY_FILE = "frey_rawface.mat"
FREY_SHAPE = (1965, 28, 20)
FREY_MAX_BYTES = 5_000_000


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
    return Dataset("frey-face", faces[train, None], labels[train], faces[test, None], labels[test], "", (),
                   preparation="padded-picture")


def _fetch_frey(path: Path) -> None:
    host = FREY_URL.split("/")[2]
    if not reachable(host):
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
