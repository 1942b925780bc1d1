"""What every part of a checkpoint is called: its files, its format tag, and the one error the package raises.

A leaf module, importing nothing: the reader and writer (`format`), the checks (`validate`)
and the atomic writes (`files`) all need these names (in their messages, and to tell our
folders from the user's), so they live below all three and no import runs in a circle.
"""

CONFIG = "config.json"
MODEL = "model.safetensors"
OPTIMIZER = "optimizer.safetensors"
CARD = "README.md"  # the model card: Hugging Face front matter and the command that reproduces the run
CHECKPOINT_FILES = (CONFIG, MODEL, OPTIMIZER, CARD)
FORMAT = "vae-studio-checkpoint"


class CheckpointError(Exception):
    """A checkpoint that cannot be used; its message is meant for the user."""
