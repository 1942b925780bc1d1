"""VAE Studio: train, sample and explore variational autoencoders in the browser.

    python app.py [--share]

Serves on 127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override) with the
pretrained checkpoints in weights/, so every tab works before any training.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import gradio as gr

from ui import picker
from ui.gate import GatedBlocks
from ui.handler import LOCAL, withhold_from_agents
from ui.page import Page
from ui.session import Studio
from ui.settings import Settings
from ui.tabs import TABS
from vae_core.checkpoint import CheckpointError
from vae_core.network import reachable

CSS = (Path(__file__).parent / "ui" / "studio.css").read_text()
SHARE_HOST = "api.gradio.app"  # share links tunnel through Gradio's servers


def build(studio: Studio) -> gr.Blocks:
    lifetime = studio.settings.upload_lifetime_s
    with GatedBlocks(title="VAE Studio", delete_cache=(lifetime, lifetime)) as demo:
        gr.Markdown("# VAE Studio\nTrain a variational autoencoder live, then sample it, walk its latent space, "
                    "ask it for a chosen digit or let it complete a half-hidden one.")
        # a page's session starts on the pretrained models: the header needs no call to show them
        page = Page(studio, gr.Markdown(studio.describe(LOCAL), elem_id="active-models"), demo)
        picker.build(page)
        with gr.Tabs():
            for tab in TABS:
                tab.build(page)
    demo.queue(max_size=studio.settings.queue_size)
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--share", action="store_true", help="also ask Gradio for a public share link")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
    except ValueError as exc:  # the operator's nonsense VAE_STUDIO_* number: one line, not a traceback
        raise SystemExit(f"error: {exc}") from None
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
    # mcp_server: the picture endpoints are also tools for agents (training is not; see ui/tabs/train.py)
    demo.launch(server_name=settings.server_name, server_port=settings.server_port, share=share, show_error=False,
                css=CSS, max_file_size="200mb", prevent_thread_lock=True, quiet=True, mcp_server=True)
    withhold_from_agents(demo)
    print(f"VAE Studio is running on {demo.local_url}", flush=True)
    if share:
        print(f"Public share link: {demo.share_url}" if demo.share_url else
              "Share link unavailable: Gradio could not open the tunnel; serving locally only.", flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()
