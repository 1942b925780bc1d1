"""Gradio's own floor for bench/ui_latency.py: the app's own page plus one tab whose slider is wired to a fixed
picture exactly as the live tabs are (`.change`, `trigger_mode="always_last"`, the same slot group), with no
model call behind it. Same page, same server: the only difference from Sample is the work of the handler.

    python bench/floor_app.py PORT
"""

from __future__ import annotations

import sys

import gradio as gr

import app
from ui.handler import LIVE
from ui.session import Studio
from ui.settings import Settings
from vae_core import explore


def main(port: int) -> None:
    studio = Studio.open(Settings.from_env())
    demo = app.build(studio)
    # two real sample grids, made once: the same bytes to send as the app's, and every answer a new file
    pictures = [explore.sample_grid(studio.catalogue.pretrained["vae"].model, 64, 1.0, seed) for seed in (0, 1)]

    def answer(value: float):
        return pictures[int(round(value * 100)) % 2]

    with demo, gr.Tab("Floor", id="floor"):
        slider = gr.Slider(0, 3, value=1.0, step=0.01, label="Temperature", elem_classes=["floor-temperature"])
        picture = gr.Image(type="numpy", format="png", elem_id="floor-grid", elem_classes=["grid"], height=500,
                           interactive=False)
        slider.change(answer, slider, picture, api_visibility="private", **LIVE)
    demo.launch(server_port=port, quiet=True, show_error=False, css=app.CSS)


if __name__ == "__main__":
    main(int(sys.argv[1]))
