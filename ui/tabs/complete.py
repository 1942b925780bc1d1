"""Complete a digit: the structured-output CVAE of Sohn et al. fills in hidden quadrants."""

from __future__ import annotations

import gradio as gr
import numpy as np

from vae_core import explore
from vae_core.models import Completer
from vae_core.models.structured import QUADRANTS, parse_given

from .. import limits
from ..components import QuadrantToggle, digit_input, grid_image, reseed_button
from ..handler import active, companion, picture, random_test_pictures, user_facing
from ..page import Page
from ..session import Studio

LABEL = "Complete a digit"  # the tab's name, as the page shows it


class CompleteTab:
    def __init__(self, studio: Studio):
        self.studio = studio

    @user_facing
    def complete(self, image, given: str = "top-left", n: int = 16, seed: int = 0,
                 request: gr.Request = None) -> np.ndarray:
        """Quadrant completion: the given part, the baseline's answer, then n completions from the prior network.

        Args:
            image: a picture of one digit; only its given quadrants are shown to the model.
            given: 1–3 quadrants joined by "+", e.g. "top-left" or "top-left+bottom-left".
            n: how many completions, 1–64.
            seed: the random seed of the completions.
        """
        names = parse_given(given)
        n, seed = limits.check("completions", n, "n"), limits.check("seed", seed)
        model = active(self.studio, request, Completer).model
        baseline = companion(self.studio, request, "baseline").model
        return explore.completion_grid(model, baseline, picture(image, model), names, n, seed)

    @user_facing
    def pick(self, request: gr.Request = None) -> np.ndarray:
        """One test picture (private)."""
        return random_test_pictures(self.studio, request, 1, Completer)[0][0]


def build(page: Page) -> None:
    tab = CompleteTab(page.studio)
    with gr.Tab(LABEL, id="complete", elem_id="tab-complete") as where, gr.Row():
        with gr.Column(scale=1):
            image = digit_input("Digit", "complete-image")
            pick = gr.Button("A random test digit", elem_id="complete-pick")
            given = QuadrantToggle(list(QUADRANTS), value=[QUADRANTS[0]], label="Given quadrants",
                                   elem_id="complete-given", elem_classes=["quadrants"],
                                   info="as they lie in the picture; the rest is hidden and completed")
            n = limits.slider("completions", "Completions", 16)
            seed = limits.seed()
            reseed_button("New completions", seed, "complete-btn")
        with gr.Column(scale=2):
            gr.Markdown("The structured-output CVAE of Sohn et al. (2015) sees only the given quadrants "
                        "(outlined). **First tile:** what it is given. **Second:** the deterministic "
                        "baseline's single answer, a blurry average. **Then:** completions, each from "
                        "its own z drawn from the prior network p(z|x).")
            out = grid_image("Given · baseline · completions", "complete-grid")
    page.picture_action(where, tab.complete, [image, given, n, seed], out, "complete", [image, given, n, seed])
    page.test_pictures(where, pick, tab.pick, [image])
