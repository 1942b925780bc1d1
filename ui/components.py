"""Gradio components that answer bad input with a sentence instead of a stack trace.

Gradio's own Slider/Number compare the payload with their bounds before our handler
runs, so a string from an API client raises a TypeError inside Gradio; its Image
opens uploads with Pillow first, so a text file does the same. These subclasses turn
both into `gr.Error` with a plain message.
"""

from __future__ import annotations

import io
import threading

import gradio as gr
from gradio.components.base import server
from PIL import Image as PILImage

from vae_core.config import check_number
from vae_core.images import MAX_UPLOAD_BYTES, ImageError, open_checked

from .handler import Refusal, sketch_to_image, uploaded


def _check_number(label: str | None, payload) -> None:
    """A widget's payload must be a finite JSON number before Gradio compares it with its bounds."""
    try:
        check_number(label or "This value", payload, text=False)
    except ValueError as exc:
        raise Refusal(str(exc)) from None


class Slider(gr.Slider):
    def preprocess(self, payload):
        _check_number(self.label, payload)
        return _quietly(super().preprocess, payload)


def _quietly(preprocess, payload):
    """Gradio's own bound checks, their message kept, raised as a Refusal (no traceback in the log)."""
    try:
        return preprocess(payload)
    except Refusal:
        raise
    except gr.Error as exc:
        raise Refusal(exc.message) from None


class ClassButtons(gr.Radio):
    """A class index picked from buttons named by class: 0–9 for digits, folder names for your pictures.

    Any number reaches the handler, which checks it against the model's own classes: the
    buttons follow the session's CVAE, which the component as first built (0–9) does not know.
    """

    checked_by_handler = True  # the input gate leaves the choice to the handler

    def get_block_name(self) -> str:
        return "radio"  # the browser draws it with Gradio's own radio buttons

    def api_info(self) -> dict:
        return {"type": "integer", "description": "class index: 0 … classes − 1 (see /classes)"}

    def preprocess(self, payload):
        _check_number(self.label, payload)
        return payload


class QuadrantToggle(gr.CheckboxGroup):
    """The given quadrants as a 2×2 of toggles laid out as the picture's quadrants (with `elem_classes=["quadrants"]`).

    The handler reads them as the API spells them, names joined by "+" ("top-left+bottom-left"),
    and checks them; an API caller may send that string or a list of names.
    """

    def get_block_name(self) -> str:
        return "checkboxgroup"

    def preprocess(self, payload):
        if isinstance(payload, str):
            return payload
        if not isinstance(payload, list) or not all(isinstance(name, str) for name in payload):
            raise Refusal(f"{self.label} must name quadrants, e.g. 'top-left+bottom-left'")
        return "+".join(payload)

    def api_info(self) -> dict:
        return {"type": "string", "description": "1 to 3 quadrant names joined by '+', e.g. 'top-left+bottom-left'"}


def _a_name(label: str | None, payload, example: str):
    """A choice whose choices follow the session (its kinds, its runs): the handler, not the gate, checks the
    pick, since Gradio's own check would use the choices as first built. Here it need only be a name."""
    if payload is not None and not isinstance(payload, str):
        raise Refusal(f"{label}: a name, such as {example}")
    return payload


class KindChoice(gr.Radio):
    """Which of the session's models a tab uses, by kind; `Studio.model_for` checks the pick."""

    checked_by_handler = True

    def get_block_name(self) -> str:
        return "radio"

    def preprocess(self, payload):
        return _a_name(self.label, payload, "vae")


class ModelChoice(gr.Dropdown):
    """A model picker: its choices follow the session's runs; `Studio.choose` checks the pick."""

    checked_by_handler = True

    def get_block_name(self) -> str:
        return "dropdown"

    def preprocess(self, payload):
        return _a_name(self.label, payload, "weights/vae")


def enumerate_names(names: list[str]) -> list[tuple[str, int]]:
    """(shown name, index) pairs for radio buttons whose value is the class index."""
    return [(name, i) for i, name in enumerate(names)]


class Number(gr.Number):
    def preprocess(self, payload):
        _check_number(self.label, payload)
        return _quietly(super().preprocess, payload)


class DigitImage(gr.Image):
    """An upload box passing on the path of an upload (the gate checked it); an unreadable file gets a sentence."""

    def get_block_name(self) -> str:
        return "image"  # the browser draws it with Gradio's own image component

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError):
            raise Refusal("That file is not an image that can be read (try a PNG or JPEG of one digit).") from None


