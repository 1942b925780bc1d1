"""VAE Studio: train, sample and explore variational autoencoders in the browser.

    python app.py [--share]

Serves on 127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override) with the
pretrained checkpoints in weights/, so every tab works before any training.
"""

from __future__ import annotations

import argparse
import logging

import gradio as gr

from ui.gate import GatedBlocks
from ui.handler import FREE, session_of
from ui.page import Page
from ui.session import Studio
from ui.settings import Settings
from ui.tabs import TABS
from vae_core.checkpoint import CheckpointError
from vae_core.network import reachable

CSS = """
.grid img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }
.playground .pg-row { display: flex; gap: 1.5em; flex-wrap: wrap; align-items: flex-start; }
.playground .pg-col { display: flex; flex-direction: column; gap: 0.6em; }
.playground .pg-wide { flex: 1; min-width: 320px; }
.playground .pg-picture { width: 224px; height: 224px; image-rendering: pixelated; background: #000; }
.playground .pg-pad { width: 240px; height: 240px; touch-action: none; cursor: crosshair; border-radius: 6px; }
.playground .pg-dim { display: grid; grid-template-columns: 11em 1fr 3em; align-items: center; gap: 0.5em; }
.playground .pg-inactive { opacity: 0.45; }
.playground .pg-classes { display: flex; flex-wrap: wrap; gap: 0.3em; max-width: 224px; }
.playground button { border: 1px solid #d4d4d8; border-radius: 6px; padding: 0.2em 0.6em; }
.playground .pg-chosen { background: #f97316; color: white; }
.latent-map .lm-row { display: flex; gap: 1.5em; flex-wrap: wrap; align-items: flex-start; }
.latent-map .lm-plot { width: 552px; height: 552px; cursor: crosshair; }
.latent-map .lm-legend { display: flex; flex-wrap: wrap; gap: 0.2em 0.8em; max-width: 260px; }
.latent-map .lm-legend i { display: inline-block; width: 0.8em; height: 0.8em; border-radius: 50%; margin: 0 0.3em; }
.latent-map .lm-pair { display: flex; gap: 0.8em; }
.latent-map .lm-digit { width: 112px; height: 112px; image-rendering: pixelated; background: #000; }
.latent-map figure { margin: 0; text-align: center; font-size: 0.85em; }
.digit img { image-rendering: pixelated; min-width: 112px; min-height: 112px; object-fit: contain; }
.run-progress { display: flex; gap: 0.75em; align-items: center; }
.run-progress progress { flex: 1; height: 1em; }
.quadrants .wrap { display: grid !important; grid-template-columns: 1fr 1fr; gap: 0.4em; max-width: 22em; }
"""
SHARE_HOST = "api.gradio.app"  # share links tunnel through Gradio's servers


def build(studio: Studio) -> gr.Blocks:
    lifetime = studio.settings.upload_lifetime_s
    with GatedBlocks(title="VAE Studio", delete_cache=(lifetime, lifetime)) as demo:
        gr.Markdown("# VAE Studio\nTrain a variational autoencoder live, then sample it, walk its latent space, "
                    "ask it for a chosen digit or let it complete a half-hidden one.")
        page = Page(studio, gr.Markdown(elem_id="active-models"), demo)
        with gr.Tabs():
            for tab in TABS:
                tab.build(page)

        def describe(request: gr.Request) -> str:
            return studio.describe(session_of(request))

        demo.load(describe, None, page.models, api_visibility="private", **FREE)
    demo.queue(max_size=studio.settings.queue_size)
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--share", action="store_true", help="also ask Gradio for a public share link")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    try:
        studio = Studio.open(settings)
    except CheckpointError as exc:
        raise SystemExit(f"error: cannot open the pretrained weights: {exc}. See weights/README.md.") from None
    demo = build(studio)
    share = args.share and reachable(SHARE_HOST, timeout=3.0)
    if args.share and not share:
        print("Share link unavailable: Gradio's share server cannot be reached (no network); serving locally only.",
              flush=True)
    # show_error=False: our own messages are gr.Error and always reach the client; any other
    # exception's text (paths, object reprs) stays in the server's log
    demo.launch(server_name=settings.server_name, server_port=settings.server_port, share=share, show_error=False,
                css=CSS, max_file_size="200mb", prevent_thread_lock=True, quiet=True)
    print(f"VAE Studio is running on {demo.local_url}", flush=True)
    if share:
        print(f"Public share link: {demo.share_url}" if demo.share_url else
              "Share link unavailable: Gradio could not open the tunnel; serving locally only.", flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()
