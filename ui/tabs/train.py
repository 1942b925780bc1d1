"""Train: pick settings, start a run, watch its curves and pictures live, stop it, download it.

The server trains one run at a time. Every page sees that run (its page timer draws it);
its model becomes active for the session that started it, and other sessions can adopt it.
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from pathlib import Path

import gradio as gr

from vae_core.config import ModelConfig, TrainConfig, check_choice, options_of
from vae_core.datasets import DATASETS, DEFAULT_LIKELIHOOD, ZipUpload
from vae_core.models import KindSpec, kinds, make_config, spec

from .. import limits
from ..components import ModelChoice, grid_image
from ..handler import FREE, Refusal, not_an_agent_tool, session_of, uploaded, user_facing
from ..live_run import LOSS_SERIES, PART_SERIES, LiveRun, Snapshot, plot_frame
from ..page import Page
from ..run_history import read_runs, run_choices
from ..session import Studio

LABEL = "Train"  # the tab's name, as the page shows it

UPLOAD = "upload"
UPDATE_EVERY_S = 1.0
NOT_SEEN = (-1, -1)
BUSY = "A run is in progress: showing its live progress instead. Press Stop to end it, or wait for it."
BUSY_API = ("A run is in progress, so this request started nothing (this server trains one run at a time). "
            "Try again when it ends, or call /stop to end it.")
NOT_YOURS = "Someone else's run (this server trains one at a time)."


class TrainTab:
    def __init__(self, studio: Studio):
        self.studio = studio

    def train(self, kind: str = "vae", dataset: str = "mnist", epochs: int = 10, latent: int = 10,
              batch_size: int = 128, lr: float = 1e-3, arch: str = "mlp", hidden: int = 200,
              likelihood: str = "mse", beta: float = 1.0, kl_warmup: float = 0.0, seed: int = 0, zip_file=None,
              height: int = 28, width: int = 28, request: gr.Request = None):
        """Start a run and stream its progress, about once a second, until it ends; refused while another runs.

        dataset="upload" trains on `zip_file`, a .zip of pictures (subfolders = classes), at height×width.
        """
        settings = {name: value for name, value in locals().items() if name in SETTINGS}
        yield from self._stream(*self._begin(settings, request))

    def continue_run(self, run: str, epochs: int = 1, request: gr.Request = None):
        """Train one of this session's runs (`runs/…`, as /load_checkpoint or a finished run names it) `epochs` more.

        It resumes with the run's own settings and optimizer state, its epoch count continuing,
        and streams like /train; refused while another run trains.
        """
        yield from self._stream(*self._continue(run, epochs, request))

    def continue_start(self, run: str, epochs: int, request: gr.Request = None) -> tuple[str, gr.Timer]:
        """The Continue button: like Start, the page's timer draws the run (private)."""
        _, started = self._continue(run, epochs, request)
        return ("" if started else BUSY), gr.Timer(active=True)

    @user_facing
    def _continue(self, run: str, epochs: int, request: gr.Request | None) -> tuple[LiveRun, bool]:
        if not run:
            raise Refusal("Pick a run to continue first: train one, or bring back a checkpoint")
        return self.studio.runs.continue_run(session_of(request), run, limits.check("epochs", epochs, "more epochs"))

    @user_facing
    def bring_back(self, zip_file, request: gr.Request = None) -> tuple[str, str]:
        """Bring a zipped checkpoint folder (one this app or the CLI wrote) into this session: checked, then active.

        Returns this session's active models and the name the checkpoint now has among the
        session's runs (`runs/…`), for /continue_run and the Runs tab.
        """
        if not zip_file:
            raise Refusal("Upload a checkpoint's .zip first")
        path = uploaded(zip_file)
        session = session_of(request)
        filename = Path(path).name
        active = self.studio.runs.bring_back(session, path, filename=filename)
        gr.Info(f"{filename} is back: it is now the active {spec(active.model.config.kind).title} in every tab, "
                "and below, the run to continue. The Runs tab compares it with your other runs.")
        # the run list follows from the models' change (refresh_runs), which also puts this run first
        return self.studio.describe(session), active.source

    def refresh_runs(self, request: gr.Request = None) -> gr.Dropdown:
        """The runs this session can continue, newest first (private)."""
        choices = self.run_choices(session_of(request))
        return gr.Dropdown(choices=choices, value=choices[0][1] if choices else None)

    def run_choices(self, session: str) -> list[tuple[str, str]]:
        return run_choices(read_runs(self.studio.runs.of(session)))

    def _stream(self, run: LiveRun, started: bool):
        """A started run's updates, about once a second, until it ends."""
        if not started:  # every answer to this call is about this call: it started nothing
            raise Refusal(BUSY_API)
        seen = NOT_SEEN
        while True:
            snap = run.snapshot()
            if snap.version != seen[0]:  # new pictures always come with a new version
                update = outputs(snap, seen, mine=True)
                seen = update[-1]
                yield update
            if snap.finished is not None:
                return
            run.wait(UPDATE_EVERY_S)

    def start(self, request: gr.Request, *values) -> tuple[str, gr.Timer]:
        """The Start button: start the run, switch the page's timer on, and return at once (private).

        `request` comes first: Gradio inserts it at its position among the inputs.

        The page's 1 s timer alone draws the run. A second writer (this event streaming too)
        can deliver an older update after a newer one has been recorded as seen, and the page
        would then keep a stale status for good.
        """
        _, started = self._begin(dict(zip(SETTINGS, values, strict=True)), request)
        return ("" if started else BUSY), gr.Timer(active=True)

    def watch(self) -> gr.Timer:
        """On page load: the timer runs only while a run is live, so an idle page asks nothing (private)."""
        run = self.studio.runs.current
        return gr.Timer(active=run is not None and run.running)

    def follow(self) -> gr.Timer:
        """After Stop: the timer on while there is a run to show, even one that has just ended.

        Never off from here: a run stopped a moment ago may end before this answers, and the page
        must still get its last update; the timer switches itself off once it has (see `poll`).
        """
        return gr.Timer(active=True) if self.studio.runs.current is not None else gr.skip()

    def _begin(self, settings: dict, request: gr.Request | None) -> tuple[LiveRun, bool]:
        """Check every setting, read an uploaded zip, and start the run (or find the one going)."""
        try:
            model_config, train_config = configs(settings, self.studio.settings.train_device)
        except ValueError as exc:
            raise Refusal(str(exc)) from None
        upload = self._upload(settings["zip_file"], train_config.image_size, spec(model_config.kind)) \
            if settings["dataset"] == UPLOAD else None
        if upload is not None:
            train_config = replace(train_config, dataset=upload.dataset_name)
        return self.studio.runs.start(session_of(request), model_config, train_config, upload)

    @user_facing
    def _upload(self, zip_file, size: tuple[int, int], kind: KindSpec) -> ZipUpload:
        """The uploaded zip, surveyed; the run decodes it, showing progress, and Stop works while it does."""
        if not zip_file:
            raise Refusal("Upload a .zip of pictures first (or pick another dataset)")
        path = uploaded(zip_file)
        upload, classes = self.studio.data.upload(path, size, filename=Path(path).name)
        if classes < kind.config.MIN_CLASSES:
            raise Refusal(f"These pictures have {classes} class subfolder{'s' if classes != 1 else ''}, and a "
                          f"{kind.title} needs {kind.config.MIN_CLASSES}: choose another model, or put each class "
                          "in its own subfolder of the zip.")
        return upload

    @user_facing
    def stop(self, request: gr.Request = None) -> str:
        """Stop this session's run in progress; it ends within a second, keeping its last finished epoch."""
        return self.studio.runs.stop(session_of(request))

    def poll(self, seen, request: gr.Request = None):
        """The 1 s timer: every page sees the current run; at its end, the page's models and the adopt button.

        Once the page has the run's last update the timer switches itself off, with the Stop note cleared.
        """
        run = self.studio.runs.current
        seen = tuple(seen) if seen else NOT_SEEN
        if run is None or (snap := run.snapshot()).version == seen[0]:
            return (gr.skip(),) * 11 + (gr.Timer(active=run is not None and run.running),)
        session = session_of(request)
        mine = run.owner == session
        if snap.finished is None:
            return (*outputs(snap, seen, mine), gr.skip(), gr.skip(), gr.skip(), gr.skip())
        offer = run.result is not None and not mine
        return (*outputs(snap, seen, mine), self.studio.describe(session), gr.Button(visible=offer), "",
                gr.Timer(active=False))

    @user_facing
    def adopt(self, request: gr.Request = None) -> tuple[str, gr.Button]:
        """Make the last run's model active in this session too."""
        if self.studio.runs.adopt(session_of(request)) is None:
            raise Refusal("The last run left no model to use.")
        return self.studio.describe(session_of(request)), gr.Button(visible=False)


