"""VAE Studio: train, sample and explore variational autoencoders in the browser.

    python app.py [--share]

Serves on 127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override) with the
pretrained checkpoints in weights/, so every tab works before any training.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import socket
import sys
from pathlib import Path

import gradio as gr

from ui import actions
from ui.components import Number, Slider, digit_input, grid_image, seed_input
from ui.live_run import LOSS_SERIES, PART_SERIES, plot_frame
from ui.studio import Studio
from vae_core.checkpoint import CheckpointError
from vae_core.data import DATASETS, DEFAULT_LIKELIHOOD
from vae_core.folders import MAX_SIDE, MIN_SIDE
from vae_core.losses import LIKELIHOODS
from vae_core.structured import QUADRANTS

HERE = Path(__file__).resolve().parent
RUNS = Path(os.environ.get("VAE_STUDIO_RUNS", HERE / "runs"))
# every layout of 1–3 given quadrants, as the /complete API spells them
LAYOUTS = ["+".join(c) for k in (1, 2, 3) for c in itertools.combinations(QUADRANTS, k)]
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]
CSS = """
.grid img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }
.run-progress { display: flex; gap: 0.75em; align-items: center; }
.run-progress progress { flex: 1; height: 1em; }
"""

try:  # On a Hugging Face Space with ZeroGPU, GPU work must run inside spaces.GPU calls.
    import spaces

    def gpu(fn):
        return spaces.GPU(duration=60)(fn)
except ImportError:
    def gpu(fn):
        return fn


def build() -> gr.Blocks:
    # Sampling endpoints share one slot group sized to the CPU: more parallel model calls
    # than cores only make each one slower. The run-following stream, the timer and Stop
    # take no slot: they mostly wait, and must never queue behind sampling.
    sampling = {"concurrency_id": "sampling", "concurrency_limit": max(2, os.cpu_count() or 2)}
    free = {"concurrency_limit": None}
    with gr.Blocks(title="VAE Studio") as demo:
        gr.Markdown("# VAE Studio\nTrain a variational autoencoder live, then sample it, walk its latent space, "
                    "ask it for a chosen digit or let it complete a half-hidden one.")
        models_md = gr.Markdown(elem_id="active-models")
        with gr.Tabs():
            with gr.Tab("Train", id="train", elem_id="tab-train"):
                with gr.Row():
                    with gr.Column(scale=1, min_width=280):
                        model = gr.Radio(["vae", "cvae"], value="vae", label="Model",
                                         info="cvae: conditioned on the digit label")
                        arch = gr.Radio(["mlp", "conv"], value="mlp", label="Architecture")
                        dataset = gr.Dropdown([*DATASETS, ("your pictures (.zip)", actions.UPLOAD)], value="mnist",
                                              label="Dataset", elem_id="dataset")
                        with gr.Group(visible=False) as upload_box:
                            zip_file = gr.File(label="A .zip of pictures; subfolders name the classes",
                                               file_types=[".zip"], type="filepath", elem_id="zip-upload")
                            with gr.Row():
                                height = Slider(MIN_SIDE, MAX_SIDE, value=28, step=1, label="Height (px)")
                                width = Slider(MIN_SIDE, MAX_SIDE, value=28, step=1, label="Width (px)")
                        latent = Slider(1, 64, value=10, step=1, label="Latent size")
                        hidden = Slider(8, 2048, value=200, step=8, label="Hidden width")
                        likelihood = gr.Radio(list(LIKELIHOODS), value="mse", label="Likelihood",
                                              info="mse as in the seed; bernoulli = BCE-sum")
                        beta = Number(1.0, label="β (KL weight)", minimum=0, maximum=100)
                        kl_warmup = Number(0, label="KL warm-up (epochs)", minimum=0, maximum=500)
                        epochs = Slider(1, 500, value=10, step=1, label="Epochs", elem_id="epochs")
                        batch_size = Slider(1, 4096, value=128, step=1, label="Batch size", elem_id="batch-size")
                        lr = Number(1e-3, label="Learning rate", minimum=1e-6, maximum=1)
                        seed = seed_input("Seed")
                        with gr.Row():
                            start = gr.Button("Start", variant="primary", elem_id="start")
                            stop = gr.Button("Stop", variant="stop", elem_id="stop")
                        # Stop answers here, not in the run status: that belongs to the run, and
                        # its final "Stopped" may arrive before Stop's own reply does.
                        stop_note = gr.Markdown(elem_id="stop-note")
                    with gr.Column(scale=2):
                        status = gr.Markdown("No run yet: pick settings and press Start.", elem_id="run-status")
                        progress = gr.HTML(elem_id="run-progress")
                        loss_plot = gr.LinePlot(plot_frame([], LOSS_SERIES), x="epoch", y="nats", color="series",
                                                title="Loss per image (nats)", elem_id="loss-plot", height=260)
                        parts_plot = gr.LinePlot(plot_frame([], PART_SERIES), x="epoch", y="nats", color="series",
                                                 title="Reconstruction and KL terms", elem_id="parts-plot", height=260)
                        with gr.Row():
                            grid = grid_image("Samples (every epoch)", "train-grid")
                            recon = grid_image("Test digits (top) and reconstructions", "train-recon")
                        download = gr.File(label="Checkpoint folder (zip)", elem_id="download")
            with gr.Tab("Sample", id="sample", elem_id="tab-sample"):
                with gr.Row():
                    with gr.Column(scale=1):
                        n = Slider(1, 400, value=64, step=1, label="n")
                        temperature = Slider(0, 3, value=1.0, step=0.05, label="Temperature",
                                             info="scales the prior draw z ~ N(0, T²I)")
                        sample_seed = seed_input("Seed")
                        sample_btn = gr.Button("Sample", variant="primary", elem_id="sample-btn")
                    sample_out = grid_image("Prior samples", "sample-grid")
            with gr.Tab("Latent traverse", id="traverse", elem_id="tab-traverse"):
                with gr.Row():
                    with gr.Column(scale=1):
                        span = Slider(0.1, 10, value=3.0, step=0.1, label="Span")
                        steps = Slider(2, 50, value=11, step=1, label="Steps")
                        trav_seed = seed_input("Seed (for a random base)")
                        base = gr.Radio(["zero", "random", "image"], value="zero", label="Base code",
                                        info="image: the encoding of the digit below")
                        trav_image = digit_input("Base digit", "traverse-image", actions.sketch_to_image)
                        trav_btn = gr.Button("Traverse", variant="primary", elem_id="traverse-btn")
                    with gr.Column(scale=2):
                        gr.Markdown("One row per latent dimension, varied from −span to +span.")
                        trav_out = grid_image("Traversal", "traverse-grid")
            with gr.Tab("Conditional digit", id="conditional", elem_id="tab-conditional"):
                with gr.Row():
                    with gr.Column(scale=1):
                        digit = Slider(0, 9, value=0, step=1, label="Digit")
                        cond_n = Slider(1, 400, value=64, step=1, label="n")
                        cond_seed = seed_input("Seed")
                        cond_btn = gr.Button("Generate", variant="primary", elem_id="conditional-btn")
                        styles = Slider(1, 20, value=8, step=1, label="Styles (columns)")
                        style_seed = seed_input("Style seed")
                        all_btn = gr.Button("All digits, same styles", elem_id="all-digits-btn")
                    with gr.Column(scale=2):
                        cond_out = grid_image("Samples of the chosen digit", "conditional-grid")
                        all_out = grid_image("One row per digit; a column keeps its style", "all-digits-grid")
            with gr.Tab("Reconstruct", id="reconstruct", elem_id="tab-reconstruct"):
                with gr.Row():
                    with gr.Column():
                        rec_image = digit_input("Digit", "reconstruct-image", actions.sketch_to_image)
                        rec_btn = gr.Button("Reconstruct", variant="primary", elem_id="reconstruct-btn")
                    rec_out = grid_image("As the model sees it · its reconstruction", "reconstruct-grid")
            with gr.Tab("Interpolate", id="interpolate", elem_id="tab-interpolate"):
                with gr.Row():
                    with gr.Column():
                        image_a = digit_input("Digit A", "image-a", actions.sketch_to_image)
                    with gr.Column():
                        image_b = digit_input("Digit B", "image-b", actions.sketch_to_image)
                with gr.Row():
                    interp_steps = Slider(2, 50, value=10, step=1, label="Steps")
                    pick_btn = gr.Button("Two random test digits", elem_id="pick-digits")
                    interp_btn = gr.Button("Interpolate", variant="primary", elem_id="interpolate-btn")
                interp_out = grid_image("Decoded path from A to B", "interpolate-grid")
            with gr.Tab("Complete a digit", id="complete", elem_id="tab-complete"):
                with gr.Row():
                    with gr.Column(scale=1):
                        comp_image = digit_input("Digit", "complete-image", actions.sketch_to_image)
                        comp_pick = gr.Button("A random test digit", elem_id="complete-pick")
                        comp_given = gr.Dropdown(LAYOUTS, value="top-left", label="Given quadrants",
                                                 allow_custom_value=True, elem_id="complete-given",
                                                 info="the rest is hidden and completed")
                        comp_n = Slider(1, 64, value=16, step=1, label="Completions")
                        comp_seed = seed_input("Seed")
                        comp_btn = gr.Button("Complete", variant="primary", elem_id="complete-btn")
                    with gr.Column(scale=2):
                        gr.Markdown("The structured-output CVAE of Sohn et al. (2015) sees only the given quadrants "
                                    "(outlined). **First tile:** what it is given. **Second:** the deterministic "
                                    "baseline's single answer, a blurry average. **Then:** completions, each from "
                                    "its own z drawn from the prior network p(z|x).")
                        comp_out = grid_image("Given · baseline · completions", "complete-grid")
            with gr.Tab("How it works", id="how", elem_id="tab-how"):
                with gr.Row():
                    with gr.Column(scale=3):
                        gr.Markdown((HERE / "ui" / "how_it_works.md").read_text(), latex_delimiters=LATEX)
                    with gr.Column(scale=2):
                        how_image = digit_input("Digit", "how-image", actions.sketch_to_image)
                        how_pick = gr.Button("A random test digit", elem_id="how-pick")
                        with gr.Row():
                            how_model = gr.Radio(["vae", "cvae"], value="vae", label="Model")
                            how_label = Number(0, label="Label (CVAE)", precision=0, minimum=0)
                        how_beta = Slider(0, 10, value=1.0, step=0.1, label="β (KL weight)")
                        how_reduction = gr.Radio(["sum", "mean"], value="sum", label="Reduction over pixels",
                                                 elem_id="how-reduction")
                        how_seed = seed_input("Seed for ε")
                        how_btn = gr.Button("Explain", variant="primary", elem_id="how-btn")
                how_text = gr.Markdown(elem_id="how-text")
                with gr.Row():
                    how_picture = grid_image("Input · reconstruction from z", "how-picture", height=200)
                    how_bars = gr.BarPlot(x="dim", y="KL (nats)", title="KL per latent dimension", sort=None,
                                          elem_id="how-bars", height=260)
                with gr.Row():
                    how_table = gr.Dataframe(label="Per latent dimension", elem_id="how-table")
                    how_terms = gr.JSON(label="Loss terms (nats per image)", elem_id="how-terms")
            with gr.Tab("Latent map", id="latent-map", elem_id="tab-latent-map"):
                map_btn = gr.Button("Encode the test set", variant="primary", elem_id="latent-map-btn")
                map_text = gr.Markdown()
                with gr.Row():
                    scatter = gr.ScatterPlot(x="x", y="y", color="label", title="Posterior means of test images",
                                             elem_id="latent-scatter", height=420)
                    manifold = grid_image("Decoded manifold (2-D models)", "manifold-grid")

        train_outputs = [status, progress, loss_plot, parts_plot, grid, recon, download]
        train_inputs = [model, dataset, epochs, latent, batch_size, lr, arch, hidden, likelihood, beta, kl_warmup,
                        seed, zip_file, height, width]
        dataset.change(dataset_defaults, dataset, [upload_box, likelihood], api_visibility="private",
                       concurrency_limit=None)
        # `seen` (per session) is what this page or API client already has of the run, so
        # that an update (two PNGs among it) is never sent twice.
        seen = gr.State(actions.NOT_SEEN)
        start.click(actions.start, train_inputs, stop_note, api_visibility="private", **free)
        # /train streams the run to API clients; in the page only the timer draws it (see actions.start).
        gr.Button(visible=False).click(actions.train, train_inputs, [*train_outputs, seen], api_name="train",
                                       **free)
        stop.click(actions.stop, None, stop_note, api_name="stop", **free)
        gr.Timer(actions.UPDATE_EVERY_S).tick(actions.poll, seen, [*train_outputs, seen, models_md],
                                             api_visibility="private", **free)
        demo.load(actions.active_models, None, models_md, api_visibility="private", **free)

        sample_btn.click(gpu(actions.sample), [n, temperature, sample_seed], sample_out, api_name="sample",
                         **sampling)
        cond_btn.click(gpu(actions.conditional), [digit, cond_n, cond_seed], cond_out, api_name="conditional",
                       **sampling)
        all_btn.click(gpu(actions.all_digits), [styles, style_seed], all_out, api_name="all_digits", **sampling)
        trav_btn.click(gpu(actions.traverse), [span, steps, trav_seed, base, trav_image], trav_out,
                       api_name="traverse", **sampling)
        rec_btn.click(gpu(actions.reconstruct), rec_image, rec_out, api_name="reconstruct", **sampling)
        interp_btn.click(gpu(actions.interpolate), [image_a, image_b, interp_steps], interp_out,
                         api_name="interpolate", **sampling)
        pick_btn.click(actions.random_test_digits, None, [image_a, image_b], api_visibility="private", **sampling)
        comp_btn.click(gpu(actions.complete), [comp_image, comp_given, comp_n, comp_seed], comp_out,
                       api_name="complete", **sampling)
        comp_pick.click(actions.random_test_image, None, comp_image, api_visibility="private", **sampling)
        how_inputs = [how_image, how_model, how_label, how_beta, how_reduction, how_seed]
        how_outputs = [how_picture, how_table, how_bars, how_terms, how_text]
        how_btn.click(gpu(actions.explain), how_inputs, how_outputs, api_name="explain", **sampling)
        for control in (how_beta, how_reduction, how_model):  # the balance moves as the controls do
            control.change(gpu(actions.explain_live), how_inputs, how_outputs, api_visibility="private",
                           trigger_mode="always_last", **sampling)
        how_pick.click(actions.random_test_digit, None, [how_image, how_label], api_visibility="private",
                       **sampling).then(gpu(actions.explain_live), how_inputs, how_outputs, api_visibility="private",
                                        **sampling)
        map_btn.click(gpu(actions.latent_map), None, [scatter, manifold, map_text], api_name="latent_map",
                      **sampling)
    # max_size: past 64 waiting requests a caller is told at once ("Queue is full! Please
    # try again.") instead of waiting behind a queue it cannot see the end of. With 2
    # sampling slots at ~0.25 s a call, 64 waiting is a 10 s wait at worst.
    demo.queue(max_size=int(os.environ.get("VAE_STUDIO_QUEUE_SIZE", "64")))
    return demo


def dataset_defaults(name: str):
    """Show the upload box for your own pictures; Frey Face trains with its paper's Gaussian likelihood."""
    return gr.Group(visible=name == actions.UPLOAD), DEFAULT_LIKELIHOOD.get(name, "mse")


