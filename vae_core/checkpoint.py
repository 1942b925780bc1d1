"""Checkpoints as folders: `model.safetensors`, `optimizer.safetensors`, `config.json`.

safetensors holds tensors only, so loading a checkpoint can never run code the way
unpickling a `.pt` file can. A folder is written whole into a temporary sibling and
renamed into place, so a crash mid-write leaves the previous checkpoint readable.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from . import __version__
from .archive import checked_entries, open_zip
from .card import model_card
from .config import LIMITS, ModelConfig, TrainConfig
from .datasets import DATASETS, FOLDER_PREFIX
from .models import Model, build_model, config_from_dict

CONFIG = "config.json"
MODEL = "model.safetensors"
OPTIMIZER = "optimizer.safetensors"
CARD = "README.md"  # the model card: Hugging Face front matter and the command that reproduces the run
CHECKPOINT_FILES = (CONFIG, MODEL, OPTIMIZER, CARD)
FORMAT = "vae-studio-checkpoint"
INFO_FIELDS = {"format", "version", "model", "dataset", "dataset_note", "class_names", "epochs_trained", "metrics",
               "history", "train"}
# a run's settings that name places on the machine that ran it (the trainer leaves them out of config.json)
PATH_SETTINGS = {"out", "resume", "data_root", "init_from"}
TRAIN_FIELDS = {f.name for f in fields(TrainConfig)}
ADAM_SLOTS = ("step", "exp_avg", "exp_avg_sq")
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin")
# An uploaded checkpoint zip: an MLP of hidden width 8192 at 28×28 with its Adam state is ~160 MB.
MAX_CHECKPOINT_BYTES = 300_000_000
MAX_CHECKPOINT_FILES = 8
MAX_CONFIG_BYTES = 20_000_000  # 10,000 epochs of history is ~4 MB
_ZIP_MAGIC = b"PK\x03\x04"


class CheckpointError(Exception):
    """A checkpoint that cannot be used; its message is meant for the user."""


@dataclass
class Checkpoint:
    model: Model
    info: dict
    path: Path
    optimizer_state: dict | None = field(default=None, repr=False)  # parameter index → Adam's slots


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


def load_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu", with_optimizer: bool = False
) -> Checkpoint:
    """Rebuild the model from config.json alone and fill it from model.safetensors, after checking both."""
    path = Path(path)
    return checkpoint_from_files(read_folder(path), path.name, device, with_optimizer, path=path)


def read_folder(path: Path) -> dict[str, bytes]:
    """The checkpoint files a folder holds, by name (a file given instead is refused unopened, a pickle by name)."""
    _recover_interrupted_swap(path)
    if path.is_file():
        with open(path, "rb") as f:
            raise CheckpointError(_file_refusal(path.name, f.read(4)))
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
        files = {}
        for rel, read in entries:
            if rel.suffix.lower() in PICKLE_SUFFIXES:
                raise CheckpointError(_file_refusal(rel.name, b""))
            if len(rel.parts) > 1 or rel.name not in CHECKPOINT_FILES:
                raise CheckpointError(f"{str(rel)[:80]!r} is not part of a VAE Studio checkpoint, which holds "
                                      f"{', '.join(CHECKPOINT_FILES)} side by side; zip only the checkpoint folder")
            if rel.name in files:
                raise CheckpointError(f"the zip holds {rel.name} twice; zip the checkpoint folder again")
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
    for needed in (CONFIG, MODEL):
        if needed not in files:
            raise CheckpointError(f"{name!r} is not a complete checkpoint: {needed} is missing")
    info = _parse_config(files[CONFIG], name)
    config = check_info(info, foreign, name)
    with torch.device("meta"):
        skeleton = build_model(config)
    expected = {key: tuple(t.shape) for key, t in skeleton.state_dict().items()}
    _compare(MODEL, name, expected, tensor_header(files[MODEL], MODEL, name)[0])
    if OPTIMIZER in files:
        _check_optimizer(files[OPTIMIZER], [tuple(p.shape) for p in skeleton.parameters()], name)
    model = build_model(config)
    try:
        state = load(files[MODEL])
        model.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{MODEL} in {name!r} is corrupt or does not match its {CONFIG} ({first})") from exc
    broken = sorted(key for key, tensor in state.items() if not torch.isfinite(tensor).all())
    if broken:  # training never saves these (a NaN loss ends the run): this file was made some other way
        raise CheckpointError(f"{MODEL} in {name!r} holds NaN or infinite weights ({', '.join(broken[:3])})")
    model.to(device).eval()
    optimizer_state = None
    if OPTIMIZER in files and (with_optimizer or foreign):  # an upload's state is checked now, not when resumed
        optimizer_state = _read_optimizer(files[OPTIMIZER], name)
    return Checkpoint(model, info, path or Path(name), optimizer_state if with_optimizer else None)


def _parse_config(blob: bytes, name: str) -> dict:
    if len(blob) > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{CONFIG} in {name!r} is {len(blob) / 1e6:.0f} MB; a checkpoint's is under "
                              f"{MAX_CONFIG_BYTES // 1_000_000} MB")
    try:
        info = json.loads(blob)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{CONFIG} in {name!r} is not valid JSON ({exc})") from exc
    except RecursionError:
        raise CheckpointError(f"{CONFIG} in {name!r} is nested too deeply to be a checkpoint's") from None
    except ValueError:  # Python's bound on the digits of an integer
        raise CheckpointError(f"{CONFIG} in {name!r} holds a number too long to be a setting") from None
    if not isinstance(info, dict):
        raise CheckpointError(f"{CONFIG} in {name!r} must hold a JSON object")
    return info


def check_info(info: dict, foreign: bool, name: str) -> ModelConfig:
    """Every field of a config.json: its model's settings, its run's, its history; the model's config if all hold."""
    problem = _info_problem(info, foreign)
    if problem:
        raise CheckpointError(f"{CONFIG} in {name!r}: {problem}")
    try:
        return config_from_dict(info["model"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{CONFIG} in {name!r} does not describe a model: {exc}") from exc


def _info_problem(info: dict, foreign: bool) -> str | None:
    unknown = sorted(set(info) - INFO_FIELDS)
    if unknown:
        return f"unknown field(s) {', '.join(repr(k[:40]) for k in unknown[:3])}"
    if info.get("format") != FORMAT:
        return f"its format is {str(info.get('format'))[:40]!r}, not a VAE Studio checkpoint's ({FORMAT!r})"
    model = info.get("model")
    if not isinstance(model, dict):
        return "it has no model settings ('model')"
    shape = model.get("image_shape", [1, 28, 28])
    if not isinstance(shape, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in shape):
        return "model.image_shape must be whole numbers [channels, height, width]"
    epochs = info.get("epochs_trained", 0)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or not 0 <= epochs <= LIMITS["epochs"].hi:
        return f"epochs_trained must be a whole number of epochs, not {str(epochs)[:40]!r}"
    for key in ("dataset", "dataset_note", "version"):
        if not isinstance(info.get(key, ""), str) or len(info.get(key, "")) > 1000:
            return f"{key} must be a short text"
    names = info.get("class_names", [])
    if not isinstance(names, list) or len(names) > LIMITS["n_classes"].hi or \
            not all(isinstance(n, str) and len(n) <= 200 for n in names):
        return "class_names must be a list of short names"
    if names and len(names) != model.get("n_classes", 10):
        return f"it names {len(names)} classes for a model of {model.get('n_classes', 10)}"
    history = info.get("history", [])
    if not isinstance(history, list) or len(history) > LIMITS["epochs"].hi or \
            not all(_is_metrics(entry, epoch=True) for entry in history) or not _is_metrics(info.get("metrics", {})):
        return "history and metrics must hold finite numbers, and each history entry its epoch"
    if foreign:
        dataset = info.get("dataset", "")
        if "/" in dataset or "\\" in dataset or dataset.startswith(FOLDER_PREFIX):
            return (f"its dataset {dataset[:80]!r} is a path; a checkpoint brought to this server may name a "
                    f"dataset ({', '.join(DATASETS)}), not a place on it")
    return _train_problem(info.get("train", {}), foreign, info.get("dataset", ""))


def _train_problem(train: object, foreign: bool, dataset: str) -> str | None:
    if not isinstance(train, dict):
        return "train must hold the run's settings"
    unknown = sorted(set(train) - TRAIN_FIELDS)
    if unknown:
        return f"train has unknown setting(s) {', '.join(repr(k[:40]) for k in unknown[:3])}"
    if foreign:
        paths = sorted(set(train) & PATH_SETTINGS)
        if paths:
            return f"train.{paths[0]} is a path on another machine; it has no place in a checkpoint brought here"
        if train.get("dataset", dataset) != dataset:
            return f"train.dataset ({str(train['dataset'])[:80]!r}) is not the checkpoint's dataset ({dataset!r})"
    size = train.get("image_size")
    if size is not None and (not isinstance(size, list) or len(size) != 2):
        return "train.image_size must be [height, width]"
    try:
        TrainConfig(**{**train, "image_size": tuple(size) if size else None})
        if size:
            for side in size:
                LIMITS["image_side"].check("train.image_size", side)
    except (TypeError, ValueError) as exc:
        return f"train: {str(exc)[:200]}"
    return None


def _is_metrics(entry: object, epoch: bool = False) -> bool:
    """A dict of at most 64 short names to numbers; a history entry (`epoch`) also names its epoch."""
    return isinstance(entry, dict) and len(entry) <= 64 and all(
        isinstance(k, str) and len(k) <= 40 and isinstance(v, int | float) and not isinstance(v, bool)
        and math.isfinite(v) for k, v in entry.items()) and (not epoch or isinstance(entry.get("epoch"), int))


def tensor_header(blob: bytes, file: str, name: str) -> tuple[dict[str, tuple[int, ...]], dict]:
    """A safetensors file's tensor shapes and metadata, read from its JSON header alone and checked against its length.

    Each tensor's declared dtype and shape must fill exactly its byte range, and the ranges must
    lie inside the file: a header that claims a 16 GB tensor in a 1 MB file is refused here,
    so nothing a header says is ever allocated.
    """
    problem = f"{file} in {name!r} is corrupt or not a safetensors file"
    if len(blob) < 8:
        raise CheckpointError(f"{problem} (it is {len(blob)} bytes)")
    size = int.from_bytes(blob[:8], "little")
    if size > min(len(blob) - 8, MAX_CONFIG_BYTES):
        raise CheckpointError(f"{problem} (its header claims {size:,} bytes)")
    try:
        header = json.loads(blob[8: 8 + size])
        metadata = header.pop("__metadata__", None) or {}
        data_bytes, shapes = len(blob) - 8 - size, {}
        for key, entry in header.items():
            shape, (begin, end) = tuple(entry["shape"]), entry["data_offsets"]
            width = DTYPE_BYTES.get(entry["dtype"], 0)
            if not width or not all(isinstance(d, int) and d >= 0 for d in shape) or \
                    not 0 <= begin <= end <= data_bytes or end - begin != math.prod(shape) * width:
                raise ValueError(f"tensor {key[:60]!r} claims {entry['dtype']} {list(shape)} in bytes {begin}–{end} "
                                 f"of {data_bytes:,}")
            shapes[key] = shape
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{problem} ({str(exc)[:200]})") from None
    return shapes, metadata


def _compare(file: str, name: str, expected: dict[str, tuple], found: dict[str, tuple]) -> None:
    if expected != found:
        missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
        wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        detail = "; ".join(f"{what}: {', '.join(n[:60] for n in names[:3])}" for what, names in
                           (("missing", missing), ("unexpected", extra), ("other shapes", wrong)) if names)
        raise CheckpointError(f"{file} in {name!r} does not match its {CONFIG} ({detail})")


def _check_optimizer(blob: bytes, params: list[tuple], name: str) -> None:
    """Adam's state: for each parameter that has had a gradient, a step count and two moments of its shape."""
    shapes, metadata = tensor_header(blob, OPTIMIZER, name)
    stepped = {key.split(".")[1] for key in shapes if key.count(".") == 2}
    expected = {f"state.{i}.{slot}": (() if slot == "step" else shape) for i, shape in enumerate(params)
                for slot in ADAM_SLOTS if str(i) in stepped}
    _compare(OPTIMIZER, name, expected, shapes)
    try:
        groups = json.loads(metadata["param_groups"])
        indices = sorted(i for group in groups for i in group["params"] if isinstance(i, int))
    except (KeyError, TypeError, ValueError, RecursionError):
        raise CheckpointError(f"{OPTIMIZER} in {name!r} has no valid param_groups") from None
    if indices != list(range(len(params))):
        raise CheckpointError(f"{OPTIMIZER} in {name!r} does not list the model's {len(params)} parameters")


def _file_refusal(name: str, head: bytes) -> str:
    if Path(name).suffix.lower() == ".zip":
        return f"{name!r} is a zip: unzip it, and give the folder it holds (model.safetensors + config.json)"
    if Path(name).suffix.lower() in PICKLE_SUFFIXES or head.startswith((_ZIP_MAGIC, b"\x80")):
        return (
            f"refusing to open {name!r}: it looks like a pickled PyTorch file, and unpickling can run "
            "arbitrary code. VAE Studio loads only checkpoint folders (model.safetensors + config.json)."
        )
    return f"{name!r} is a file; a checkpoint is a folder holding {MODEL} and {CONFIG}"


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], list]:
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
    for slots in state.values():
        if not all(torch.isfinite(t).all() for t in slots.values()) or slots["step"].item() < 0 \
                or (slots["exp_avg_sq"] < 0).any():
            raise CheckpointError(f"{OPTIMIZER} in {name!r} holds a state Adam cannot have (not finite, or negative)")
    return state


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
