"""Reconstruct: a picture beside what the session's VAE makes of it."""

from __future__ import annotations

import gradio as gr
import numpy as np

from vae_core import explore
from vae_core.models import PriorSampler

from ..components import digit_input, grid_image
from ..handler import active, picture, random_test_pictures, user_facing
from ..page import Page
from ..session import Studio

LABEL = "Reconstruct"  # the tab's name, as the page shows it


class ReconstructTab:
    def __init__(self, studio: Studio):
        self.studio = studio

    @user_facing
    def pick(self, request: gr.Request = None) -> np.ndarray:
        """One test picture (private): on arrival, and for people with no digit at hand."""
        return random_test_pictures(self.studio, request, 1)[0][0]

    @user_facing
    def reconstruct(self, image, request: gr.Request = None) -> np.ndarray:
        """A picture of a digit as the active VAE sees it, beside its reconstruction through the posterior mean.

        Args:
            image: a picture of one digit (PNG or JPEG; dark on light or light on dark).
        """
        model = active(self.studio, request, PriorSampler).model
        return explore.reconstruction_pair(model, picture(image, model))


def build(page: Page) -> None:
    tab = ReconstructTab(page.studio)
    with gr.Tab(LABEL, id="reconstruct", elem_id="tab-reconstruct") as where, gr.Row():
        with gr.Column():
            image = digit_input("Digit", "reconstruct-image")
            pick = gr.Button("A random test digit", elem_id="reconstruct-pick")
        out = grid_image("As the model sees it · its reconstruction", "reconstruct-grid")
    page.picture_action(where, tab.reconstruct, [image], out, "reconstruct", [image])
    page.test_pictures(where, pick, tab.pick, [image])
