"""One gate for every request's inputs, before Gradio itself touches them.

Gradio checks a payload in several places before our handlers run (moving files into its
cache, validating file payloads, comparing a choice with the list), and each refusal there
logs a traceback and reaches the client as a type's repr, an object name or no sentence at
all. The app's Blocks check every input here first, by what the component takes, and turn
whatever Gradio still refuses into one plain sentence without a traceback.
"""

from __future__ import annotations

import gradio as gr

from .handler import Refusal, uploaded

NOT_ACCEPTED = "{label}: this input is not in a form this endpoint takes; see the page's \"Use via API\" for its types."
FILE_INPUTS = (gr.Image, gr.File, gr.ImageEditor)


class GatedBlocks(gr.Blocks):
    """`gr.Blocks` whose every event checks its inputs with `check_input` before Gradio's own processing."""

    async def preprocess_data(self, block_fn, inputs, state, explicit_call=False):
        for block, payload in zip(block_fn.inputs, inputs, strict=False):
            check_input(block, payload)
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except Refusal:
            raise
        except Exception:  # noqa: BLE001 - Gradio's own refusal of a payload the gate let through
            raise Refusal(NOT_ACCEPTED.format(label="One of the inputs")) from None


def check_input(block: gr.components.Component, payload) -> None:
    """Refuse a payload that its component cannot take, with a sentence naming the input and no object.

    Files must be this server's uploads (`uploaded`): a payload naming any other path is refused
    the same way whether or not it exists. A choice must be one of the component's choices.
    """
    if payload is None:
        return
    label = getattr(block, "label", None) or "An input"
    if isinstance(block, FILE_INPUTS):
        for path in _paths(block, payload):
            if not isinstance(path, str):
                raise Refusal(NOT_ACCEPTED.format(label=label))
            uploaded(path)
    elif isinstance(block, gr.Radio | gr.Dropdown) and not getattr(block, "allow_custom_value", False) \
            and not getattr(block, "checked_by_handler", False):
        values = [value for _, value in block.choices]
        if payload not in values:
            shown = ", ".join(repr(v) for v in values)
            raise Refusal(f"{label} must be one of {shown}, not {str(payload)[:40]!r}")


def _paths(block: gr.components.Component, payload) -> list:
    """The file paths a file input's payload names (a drawing names up to three files, or a blob id)."""
    if isinstance(block, gr.ImageEditor):
        if not isinstance(payload, dict):
            return [None]
        layers = payload.get("layers") or []
        files = [payload.get("background"), payload.get("composite"), *(layers if isinstance(layers, list) else [0])]
        return [f.get("path") if isinstance(f, dict) else None for f in files if f is not None]
    return [payload.get("path") if isinstance(payload, dict) else None]
