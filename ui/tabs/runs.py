"""Runs: this session's runs side by side — their curves overlaid, their settings compared, their samples.

A learner sees what β = 4 did against β = 1 without writing anything down, makes either
one the active model, or downloads its checkpoint or its training film.
"""

from __future__ import annotations

import gradio as gr

from vae_core.models import spec

from .. import limits
from ..components import ModelChoice
from ..handler import FREE, session_of, user_facing
from ..page import Page
from ..run_history import (
    CURVES,
    FILM,
    GRID,
    curves,
    curves_svg,
    legends,
    read_runs,
    run_choices,
    settings_table,
    zipped,
)
from ..session import Studio

LABEL = "Runs"  # the tab's name, as the page shows it

EMPTY_NOTE = "No runs yet in this session: train one in the Train tab, or bring a checkpoint back there."


class RunsTab:
    def __init__(self, studio: Studio):
        self.studio = studio

    def view(self, curve: str = "test loss", run: str | None = None, request: gr.Request = None):
        """This session's runs, newest first: the chosen curve of each overlaid, their settings and final samples.

        Args:
            curve: test loss, recon (test), KL (test) or train loss (epoch mean), per epoch.
            run: the run picked (`runs/…`), kept picked if it is still there; else the newest.
        """
        limits.check_choice("curve", curve, tuple(CURVES))
        records = read_runs(self.studio.runs.of(session_of(request)))
        settings = self.studio.settings
        note = (f"{len(records)} run(s), newest first. This server keeps each session's newest "
                f"{settings.runs_per_session} runs (and {settings.runs_kept} in all): the oldest go first, so "
                "download a run to keep it." if records else EMPTY_NOTE)
        gallery = [(str(r.beside(GRID)), name) for r, name in zip(records, legends(records), strict=True)
                   if r.beside(GRID).is_file()]
        choices = run_choices(records)
        names = [name for _, name in choices]
        picked = run if run in names else (names[0] if names else None)
        return (note, curves_svg(curves(records, curve), f"{curve} (nats per image)"), settings_table(records), gallery,
                gr.Dropdown(choices=choices, value=picked))

    @user_facing
    def make_active(self, run: str, request: gr.Request = None) -> str:
        """Make one of this session's runs (`runs/…`) the active model of its kind in every tab."""
        session = session_of(request)
        chosen = self.studio.choose_run(session, run)
        gr.Info(f"{run} is now the active {spec(chosen.model.config.kind).title} in every tab.")
        return self.studio.describe(session)

    @user_facing
    def checkpoint(self, run: str, request: gr.Request = None) -> str:
        """One of this session's runs as its zipped checkpoint folder (model card included), for /load_checkpoint."""
        return str(zipped(self.studio.runs.own(session_of(request), run)))

    @user_facing
    def film(self, run: str, request: gr.Request = None) -> str:
        """One of this session's runs as an animated GIF: its sample grid at every epoch, with epoch and test loss."""
        folder = self.studio.runs.own(session_of(request), run)
        live = self.studio.runs.current
        if live is not None and live.running and live.run_dir == folder:
            raise ValueError("This run is still training: its film is made when it ends.")
        if not folder.with_suffix(FILM).is_file():
            raise ValueError("This run has no film: it was brought back from a checkpoint (or stopped before its "
                             "first epoch), so this server never saw its epochs.")
        return str(folder.with_suffix(FILM))


def build(page: Page) -> None:
    tab = RunsTab(page.studio)
    with gr.Tab(LABEL, id="runs", elem_id="tab-runs") as opened:
        note = gr.Markdown(EMPTY_NOTE, elem_id="runs-note")
        curve = gr.Radio(list(CURVES), value="test loss", label="Curve", elem_id="runs-curve")
        plot = gr.HTML(elem_id="runs-plot", label="Per epoch, one line per run")
        table = gr.HTML(elem_id="runs-table")
        gr.Markdown("**Final samples** of each run", elem_id="runs-gallery-title")
        # the label as a heading above: Gradio draws a gallery's own label over its first row
        gallery = gr.Gallery(label="Final samples", show_label=False, columns=5, height=300, object_fit="contain",
                             elem_id="runs-gallery", interactive=False)
        with gr.Row(equal_height=True):
            run = ModelChoice([], label="Run", elem_id="runs-pick", scale=2)
            use = gr.Button("Make it active", elem_id="runs-use", scale=1)
            get_checkpoint = gr.Button("Download checkpoint", elem_id="runs-checkpoint", scale=1)
            get_film = gr.Button("Download film (GIF)", elem_id="runs-film", scale=1)
        download = gr.File(label="Download", interactive=False, elem_id="runs-download", height=100)
    gr.on(page.live(opened, curve), tab.view, [curve, run], [note, plot, table, gallery, run], api_name="runs",
          **FREE)
    use.click(tab.make_active, run, page.models, api_name="make_active", **FREE)
    get_checkpoint.click(tab.checkpoint, run, download, api_name="run_checkpoint", **FREE)
    get_film.click(tab.film, run, download, api_name="run_film", **FREE)
