"""Interpolate: the decoded straight path between the codes of two pictures."""

from __future__ import annotations

import gradio as gr
import numpy as np

from vae_core import explore
from vae_core.models import PriorSampler

from .. import limits
from ..components import digit_input, grid_image
from ..handler import active, picture, random_test_pictures, user_facing
from ..page import Page
from ..session import Studio

LABEL = "Interpolate"  # the tab's name, as the page shows it


class InterpolateTab:
    def __init__(self, studio: Studio):
        self.studio = studio

    @user_facing
    def interpolate(self, image_a, image_b, steps: int = 10, request: gr.Request = None) -> np.ndarray:
        """The decoded straight path between the codes (posterior means) of two pictures, endpoints included.

        Args:
            image_a: the first picture of a digit.
            image_b: the second picture of a digit.
            steps: pictures along the path, 2–50.
        """
        steps = limits.check("steps", steps)
        model = active(self.studio, request, PriorSampler).model
        return explore.interpolation_grid(model, picture(image_a, model, "image A"),
                                          picture(image_b, model, "image B"), steps)

    @user_facing
    def pick(self, request: gr.Request = None) -> tuple[np.ndarray, np.ndarray]:
        """Two test pictures, a new pair each click, for people with no digit at hand (private)."""
        images, _ = random_test_pictures(self.studio, request, 2)
        return images[0], images[1]


def build(page: Page) -> None:
    tab = InterpolateTab(page.studio)
    with gr.Tab(LABEL, id="interpolate", elem_id="tab-interpolate") as where:
        with gr.Row():
            with gr.Column():
                image_a = digit_input("Digit A", "image-a")
            with gr.Column():
                image_b = digit_input("Digit B", "image-b")
        with gr.Row():
            steps = limits.slider("steps", "Steps", 10)
            pick = gr.Button("Two random test digits", elem_id="pick-digits")
        out = grid_image("Decoded path from A to B", "interpolate-grid")
    inputs = [image_a, image_b, steps]
    page.picture_action(where, tab.interpolate, inputs, out, "interpolate", inputs)
    page.test_pictures(where, pick, tab.pick, [image_a, image_b])
