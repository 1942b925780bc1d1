"""Latent map: where the test pictures land in the session's VAE's code space."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from vae_core import explore

from ..components import grid_image
from ..handler import SAMPLING, active, gpu, user_facing
from ..page import Page
from ..session import Studio


class LatentMapTab:
    def __init__(self, studio: Studio):
        self.studio = studio

    @user_facing
    def latent_map(self, request: gr.Request = None):
        """The test set's codes in 2-D, coloured by label, and the decoded manifold for a 2-D model."""
        model = active(self.studio, request, "vae")
        data = self.studio.test_data(model)
        x, labels = data.tensors("test")
        coords, method = explore.latent_map(model.model, x, labels)
        names = data.class_names or ("",)
        frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1],
                              "label": [names[k] for k in data.test_labels]})
        manifold = explore.manifold_grid(model.model) if model.model.config.latent == 2 else None
        text = f"{len(frame):,} test images; axes: {method}."
        if manifold is None:
            text += " The decoded manifold grid appears for a model with a 2-D latent space (train one with latent 2)."
        return frame, manifold, text


def build(page: Page) -> None:
    tab = LatentMapTab(page.studio)
    with gr.Tab("Latent map", id="latent-map", elem_id="tab-latent-map"):
        button = gr.Button("Encode the test set", variant="primary", elem_id="latent-map-btn")
        text = gr.Markdown()
        with gr.Row():
            scatter = gr.ScatterPlot(x="x", y="y", color="label", title="Posterior means of test images",
                                     elem_id="latent-scatter", height=420)
            manifold = grid_image("Decoded manifold (2-D models)", "manifold-grid")
    button.click(gpu(tab.latent_map), None, [scatter, manifold, text], api_name="latent_map", **SAMPLING)