def share_reachable(timeout: float = 3.0) -> bool:
    """Share links tunnel through Gradio's servers; offline, say so in one line instead of a page of advice."""
    try:
        socket.create_connection(("api.gradio.app", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--share", action="store_true", help="also ask Gradio for a public share link")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # The trainer thread takes the GIL back dozens of times per step, between PyTorch ops;
    # behind busy request threads each take can wait a whole switch interval (5 ms by
    # default). A shorter interval lets it back sooner. Evidence so far is mixed: in one
    # A/B under 20 sampling users (bench/load.py) training kept 12.8k images/s against
    # 1.3k, but later loaded runs still ranged from 1.4k to 14.1k on these 2 cores.
    sys.setswitchinterval(0.0005)
    try:
        actions.STUDIO = Studio(HERE / "weights", RUNS)
    except CheckpointError as exc:
        raise SystemExit(f"error: cannot open the pretrained weights: {exc}. See weights/README.md.") from None
    demo = build()
    share = args.share and share_reachable()
    if args.share and not share:
        print("Share link unavailable: Gradio's share server cannot be reached (no network); serving locally only.",
              flush=True)
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        share=share, show_error=True, css=CSS, max_file_size="200mb", prevent_thread_lock=True, quiet=True,
    )
    print(f"VAE Studio is running on {demo.local_url}", flush=True)
    if share:
        print(f"Public share link: {demo.share_url}" if demo.share_url else
              "Share link unavailable: Gradio could not open the tunnel; serving locally only.", flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()
