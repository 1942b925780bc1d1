"""Sample: decoded prior draws from any of the session's models that has a prior (a VAE, a CVAE)."""

from __future__ import annotations

import gradio as gr
import numpy as np

from vae_core import explore
from vae_core.models import PriorSampler

from .. import limits
from ..components import grid_image, reseed_button
from ..handler import LIVE, active, gpu, user_facing
from ..page import Page
from ..session import Studio

LABEL = "Sample"  # the tab's name, as the page shows it


class SampleTab:
    def __init__(self, studio: Studio):
        self.studio = studio

    @user_facing
    def sample(self, n: int = 64, temperature: float = 1.0, seed: int = 0, model: str = "vae",
               request: gr.Request = None) -> np.ndarray:
        """Decoded prior samples z ~ N(0, T²I) from one of the session's models, as one PNG grid.

        Args:
            n: how many samples, 1–400 (laid out in a square).
            temperature: the prior's scale T, 0–3; 1 samples the model's own prior, lower is tamer.
            seed: the random seed; the same seed gives the same samples.
            model: which of the session's active models: "vae", or "cvae" (each sample of a random class).
        """
        net = active(self.studio, request, PriorSampler, model).model
        return explore.sample_grid(net, limits.check("n_samples", n, "n"), limits.check("temperature", temperature),
                                   limits.check("seed", seed))


def build(page: Page) -> None:
    tab = SampleTab(page.studio)
    with gr.Tab(LABEL, id="sample", elem_id="tab-sample") as opened, gr.Row():
        with gr.Column(scale=1):
            model = page.kind_choice(PriorSampler, elem_id="sample-model",
                                     info="a CVAE draws each sample's class at random")
            n = limits.slider("n_samples", "n", 64)
            temperature = limits.slider("temperature", "Temperature", 1.0, step=0.05,
                                        info="scales the prior draw z ~ N(0, T²I)")
            seed = limits.seed()
            reseed_button("New samples", seed, "sample-btn")
        out = grid_image("Prior samples", "sample-grid")
    gr.on(page.live(opened, n, temperature, seed, model), gpu(tab.sample), [n, temperature, seed, model], out,
          api_name="sample", **LIVE)