SETTINGS = tuple(name for name in inspect.signature(TrainTab.train).parameters if name not in ("self", "request"))


def configs(settings: dict, device: str) -> tuple[ModelConfig, TrainConfig]:
    """The run's model and training settings from the Train tab's values, each checked against its limit."""
    kind = check_choice("kind", settings["kind"], trainable())
    model = make_config(kind, **{name: _typed(name, settings[name]) for name in MODEL_WIDGETS})
    train = TrainConfig(
        dataset=check_choice("dataset", settings["dataset"], (*DATASETS, UPLOAD)),
        epochs=limits.check("epochs", settings["epochs"]),
        batch_size=limits.check("batch_size", settings["batch_size"]),
        lr=limits.check("lr", settings["lr"], "learning rate"), seed=limits.check("seed", settings["seed"]),
        kl_warmup=limits.check("kl_warmup", settings["kl_warmup"], "KL warm-up"), device=device,
        image_size=(limits.check("image_side", settings["height"], "image height"),
                    limits.check("image_side", settings["width"], "image width")),
    )
    return model, train


def outputs(snap: Snapshot, seen: tuple[int, int], mine: bool) -> tuple:
    """The seven Train-tab outputs plus what this page has now seen.

    Pictures and the download are re-sent only when they changed: re-encoding two PNGs
    for every loss update would cost more than the update itself.
    """
    fresh_pictures = snap.pictures != seen[1]
    pictures = (snap.grid, snap.reconstructions, snap.download) if fresh_pictures else (gr.skip(),) * 3
    status = snap.status if mine else f"{NOT_YOURS} {snap.others_status}"
    return (status, snap.progress_html, snap.loss_frame, snap.parts_frame, *pictures,
            (snap.version, snap.pictures))


