"""Gradio's own floor for bench/ui_latency.py: a slider wired to a fixed picture exactly as the app wires its
live tabs (`.change`, `trigger_mode="always_last"`, a queue), with no model call behind it.

    python bench/floor_app.py PORT
"""

from __future__ import annotations

import sys

import gradio as gr
import numpy as np

from testing import ROOT
from vae_core import explore
from vae_core.checkpoint import load_checkpoint

# two real sample grids, made once: the same bytes to encode and send as the app's, so every answer is a new
# file of the same size, and nothing is computed per call
MODEL = load_checkpoint(ROOT / "weights" / "vae-sharp").model
PICTURES = [explore.sample_grid(MODEL, 64, 1.0, seed) for seed in (0, 1)]


def answer(value: float) -> np.ndarray:
    return PICTURES[int(value * 100) % 2]


with gr.Blocks() as demo:
    slider = gr.Slider(0, 3, value=1.0, step=0.01, label="Temperature", elem_classes=["limit-temperature"])
    picture = gr.Image(type="numpy", format="png", elem_id="sample-grid")
    slider.change(answer, slider, picture, trigger_mode="always_last", concurrency_limit=2)

if __name__ == "__main__":
    demo.queue().launch(server_port=int(sys.argv[1]), quiet=True)
