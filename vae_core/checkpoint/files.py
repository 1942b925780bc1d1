"""Writing a checkpoint folder atomically, so a crash mid-write leaves the previous checkpoint readable.

The folder is written whole into a temporary sibling, fsynced, and renamed into place; the
old folder waits at a backup name until the new one is in, and a reader or writer that
finds only the backup (a crash in that moment) renames it back first. Nothing here knows
what the files hold, except enough of config.json to tell a folder we wrote from the
user's, which is never replaced.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

from .names import CONFIG, FORMAT, CheckpointError


def check_output(path: str | os.PathLike) -> Path:
    """Refuse, before any work, an output path that holds anything but a checkpoint we wrote.

    Writing a checkpoint replaces the folder whole, so an existing folder must be empty
    or one of ours (its config.json says so); a file, or a folder of anything else, is
    the user's, and is never touched. The parent folder must be creatable.
    """
    path = Path(path)
    recover_interrupted_swap(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise CheckpointError(f"{path.name!r} exists and is not a checkpoint folder; choose another --out "
                              "(VAE Studio never replaces a file it did not write)")
    if path.is_dir() and any(path.iterdir()) and not _is_ours(path):
        raise CheckpointError(f"{path.name!r} is a folder with other files in it; choose an empty or new --out "
                              "(VAE Studio replaces only checkpoint folders it wrote)")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise CheckpointError(f"cannot create {path.name!r}: {parent.name or parent} is not a writable folder")
    return path


def _is_ours(path: Path) -> bool:
    """Whether the folder's config.json names our format: only then may it be replaced."""
    try:
        return json.loads((path / CONFIG).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def write_files(path: str | os.PathLike, files: dict[str, bytes]) -> Path:
    """Write a checkpoint's files as one folder, atomically: into a temporary sibling, then renamed into place."""
    path = check_output(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):  # left by a writer that was killed
        shutil.rmtree(stale, ignore_errors=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        for name, blob in files.items():
            (tmp / name).write_bytes(blob)
        _fsync_folder(tmp)
        _swap_into_place(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _backup_path(path: Path) -> Path:
    """Where the old folder waits during a swap: a hidden sibling, since a rename cannot cross file systems."""
    return path.parent / f".{path.name}.previous"


def _swap_into_place(tmp: Path, path: Path) -> None:
    """Rename the new folder in; the old one is moved aside first and removed last.

    POSIX cannot rename a folder over a non-empty one, so there is a moment with the
    old checkpoint only at its backup name; `recover_interrupted_swap` handles a
    crash in that moment.
    """
    backup = _backup_path(path)
    if backup.exists() and path.exists():
        shutil.rmtree(backup)
    if path.exists():
        os.rename(path, backup)
    os.rename(tmp, path)
    shutil.rmtree(backup, ignore_errors=True)


def recover_interrupted_swap(path: Path) -> None:
    """Put back a checkpoint that a crash left only at its backup name (see `_swap_into_place`)."""
    backup = _backup_path(path)
    if not path.exists() and backup.is_dir():
        os.rename(backup, path)


def _fsync_folder(folder: Path) -> None:
    """Flush every file to disk before the rename, so the folder renamed in is never one of empty files."""
    for item in folder.iterdir():
        with open(item, "rb") as f:
            os.fsync(f.fileno())