def _typed(name: str, value: object) -> object:
    """A model option as an API client may send it (a number as text too), read as its config checks it."""
    opt = MODEL_WIDGETS[name][0]
    return limits.check(opt.limit, value, name.replace("_", " ")) if opt.limit else value


def trainable() -> tuple[str, ...]:
    """The kinds the app trains (`KindSpec.app_trains`); others come from weights/ or the CLI."""
    return tuple(name for name, kind in kinds().items() if kind.app_trains)


# the model settings the Train tab shows, in its order (name → its Option and default): those given a label
MODEL_WIDGETS = {name: option for name, option in options_of(ModelConfig).items() if option[0].label}


def dataset_defaults(name: str):
    """Show the upload box for your own pictures; Frey Face trains with its paper's Gaussian likelihood."""
    return gr.Group(visible=name == UPLOAD), DEFAULT_LIKELIHOOD.get(name, "mse")


def settings_column() -> tuple[dict, gr.Group, gr.Button, gr.Button, gr.Markdown]:
    """The run's settings, named as the /train API names them."""
    c: dict[str, gr.components.Component] = {}
    with gr.Row():
        start = gr.Button("Start", variant="primary", elem_id="start")
        stop = gr.Button("Stop", variant="stop", elem_id="stop")
    # Stop answers here, not in the run status: that belongs to the run, and its final
    # "Stopped" may arrive before Stop's own reply does.
    stop_note = gr.Markdown(elem_id="stop-note")
    c["kind"] = gr.Radio([(spec(kind).title, kind) for kind in trainable()], value="vae", label="Model",
                         info="CVAE: conditioned on the digit label", elem_id="train-kind")
    c["dataset"] = gr.Dropdown([*DATASETS, ("your pictures (.zip)", UPLOAD)], value="mnist", label="Dataset",
                               elem_id="dataset")
    with gr.Group(visible=False) as upload_box:
        c["zip_file"] = gr.File(label="A .zip of pictures; subfolders name the classes", file_types=[".zip"],
                                type="filepath", elem_id="zip-upload")
        with gr.Row():
            c["height"] = limits.slider("image_side", "Height (px)", 28)
            c["width"] = limits.slider("image_side", "Width (px)", 28)
    for name in MODEL_WIDGETS:
        c[name] = limits.option_widget(name, *MODEL_WIDGETS[name])
    c["kl_warmup"] = limits.number("kl_warmup", "KL warm-up (epochs)", 0)
    c["epochs"] = limits.slider("epochs", "Epochs", 10, elem_id="epochs")
    c["batch_size"] = limits.slider("batch_size", "Batch size", 128, elem_id="batch-size")
    c["lr"] = limits.number("lr", "Learning rate", 1e-3)
    c["seed"] = limits.seed()
    return c, upload_box, start, stop, stop_note


