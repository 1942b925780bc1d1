"""Latent map: where the test pictures land in a VAE's code space, to hover, click and drop a digit on."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from vae_core import browser
from vae_core.models import PriorSampler

from .. import limits
from ..catalogue import ActiveModel
from ..components import digit_input
from ..handler import SAMPLING, active, companion, first_test_pictures, gpu, picture, quiet_until_given, user_facing
from ..page import Page
from ..session import Studio
from .conditional import class_names

LABEL = "Latent map"  # the tab's name, as the page shows it

SCRIPT = (Path(__file__).parents[1] / "latent_map.js").read_text()
# which model the map shows: the shipped 2-D VAE (its axes are its code) or the session's own
MAP_OF = ("2-D VAE (pretrained)", "active VAE")


class LatentMapTab:
    def __init__(self, studio: Studio):
        self.studio = studio

    def _model(self, which: str, request: gr.Request | None) -> ActiveModel:
        if limits.check_choice("model", which, MAP_OF) == MAP_OF[0]:
            return companion(self.studio, request, "vae2d")
        return active(self.studio, request, PriorSampler)

    def _view(self, which: str, request: gr.Request | None) -> tuple[ActiveModel, dict, str]:
        model = self._model(which, request)
        x, labels, total = first_test_pictures(self.studio, model)  # each travels with its picture and reconstruction
        view = browser.map_view(model.model, x, labels, class_names(model))
        text = (f"{len(x):,} of {total:,} test images from `{model.source}`; axes: {view['axes_text']}."
                + ("" if view["manifold"] else " The decoded manifold fills the background for a 2-D model."))
        return model, view, text

    @user_facing
    def latent_map(self, model: str = "active VAE", request: gr.Request = None) -> tuple[list[dict], str]:
        """Where the test pictures land: each point's two coordinates and class, and a line naming the axes.

        model: "2-D VAE (pretrained)" (axes z₁, z₂) or "active VAE" (the session's VAE; axes are its
        first two principal components when it has more than two dimensions).
        """
        _, view, text = self._view(model, request)
        names = view["classes"] or [""]
        return [{"x": x, "y": y, "label": names[k] if k < len(names) else str(k)}
                for x, y, k in zip(view["x"], view["y"], view["labels"], strict=True)], text

    @user_facing
    def page_map(self, which: str, request: gr.Request = None):
        """The map for the page's canvas (private)."""
        _, view, text = self._view(which, request)
        return gr.HTML(spec=json.dumps(view), marker=""), text

    @user_facing
    def marker(self, which: str, image, request: gr.Request = None):
        """A drawn or uploaded digit's posterior on the map: its mean and ±2σ ellipse (private)."""
        model = self._model(which, request)
        x, labels, _ = first_test_pictures(self.studio, model)
        mark = browser.posterior_marker(model.model, picture(image, model.model, "digit"), x, labels)
        return gr.HTML(marker=json.dumps(mark))


def build(page: Page) -> None:
    tab = LatentMapTab(page.studio)
    with gr.Tab(LABEL, id="latent-map", elem_id="tab-latent-map") as opened:
        with gr.Row():
            which = gr.Radio(list(MAP_OF), value=MAP_OF[0], label="Map of", elem_id="latent-map-model")
            text = gr.Markdown(elem_id="latent-map-text")
        with gr.Row():
            with gr.Column(scale=3):
                space = gr.HTML(value="", html_template="<div></div>", js_on_load=SCRIPT, spec="", marker="",
                                elem_id="latent-map", elem_classes=["latent-map"])
            with gr.Column(scale=1):
                image = digit_input("Your digit on the map", "latent-map-image")
        points, api_text = gr.JSON(visible=False), gr.Markdown(visible=False)
        api_trigger = gr.Button(visible=False)
    gr.on([opened.select, page.models.change, which.change], gpu(tab.page_map), which, [space, text],
          api_visibility="private", **SAMPLING)
    gr.on([image.change], quiet_until_given(gpu(tab.marker)), [which, image], space, api_visibility="private",
          trigger_mode="always_last", **SAMPLING)
    api_trigger.click(gpu(tab.latent_map), which, [points, api_text], api_name="latent_map", **SAMPLING)
