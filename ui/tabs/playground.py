"""Latent playground: the decoder runs in the page, so the digit redraws on every slider or pad event."""

from __future__ import annotations

import json
import math
from pathlib import Path

import gradio as gr
import numpy as np

from vae_core import browser
from vae_core.config import Limit
from vae_core.models import PriorSampler

from ..handler import SAMPLING, Refusal, active, first_test_pictures, gpu, user_facing
from ..page import Page
from ..session import Studio
from .conditional import class_names

LABEL = "Latent playground"  # the tab's name, as the page shows it

SCRIPT = (Path(__file__).parents[1] / "playground.js").read_text()


class PlaygroundTab:
    def __init__(self, studio: Studio):
        self.studio = studio

    @user_facing
    def spec(self, kind: str = "vae", request: gr.Request = None):
        """The session's model for the page: its dimensions by KL, its classes and its MLP decoder (private)."""
        model = active(self.studio, request, PriorSampler, kind)
        x, labels, _ = first_test_pictures(self.studio, model)  # their average KL orders the dimensions
        spec = browser.playground(model.model, x, labels, class_names(model))
        return gr.HTML(spec=json.dumps({**spec, "source": model.source})), gr.Image(visible=spec["decoder"] is None)

    @user_facing
    def server_decode(self, kind: str, value: str, request: gr.Request = None) -> np.ndarray:
        """The page's code decoded here, for a model whose decoder the page cannot run (private)."""
        model = active(self.studio, request, PriorSampler, kind).model
        try:
            asked = json.loads(value)
            code, label = [float(v) for v in asked["code"]], int(asked.get("label", 0))
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError):
            raise Refusal("The playground's code must be JSON: {\"code\": [numbers], \"label\": class}") from None
        if len(code) != model.config.latent:
            return gr.skip()  # a code from the model shown before this one
        if not all(math.isfinite(v) and abs(v) <= 10 for v in code):
            raise Refusal("A code's values must be finite numbers within ±10")
        Limit(0, max(model.config.n_classes - 1, 0), whole=True).check("label", label)
        pixels = browser.decode(model, code, label)
        return np.round(pixels[0] * 255).astype(np.uint8)


def build(page: Page) -> None:
    tab = PlaygroundTab(page.studio)
    with gr.Tab(LABEL, id="playground", elem_id="tab-playground") as opened:
        kind = page.kind_choice(PriorSampler, elem_id="playground-model", info="which of this session's active models")
        with gr.Row():
            space = gr.HTML(value="", html_template="<div></div>", js_on_load=SCRIPT, spec="",
                            elem_id="playground", elem_classes=["playground"])
        decoded = gr.Image(label="Decoded on the server (conv models)", type="numpy", interactive=False,
                           elem_classes=["grid"], height=200, visible=False, elem_id="playground-server")
    gr.on([opened.select, page.models.change, kind.change], tab.spec, kind, [space, decoded],
          api_visibility="private", **SAMPLING)
    space.change(gpu(tab.server_decode), [kind, space], decoded, api_visibility="private", trigger_mode="always_last",
                 **SAMPLING)
