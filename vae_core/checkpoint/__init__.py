"""Checkpoints as folders: `model.safetensors`, `optimizer.safetensors`, `config.json` (and a `README.md` card).

safetensors holds tensors only, so loading a checkpoint can never run code the way
unpickling a `.pt` file can. A folder is written whole into a temporary sibling and
renamed into place, so a crash mid-write leaves the previous checkpoint readable.

Three jobs, one module each, so each can be read (and reviewed) on its own, and one leaf:

- `format`: what a checkpoint is: `save_checkpoint`, `load_checkpoint`, reading a folder or
  an uploaded zip into bytes, `checkpoint_from_files`, the `Checkpoint` it returns.
- `validate`: every check of content that may come from anyone: config.json's size, depth
  and fields, safetensors headers, Adam's state, pickles and stray files refused by name.
  Kept apart because it is the server's guard against uploads, and only says yes or no.
- `files`: atomic writes (temporary folder, fsync, swap into place, recovery of a swap a
  crash interrupted) and `check_output`, which keeps a write off anything not ours.
- `names`: the file names, the format tag and `CheckpointError`, which all three use; it
  imports nothing, so the others import it without a cycle.

Everything the rest of VAE Studio uses is importable from here, as it was from the one
module this package replaces.
"""

from .files import check_output, write_files
from .format import (
    Checkpoint,
    checkpoint_from_files,
    load_checkpoint,
    read_checkpoint_zip,
    read_folder,
    save_checkpoint,
)
from .names import CARD, CHECKPOINT_FILES, CONFIG, FORMAT, MODEL, OPTIMIZER, CheckpointError
from .validate import (
    ADAM_SLOTS,
    DTYPE_BYTES,
    INFO_FIELDS,
    MAX_CHECKPOINT_BYTES,
    MAX_CHECKPOINT_FILES,
    MAX_CONFIG_BYTES,
    PATH_SETTINGS,
    PICKLE_SUFFIXES,
    TRAIN_FIELDS,
    check_info,
    tensor_header,
)

__all__ = [
    "CARD", "CHECKPOINT_FILES", "CONFIG", "FORMAT", "MODEL", "OPTIMIZER", "CheckpointError",
    "Checkpoint", "checkpoint_from_files", "load_checkpoint", "read_checkpoint_zip", "read_folder", "save_checkpoint",
    "check_output", "write_files",
    "ADAM_SLOTS", "DTYPE_BYTES", "INFO_FIELDS", "MAX_CHECKPOINT_BYTES", "MAX_CHECKPOINT_FILES", "MAX_CONFIG_BYTES",
    "PATH_SETTINGS", "PICKLE_SUFFIXES", "TRAIN_FIELDS", "check_info", "tensor_header",
]
