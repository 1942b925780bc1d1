"""Conditional digit: the session's CVAE asked for a chosen class, or every class in the same styles."""

from __future__ import annotations

import gradio as gr
import numpy as np

from vae_core import explore
from vae_core.config import Limit

from .. import limits
from ..components import Slider, grid_image
from ..handler import SAMPLING, active, gpu, user_facing
from ..page import Page
from ..session import Studio


class ConditionalTab:
    def __init__(self, studio: Studio):
        self.studio = studio

    @user_facing
    def conditional(self, digit: int = 0, n: int = 64, seed: int = 0, request: gr.Request = None) -> np.ndarray:
        """n samples of one class (0 … classes − 1) from the active CVAE."""
        model = active(self.studio, request, "cvae").model
        digit = Limit(0, model.config.n_classes - 1, whole=True).check("digit", digit)  # the model's own classes
        return explore.conditional_grid(model, digit, limits.check("n_samples", n, "n"), limits.check("seed", seed))

    @user_facing
    def all_digits(self, styles: int = 8, seed: int = 0, request: gr.Request = None) -> np.ndarray:
        """Every class in a row; each column keeps one latent code, i.e. one style."""
        model = active(self.studio, request, "cvae").model
        return explore.all_classes_grid(model, limits.check("styles", styles), limits.check("seed", seed))


def build(page: Page) -> None:
    tab = ConditionalTab(page.studio)
    with gr.Tab("Conditional digit", id="conditional", elem_id="tab-conditional"), gr.Row():
        with gr.Column(scale=1):
            digit = Slider(0, 9, value=0, step=1, label="Digit")
            n = limits.slider("n_samples", "n", 64)
            seed = limits.seed()
            generate = gr.Button("Generate", variant="primary", elem_id="conditional-btn")
            styles = limits.slider("styles", "Styles (columns)", 8)
            style_seed = limits.seed("Style seed")
            every = gr.Button("All digits, same styles", elem_id="all-digits-btn")
        with gr.Column(scale=2):
            out = grid_image("Samples of the chosen digit", "conditional-grid")
            all_out = grid_image("One row per digit; a column keeps its style", "all-digits-grid")
    generate.click(gpu(tab.conditional), [digit, n, seed], out, api_name="conditional", **SAMPLING)
    every.click(gpu(tab.all_digits), [styles, style_seed], all_out, api_name="all_digits", **SAMPLING)
