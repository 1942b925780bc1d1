"""Every check of a checkpoint's content, which may come from anyone (an upload, a folder found on disk).

Each check reads only what it is given and refuses with one sentence for the user (a
`CheckpointError`), before anything the content claims is built or allocated: config.json
is bounded in size and depth, then checked field by field; a safetensors header is checked
against the shapes the config implies and against the file's own length; Adam's state must
be one Adam could have; a pickle is refused by name, unopened, since unpickling runs code.
Reading and writing the files is `format`'s job; this module only says yes or no.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import PurePath

import torch

from ..config import LIMITS, ModelConfig, TrainConfig
from ..datasets import DATASETS, FOLDER_PREFIX
from ..models import Model, config_from_dict
from .names import CHECKPOINT_FILES, CONFIG, FORMAT, MODEL, OPTIMIZER, CheckpointError

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


def check_complete(files: dict[str, bytes], name: str) -> None:
    """Refuse a checkpoint without the two files a model is rebuilt from."""
    for needed in (CONFIG, MODEL):
        if needed not in files:
            raise CheckpointError(f"{name!r} is not a complete checkpoint: {needed} is missing")


def parse_config(blob: bytes, name: str) -> dict:
    """config.json's object, within bounds: its size, its nesting and its numbers' digits are all the sender's."""
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
    """The first thing wrong with config.json's fields, as the end of a sentence; None if nothing is.

    `foreign` (a checkpoint brought to this server) also refuses a dataset that is a path:
    a checkpoint from elsewhere may not name places on this machine.
    """
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
    """The first thing wrong with the run's settings (`train`), checked as the trainer itself would take them."""
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


def check_headers(files: dict[str, bytes], skeleton: Model, name: str) -> None:
    """The safetensors files' headers against the shapes of `skeleton`, the model built on the "meta" device.

    A "meta" model has shapes and no memory, so a config that describes a huge model costs
    nothing here, and a file that does not fit it is refused before its tensors are read.
    """
    expected = {key: tuple(t.shape) for key, t in skeleton.state_dict().items()}
    _compare(MODEL, name, expected, tensor_header(files[MODEL], MODEL, name)[0])
    if OPTIMIZER in files:
        _check_optimizer(files[OPTIMIZER], [tuple(p.shape) for p in skeleton.parameters()], name)


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
    """Refuse a file whose tensors are not the expected ones, naming a few missing, unexpected or misshapen."""
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


def check_weights(state: dict[str, torch.Tensor], name: str) -> None:
    """Refuse weights that are not finite: training never saves these (a NaN loss ends the run),
    so such a file was made some other way."""
    broken = sorted(key for key, tensor in state.items() if not torch.isfinite(tensor).all())
    if broken:
        raise CheckpointError(f"{MODEL} in {name!r} holds NaN or infinite weights ({', '.join(broken[:3])})")


def check_adam_state(state: dict[int, dict], name: str) -> None:
    """Refuse per-parameter state that Adam cannot reach: a moment not finite, a negative step or second moment."""
    for slots in state.values():
        if not all(torch.isfinite(t).all() for t in slots.values()) or slots["step"].item() < 0 \
                or (slots["exp_avg_sq"] < 0).any():
            raise CheckpointError(f"{OPTIMIZER} in {name!r} holds a state Adam cannot have (not finite, or negative)")


def check_zip_entry(rel: PurePath, seen: dict[str, bytes]) -> None:
    """One file of an uploaded zip, by its path alone, before it is unpacked: `seen` holds the files read so far.

    Only a checkpoint's own files may be inside, each once and side by side: a pickle, a
    stray file or a nested path is refused by name.
    """
    if rel.suffix.lower() in PICKLE_SUFFIXES:
        raise CheckpointError(file_refusal(rel.name, b""))
    if len(rel.parts) > 1 or rel.name not in CHECKPOINT_FILES:
        raise CheckpointError(f"{str(rel)[:80]!r} is not part of a VAE Studio checkpoint, which holds "
                              f"{', '.join(CHECKPOINT_FILES)} side by side; zip only the checkpoint folder")
    if rel.name in seen:
        raise CheckpointError(f"the zip holds {rel.name} twice; zip the checkpoint folder again")


def file_refusal(name: str, head: bytes) -> str:
    """Why a file given where a checkpoint folder belongs is refused, judged by its name and first bytes (`head`).

    A pickle is named as such (by suffix, or by a torch zip's or a pickle's magic bytes) and
    never opened further, since unpickling can run arbitrary code.
    """
    if PurePath(name).suffix.lower() == ".zip":
        return f"{name!r} is a zip: unzip it, and give the folder it holds (model.safetensors + config.json)"
    if PurePath(name).suffix.lower() in PICKLE_SUFFIXES or head.startswith((_ZIP_MAGIC, b"\x80")):
        return (
            f"refusing to open {name!r}: it looks like a pickled PyTorch file, and unpickling can run "
            "arbitrary code. VAE Studio loads only checkpoint folders (model.safetensors + config.json)."
        )
    return f"{name!r} is a file; a checkpoint is a folder holding {MODEL} and {CONFIG}"