def continue_box() -> tuple[gr.File, gr.Button, ModelChoice, gr.Slider, gr.Button]:
    """Bring back a downloaded checkpoint, and train any of this session's runs further."""
    with gr.Accordion("Continue a run, or bring back a checkpoint", open=False, elem_id="continue-box"):
        checkpoint = gr.File(label="A checkpoint (.zip): a run's download, or a CLI checkpoint folder zipped",
                             file_types=[".zip"], type="filepath", elem_id="checkpoint-upload")
        load = gr.Button("Bring it back", elem_id="load-checkpoint")
        # a checkpoint brought back is named here before the run list catches up: the handler checks the name
        run = ModelChoice([], label="Run to continue", elem_id="continue-run", allow_custom_value=True)
        more = limits.slider("epochs", "More epochs", 5, elem_id="more-epochs")
        go = gr.Button("Continue training", elem_id="continue-training")
    return checkpoint, load, run, more, go


def run_column() -> tuple[list, gr.Button]:
    """The run's status, progress, curves, pictures and download, in the order `outputs` returns them."""
    status = gr.Markdown("No run yet: pick settings and press Start.", elem_id="run-status")
    adopt = gr.Button("Use this run's model in my tabs", visible=False, elem_id="adopt")
    progress = gr.HTML(elem_id="run-progress")
    loss_plot = gr.LinePlot(plot_frame([], LOSS_SERIES), x="epoch", y="nats", color="series",
                            title="Loss per image (nats)", elem_id="loss-plot", height=260)
    parts_plot = gr.LinePlot(plot_frame([], PART_SERIES), x="epoch", y="nats", color="series",
                             title="Reconstruction and KL terms", elem_id="parts-plot", height=260)
    with gr.Row():
        grid = grid_image("Samples (every epoch)", "train-grid")
        recon = grid_image("Test digits (top) and reconstructions", "train-recon")
    # an output only: not a drop target that invites an upload
    download = gr.File(label="Checkpoint folder (zip)", elem_id="download", interactive=False)
    return [status, progress, loss_plot, parts_plot, grid, recon, download], adopt


def build(page: Page) -> None:
    tab = TrainTab(page.studio)
    with gr.Tab(LABEL, id="train", elem_id="tab-train"):
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                controls, upload_box, start, stop, stop_note = settings_column()
                checkpoint, load, run, more, go = continue_box()
            with gr.Column(scale=2):
                shown, adopt = run_column()
        # `seen` (per session) is what this page or API client already has of the run, so
        # that an update (two PNGs among it) is never sent twice.
        seen = gr.State(NOT_SEEN)
        stream = gr.Button(visible=False)
        continue_stream = gr.Button(visible=False)
        timer = gr.Timer(UPDATE_EVERY_S, active=False)
    inputs = [controls[name] for name in SETTINGS]
    controls["dataset"].change(dataset_defaults, controls["dataset"], [upload_box, controls["likelihood"]],
                               api_visibility="private", **FREE)
    start.click(tab.start, inputs, [stop_note, timer], api_visibility="private", **FREE)
    page.demo.load(tab.watch, None, timer, api_visibility="private", **FREE)
    # /train streams the run to API clients; in the page only the timer draws it (see TrainTab.start).
    # training is for people and API clients, not a tool offered to agents (the MCP server's list)
    stream.click(not_an_agent_tool(tab.train), inputs, [*shown, seen], api_name="train", **FREE)
    # then the page follows the run, even one another visitor started after this page loaded
    stop.click(not_an_agent_tool(tab.stop), None, stop_note, api_name="stop", **FREE).then(
        tab.follow, None, timer, api_visibility="private", **FREE)
    timer.tick(tab.poll, seen, [*shown, seen, page.models, adopt, stop_note, timer], api_visibility="private",
               **FREE)
    adopt.click(not_an_agent_tool(tab.adopt), None, [page.models, adopt], api_name="adopt_run", **FREE)
    load.click(not_an_agent_tool(tab.bring_back), checkpoint, [page.models, run], api_name="load_checkpoint", **FREE)
    go.click(tab.continue_start, [run, more], [stop_note, timer], api_visibility="private", **FREE)
    continue_stream.click(not_an_agent_tool(tab.continue_run), [run, more], [*shown, seen], api_name="continue_run",
                          **FREE)
    # a finished run, a checkpoint brought back or a pick changes this session's runs
    page.models.change(tab.refresh_runs, None, run, api_visibility="private", **FREE)