class Sketch(gr.Sketchpad):
    """A drawing pad whose pictures are size-checked from their headers before anything decodes them.

    The page sends a drawing's pictures as blobs (kept until the drawing is used) or as files;
    a crafted request could send a 99 KB PNG of 12,000×12,000 pixels as its "composite" and
    have the server decode 4.5 GB. Each picture goes through `open_checked` first. The blobs
    waiting to be used are bounded in bytes and number, and a drawing has one layer (the pad
    is built with `layers=False`): Gradio's own store would grow a list to any layer index sent.
    """

    BLOBS_KEPT = 256
    BLOB_BYTES_KEPT = 64_000_000  # all sessions' waiting drawings together: a few hundred 280×280 PNGs
    _blob_lock = threading.Lock()

    def get_block_name(self) -> str:
        return "imageeditor"  # the browser draws it with Gradio's own sketchpad

    def convert_and_format_image(self, file, flatten_on_white: bool = False):
        if file is not None:
            source = io.BytesIO(file) if isinstance(file, bytes | bytearray) else uploaded(file.path)
            try:
                open_checked(source).close()
            except ImageError as exc:
                raise Refusal(f"The drawing cannot be used: {exc}") from None
        return super().convert_and_format_image(file, flatten_on_white)

    @server
    def accept_blobs(self, data):
        blob = data.files[0][1] if data.files else b""
        if len(blob) > MAX_UPLOAD_BYTES:
            raise Refusal(f"A drawing's picture must be under {MAX_UPLOAD_BYTES // 1_000_000} MB")
        kind, index = data.data.get("type"), data.data.get("index")
        if kind not in ("background", "composite", "layer") or (kind == "layer" and str(index) != "0"):
            raise Refusal("A drawing has one layer, a background and a composite")
        with self._blob_lock:
            super().accept_blobs(data)
            # oldest first: a drawing never used is not kept forever, nor can drawings add up
            while len(self.blob_storage) > 1 and (len(self.blob_storage) > self.BLOBS_KEPT
                                                  or self._blob_bytes() > self.BLOB_BYTES_KEPT):
                self.blob_storage.pop(next(iter(self.blob_storage)))

    def _blob_bytes(self) -> int:
        return sum(len(part or b"") for blobs in self.blob_storage.values()
                   for part in (blobs.background, blobs.composite, *blobs.layers))


def digit_input(label: str, elem_id: str) -> DigitImage:
    """An upload box with a Draw tab beside it; a drawing becomes the box's picture."""
    with gr.Tabs():
        with gr.Tab("Upload"):
            image = DigitImage(label=label, type="filepath", image_mode=None, format="png", height=200,
                               sources=["upload", "clipboard"], elem_id=elem_id, elem_classes=["digit"])
        with gr.Tab("Draw") as draw:
            sketch = Sketch(
                label=f"Draw {label.lower()}: each stroke fills the upload box and runs at once",
                type="numpy", canvas_size=(280, 280), transforms=(),
                brush=gr.Brush(colors=["#000000"], default_size=14, color_mode="fixed"), layers=False,
                elem_id=f"{elem_id}-sketch", height=320,
            )
    # the brush is the tool from the start, and after a clear: Gradio's pad waits for a click on it otherwise
    brush = f"""() => setTimeout(() => document.querySelector('#{elem_id}-sketch button[aria-label="Brush"]')?.click(),
                 100)"""
    draw.select(None, None, None, api_visibility="private", js=brush)
    sketch.clear(None, None, None, api_visibility="private", js=brush)
    # cheap once checked, but never unbounded: a burst of drawings cannot take every worker thread
    sketch.change(sketch_to_image, sketch, image, api_visibility="private", concurrency_id="sketch",
                  concurrency_limit=2)
    return image


def reseed_button(label: str, seed: gr.Number, elem_id: str) -> gr.Button:
    """A "new draw" button: it sets a fresh seed in the page (no server call), and the seed's change re-runs."""
    button = gr.Button(label, variant="primary", elem_id=elem_id)
    button.click(None, None, seed, js="() => Math.floor(Math.random() * 1000000)", api_visibility="private")
    return button


def grid_image(label: str, elem_id: str, height: int = 500) -> gr.Image:
    """An output grid shown as the exact PNG the API returns, pixelated when enlarged.

    500 px shows a default 8×8 grid (242 px) a little over twice life-size.
    """
    return gr.Image(label=label, format="png", type="numpy", elem_id=elem_id, elem_classes=["grid"],
                    interactive=False, buttons=["download", "fullscreen"], height=height)
