"""Checkpoints as folders: `model.safetensors`, `optimizer.safetensors`, `config.json`.

safetensors holds tensors only, so loading a checkpoint can never run code the way
unpickling a `.pt` file can. A folder is written whole into a temporary sibling and
renamed into place, so a crash mid-write leaves the previous checkpoint readable.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from . import __version__
from .config import ModelConfig
from .models import Model, build_model

CONFIG = "config.json"
MODEL = "model.safetensors"
OPTIMIZER = "optimizer.safetensors"
FORMAT = "vae-studio-checkpoint"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin")
_ZIP_MAGIC = b"PK\x03\x04"


class CheckpointError(Exception):
    """A checkpoint that cannot be used; its message is meant for the user."""


@dataclass
class Checkpoint:
    model: Model
    info: dict
    path: Path
    optimizer_state: dict | None = field(default=None, repr=False)


def check_output(path: str | os.PathLike) -> Path:
    """Refuse, before any work, an output path that holds anything but a checkpoint we wrote.

    Writing a checkpoint replaces the folder whole, so an existing folder must be empty
    or one of ours (its config.json says so); a file, or a folder of anything else, is
    the user's, and is never touched. The parent folder must be creatable.
    """
    path = Path(path)
    _recover_interrupted_swap(path)
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
    try:
        return json.loads((path / CONFIG).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def save_checkpoint(path: str | os.PathLike, model: Model, optimizer: torch.optim.Optimizer | None, info: dict) -> Path:
    """Write the checkpoint folder atomically; `info` goes into config.json beside the model config."""
    path = check_output(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):  # left by a writer that was killed
        shutil.rmtree(stale, ignore_errors=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, tmp / MODEL)
        if optimizer is not None:
            tensors, groups = _flatten_optimizer(optimizer.state_dict())
            save_file(tensors, tmp / OPTIMIZER, metadata={"param_groups": json.dumps(groups)})
        config = {"format": FORMAT, "version": __version__, "model": model.config.to_dict(), **info}
        (tmp / CONFIG).write_text(json.dumps(config, indent=2))
        _fsync_folder(tmp)
        _swap_into_place(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def load_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu", with_optimizer: bool = False
) -> Checkpoint:
    """Rebuild the model from config.json alone and fill it from model.safetensors."""
    path = Path(path)
    _recover_interrupted_swap(path)
    if path.is_file():
        raise CheckpointError(_file_refusal(path))
    if not path.is_dir():
        raise CheckpointError(f"no checkpoint folder at {path.name!r}")
    for name in (CONFIG, MODEL):
        if not (path / name).is_file():
            raise CheckpointError(f"{path.name!r} is not a complete checkpoint: {name} is missing")
    try:
        info = json.loads((path / CONFIG).read_text())
        config = ModelConfig.from_dict(info["model"])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{CONFIG} in {path.name!r} is not valid JSON ({exc})") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{CONFIG} in {path.name!r} does not describe a model: {exc}") from exc
    _check_tensors(path, config)
    model = build_model(config)
    try:
        state = load_file(path / MODEL)
        model.load_state_dict(state, strict=True)
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{MODEL} in {path.name!r} is corrupt or unreadable ({exc})") from exc
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{MODEL} in {path.name!r} does not match its {CONFIG} ({first})") from exc
    model.to(device).eval()
    optimizer_state = None
    if with_optimizer and (path / OPTIMIZER).is_file():
        optimizer_state = _read_optimizer(path / OPTIMIZER)
    return Checkpoint(model, info, path, optimizer_state)


def _check_tensors(path: Path, config: ModelConfig) -> None:
    """The tensors the config implies against those the file holds, compared from the file's header.

    The model is built on the "meta" device (shapes, no memory), so a config.json that lies
    about its sizes is refused before a single weight is allocated, whatever it claims.
    """
    with torch.device("meta"):
        expected = {name: tuple(t.shape) for name, t in build_model(config).state_dict().items()}
    try:
        with safe_open(path / MODEL, framework="pt") as f:
            found = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{MODEL} in {path.name!r} is corrupt or unreadable ({exc})") from exc
    if expected != found:
        missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
        wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        detail = "; ".join(f"{what}: {', '.join(names[:3])}" for what, names in
                           (("missing", missing), ("unexpected", extra), ("other shapes", wrong)) if names)
        raise CheckpointError(f"{MODEL} in {path.name!r} does not match its {CONFIG} ({detail})")


def _file_refusal(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(4)
    if path.suffix.lower() in PICKLE_SUFFIXES or head.startswith((_ZIP_MAGIC, b"\x80")):
        return (
            f"refusing to open {path.name!r}: it looks like a pickled PyTorch file, and unpickling can run "
            "arbitrary code. VAE Studio loads only checkpoint folders (model.safetensors + config.json)."
        )
    return f"{path.name!r} is a file; a checkpoint is a folder holding {MODEL} and {CONFIG}"


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], list]:
    tensors = {}
    for index, slots in state["state"].items():
        for name, value in slots.items():
            value = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"state.{index}.{name}"] = value.detach().cpu().contiguous()
    return tensors, state["param_groups"]


def _read_optimizer(path: Path) -> dict:
    try:
        with safe_open(path, framework="pt") as f:
            groups = json.loads(f.metadata()["param_groups"])
            state: dict[int, dict] = {}
            for key in f.keys():
                _, index, name = key.split(".", 2)
                state.setdefault(int(index), {})[name] = f.get_tensor(key)
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{OPTIMIZER} in {path.parent.name!r} is corrupt ({exc})") from exc
    return {"state": state, "param_groups": groups}


def _backup_path(path: Path) -> Path:
    return path.parent / f".{path.name}.previous"


def _swap_into_place(tmp: Path, path: Path) -> None:
    """Rename the new folder in; the old one is moved aside first and removed last.

    POSIX cannot rename a folder over a non-empty one, so there is a moment with the
    old checkpoint only at its backup name; `_recover_interrupted_swap` handles a
    crash in that moment.
    """
    backup = _backup_path(path)
    if backup.exists() and path.exists():
        shutil.rmtree(backup)
    if path.exists():
        os.rename(path, backup)
    os.rename(tmp, path)
    shutil.rmtree(backup, ignore_errors=True)


def _recover_interrupted_swap(path: Path) -> None:
    backup = _backup_path(path)
    if not path.exists() and backup.is_dir():
        os.rename(backup, path)


def _fsync_folder(folder: Path) -> None:
    for item in folder.iterdir():
        with open(item, "rb") as f:
            os.fsync(f.fileno())
