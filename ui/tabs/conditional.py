"""Conditional digit: the session's CVAE asked for a chosen class, or every class in the same styles."""

from __future__ import annotations

import gradio as gr
import numpy as np

from vae_core import explore
from vae_core.config import Limit
from vae_core.models import LabelConditioned

from .. import limits
from ..catalogue import ActiveModel
from ..components import ClassButtons, enumerate_names, grid_image, reseed_button
from ..handler import LIVE, SAMPLING, active, gpu, user_facing
from ..page import Page
from ..session import Studio

LABEL = "Conditional digit"  # the tab's name, as the page shows it


def class_names(active_model: ActiveModel) -> list[str]:
    return list(active_model.info.get("class_names") or map(str, range(active_model.model.config.n_classes)))


class ConditionalTab:
    def __init__(self, studio: Studio):
        self.studio = studio

    @user_facing
    def conditional(self, digit: int = 0, n: int = 64, seed: int = 0, request: gr.Request = None) -> np.ndarray:
        """n samples of one class from the active CVAE (a conditional VAE), as one PNG grid.

        Args:
            digit: the class index, 0 … classes − 1 (0–9 for MNIST digits; /classes names them).
            n: how many samples, 1–400.
            seed: the random seed of the styles (latent codes).
        """
        model = active(self.studio, request, LabelConditioned).model
        digit = Limit(0, model.config.n_classes - 1, whole=True).check("digit", digit)  # the model's own classes
        return explore.conditional_grid(model, digit, limits.check("n_samples", n, "n"), limits.check("seed", seed))

    @user_facing
    def classes(self, request: gr.Request = None) -> list[str]:
        """The active CVAE's class names, in the order `digit` numbers them (folder names for your own pictures)."""
        active_model = active(self.studio, request, LabelConditioned)
        return class_names(active_model)

    def refresh(self, digit: int = 0, request: gr.Request = None):
        """On opening the tab: one button per class of this session's CVAE, named by its class (private)."""
        names = self.classes(request)
        return gr.Radio(choices=enumerate_names(names), value=digit if digit in range(len(names)) else 0)

    @user_facing
    def all_digits(self, styles: int = 8, seed: int = 0, request: gr.Request = None) -> np.ndarray:
        """Every class of the active CVAE in a row; each column keeps one latent code, i.e. one style.

        Args:
            styles: how many columns (styles), 1–20.
            seed: the random seed of the styles.
        """
        model = active(self.studio, request, LabelConditioned).model
        return explore.all_classes_grid(model, limits.check("styles", styles), limits.check("seed", seed))


def build(page: Page) -> None:
    tab = ConditionalTab(page.studio)
    with gr.Tab(LABEL, id="conditional", elem_id="tab-conditional") as opened, gr.Row():
        with gr.Column(scale=1):
            # one button per class of the session's CVAE (the handler checks the model's own classes)
            digit = ClassButtons(enumerate_names([str(d) for d in range(10)]), value=0, label="Digit (class)",
                                 elem_id="conditional-digit")
            n = limits.slider("n_samples", "n", 64)
            seed = limits.seed()
            reseed_button("New samples", seed, "conditional-btn")
            styles = limits.slider("styles", "Styles (columns)", 8)
            style_seed = limits.seed("Style seed")
            reseed_button("New styles", style_seed, "all-digits-btn")
        with gr.Column(scale=2):
            out = grid_image("Samples of the chosen digit", "conditional-grid")
            all_out = grid_image("One row per digit; a column keeps its style", "all-digits-grid")
        ask_classes, class_list = gr.Button(visible=False), gr.JSON(visible=False)
    gr.on(page.live(opened, digit, n, seed), gpu(tab.conditional), [digit, n, seed], out, api_name="conditional",
          **LIVE)
    gr.on([page.models.change, opened.select], tab.refresh, digit, digit, api_visibility="private", **SAMPLING)
    ask_classes.click(tab.classes, None, class_list, api_name="classes", **SAMPLING)
    gr.on(page.live(opened, styles, style_seed), gpu(tab.all_digits), [styles, style_seed], all_out,
          api_name="all_digits", **LIVE)
