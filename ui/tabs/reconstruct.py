"""Reconstruct: a picture beside what the session's VAE makes of it."""

from __future__ import annotations

import gradio as gr
import numpy as np

from vae_core import explore

from ..components import digit_input, grid_image
from ..handler import SAMPLING, active, gpu, picture, user_facing
from ..page import Page
from ..session import Studio


class ReconstructTab:
    def __init__(self, studio: Studio):
        self.studio = studio

    @user_facing
    def reconstruct(self, image, request: gr.Request = None) -> np.ndarray:
        """The picture (as the model sees it) beside its reconstruction through the posterior mean."""
        model = active(self.studio, request, "vae").model
        return explore.reconstruction_pair(model, picture(image, model))


def build(page: Page) -> None:
    tab = ReconstructTab(page.studio)
    with gr.Tab("Reconstruct", id="reconstruct", elem_id="tab-reconstruct"), gr.Row():
        with gr.Column():
            image = digit_input("Digit", "reconstruct-image")
            button = gr.Button("Reconstruct", variant="primary", elem_id="reconstruct-btn")
        out = grid_image("As the model sees it · its reconstruction", "reconstruct-grid")
    button.click(gpu(tab.reconstruct), image, out, api_name="reconstruct", **SAMPLING)
