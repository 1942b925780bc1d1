"""Latent traverse: one row per latent dimension, varied around a base code."""

from __future__ import annotations

import gradio as gr
import numpy as np

from vae_core import explore
from vae_core.models import PriorSampler

from .. import limits
from ..components import digit_input, grid_image
from ..handler import LIVE, active, gpu, picture, user_facing
from ..page import Page
from ..session import Studio

LABEL = "Latent traverse"  # the tab's name, as the page shows it


class TraverseTab:
    def __init__(self, studio: Studio):
        self.studio = studio

    @user_facing
    def traverse(self, span: float = 3.0, steps: int = 11, seed: int = 0, base: str = "zero", image=None,
                 request: gr.Request = None) -> np.ndarray:
        """One row per latent dimension of the active VAE, varied over [−span, span] around a base code.

        Args:
            span: how far each dimension moves each way, 0.1–10 (the prior's σ is 1).
            steps: pictures per row, 2–50.
            seed: the seed of a random base code.
            base: "zero" (the origin), "random" (a draw seeded by `seed`) or "image" (the code of `image`).
            image: a picture of a digit, used when base is "image".
        """
        span, steps, seed = limits.check("span", span), limits.check("steps", steps), limits.check("seed", seed)
        base = limits.check_choice("base", base, explore.BASES)
        model = active(self.studio, request, PriorSampler).model
        code = None
        if base == "random":
            code = explore.random_code(model, seed)
        elif base == "image":
            code = explore.encode_mean(model, picture(image, model, "base digit"))
        return explore.traverse_grid(model, span, steps, code)

    def caption(self, span: float, steps: int, base: str, request: gr.Request = None) -> gr.Image:
        """The grid's label names its rows and columns (private): numbers drawn into it would blur when enlarged."""
        if not all(isinstance(v, int | float) for v in (span, steps)) or steps < 2:
            return gr.skip()
        latent = active(self.studio, request, PriorSampler).model.config.latent
        return gr.Image(label=f"Rows z₁ … z{_subscript(latent)} from the top; columns {-span:+.3g} … {span:+.3g} "
                              f"in steps of {2 * span / (steps - 1):.2g}, around the {base} code")


def _subscript(number: int) -> str:
    return str(number).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


def build(page: Page) -> None:
    tab = TraverseTab(page.studio)
    with gr.Tab(LABEL, id="traverse", elem_id="tab-traverse") as opened, gr.Row():
        with gr.Column(scale=1):
            span = limits.slider("span", "Span", 3.0, step=0.1)
            steps = limits.slider("steps", "Steps", 11)
            seed = limits.seed("Seed (for a random base)")
            base = gr.Radio(list(explore.BASES), value="zero", label="Base code",
                            info="image: the encoding of the digit below")
            image = digit_input("Base digit", "traverse-image")
        with gr.Column(scale=2):
            gr.Markdown("One row per latent dimension, varied from −span to +span.")
            out = grid_image("Traversal", "traverse-grid")
    # a digit given is a digit used: the base switches to it (in the page), which re-runs the traversal
    image.change(None, image, base, js="(image) => image ? 'image' : 'zero'", api_visibility="private")
    gr.on(page.live(opened, span, steps, base), tab.caption, [span, steps, base], out, api_visibility="private",
          **LIVE)
    gr.on(page.live(opened, span, steps, seed, base, image), gpu(tab.traverse), [span, steps, seed, base, image], out,
          api_name="traverse", **LIVE)
