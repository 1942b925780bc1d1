"""The checkpoint format: a folder of `model.safetensors`, `optimizer.safetensors`, `config.json`, `README.md`.

safetensors holds tensors only, so loading a checkpoint can never run code the way
unpickling a `.pt` file can. This module turns a model into those files and back; it reads
a folder or an uploaded zip into bytes, hands every byte to `validate` before a tensor is
allocated, and leaves the atomic write to `files`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from .. import __version__
from ..archive import checked_entries, open_zip
from ..card import model_card
from ..models import Model, build_model
from .files import recover_interrupted_swap, write_files
from .names import CARD, CHECKPOINT_FILES, CONFIG, FORMAT, MODEL, OPTIMIZER, CheckpointError
from .validate import (
    MAX_CHECKPOINT_BYTES,
    MAX_CHECKPOINT_FILES,
    check_adam_state,
    check_complete,
    check_headers,
    check_info,
    check_weights,
    check_zip_entry,
    file_refusal,
    parse_config,
)


@dataclass
class Checkpoint:
    """A checkpoint read and checked: its model on the device asked for, config.json's fields, where it came from,
    and Adam's state only when asked for (to resume a run)."""

    model: Model
    info: dict
    path: Path
    optimizer_state: dict | None = field(default=None, repr=False)  # parameter index → Adam's slots


def save_checkpoint(path: str | os.PathLike, model: Model, optimizer: torch.optim.Optimizer | None, info: dict) -> Path:
    """Write the checkpoint folder atomically; `info` goes into config.json beside the model config.

    The folder carries a model card (README.md) written from the same config, so it can be
    published to the Hugging Face Hub as it is (`python -m vae_core push`).
    """
    config = {"format": FORMAT, "version": __version__, "model": model.config.to_dict(), **info}
    files = {MODEL: save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}),
             CONFIG: json.dumps(config, indent=2).encode(), CARD: model_card(config).encode()}
    if optimizer is not None:
        tensors, groups = _flatten_optimizer(optimizer.state_dict())
        files[OPTIMIZER] = save(tensors, metadata={"param_groups": json.dumps(groups)})
    return write_files(path, files)


def load_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu", with_optimizer: bool = False
) -> Checkpoint:
    """Rebuild the model from config.json alone and fill it from model.safetensors, after checking both."""
    path = Path(path)
    return checkpoint_from_files(read_folder(path), path.name, device, with_optimizer, path=path)


def read_folder(path: Path) -> dict[str, bytes]:
    """The checkpoint files a folder holds, by name (a file given instead is refused unopened, a pickle by name)."""
    recover_interrupted_swap(path)
    if path.is_file():
        with open(path, "rb") as f:
            raise CheckpointError(file_refusal(path.name, f.read(4)))
    if not path.is_dir():
        raise CheckpointError(f"no checkpoint folder at {path.name!r}")
    return {name: (path / name).read_bytes() for name in CHECKPOINT_FILES if (path / name).is_file()}


def read_checkpoint_zip(zip_path: str, name: str) -> dict[str, bytes]:
    """The files of a zipped checkpoint folder someone uploaded, read in memory within the upload limits.

    Only a checkpoint's own files may be inside (one wrapping folder allowed): a pickle, a
    stray file or a nested path is refused by name, before anything is unpacked.
    """
    with open_zip(zip_path, name, CheckpointError) as archive:
        entries = checked_entries(archive, MAX_CHECKPOINT_FILES, MAX_CHECKPOINT_BYTES, CheckpointError)
        files: dict[str, bytes] = {}
        for rel, read in entries:
            check_zip_entry(rel, files)
            files[rel.name] = read()
    return files


def checkpoint_from_files(files: dict[str, bytes], name: str, device: str | torch.device = "cpu",
                          with_optimizer: bool = False, foreign: bool = False, path: Path | None = None) -> Checkpoint:
    """A checkpoint from its files' bytes, every one of them checked before a single tensor is allocated.

    config.json is checked field by field (`check_info`), then each safetensors file's header
    against the shapes the config implies (the model is built on the "meta" device: shapes, no
    memory) and against the file's own length. Only then are the tensors read. `foreign` marks
    a checkpoint from elsewhere (an upload): its fields may not name places on this machine.
    """
    check_complete(files, name)
    info = parse_config(files[CONFIG], name)
    config = check_info(info, foreign, name)
    with torch.device("meta"):
        skeleton = build_model(config)
    check_headers(files, skeleton, name)
    model = build_model(config)
    try:
        state = load(files[MODEL])
        model.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{MODEL} in {name!r} is corrupt or does not match its {CONFIG} ({first})") from exc
    check_weights(state, name)
    model.to(device).eval()
    optimizer_state = None
    if OPTIMIZER in files and (with_optimizer or foreign):  # an upload's state is checked now, not when resumed
        optimizer_state = _read_optimizer(files[OPTIMIZER], name)
    return Checkpoint(model, info, path or Path(name), optimizer_state if with_optimizer else None)


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], list]:
    """Adam's state_dict as flat `state.<index>.<slot>` tensors (safetensors holds no nesting) and its groups."""
    tensors = {}
    for index, slots in state["state"].items():
        for name, value in slots.items():
            value = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"state.{index}.{name}"] = value.detach().cpu().contiguous()
    return tensors, state["param_groups"]


def _read_optimizer(blob: bytes, name: str) -> dict:
    """Adam's per-parameter state only. Its hyperparameters (param_groups) are the resuming run's own,
    so a checkpoint can never hand the optimizer another beta, eps or amsgrad."""
    try:
        state: dict[int, dict] = {}
        for key, tensor in load(blob).items():
            _, index, slot = key.split(".", 2)
            state.setdefault(int(index), {})[slot] = tensor
    except (SafetensorError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{OPTIMIZER} in {name!r} is corrupt ({str(exc)[:120]})") from None
    check_adam_state(state, name)
    return state
