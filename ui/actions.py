"""The app's actions: check the user's input, ask vae_core, hand back pictures.

Every public function here is a Gradio endpoint; its Python parameter names are the
API's keyword names. Wrong input ends as a `gr.Error` with a plain sentence, and an
unexpected failure is logged and reported without a traceback or a server path.
"""

from __future__ import annotations

import functools
import logging
import math
import os

import gradio as gr
import numpy as np
import pandas as pd

from vae_core import explore
from vae_core.data import DATASETS, DataError
from vae_core.folders import MAX_SIDE, MIN_SIDE
from vae_core.images import ImageError, load_digit, load_picture, sketch_ink
from vae_core.losses import LIKELIHOODS, REDUCTIONS, weighed_terms
from vae_core.models import ARCHS, MAX_LATENT, ModelConfig
from vae_core.structured import parse_given
from vae_core.trainer import TrainConfig

from .components import SEED_MAX
from .live_run import Snapshot
from .studio import Studio

log = logging.getLogger("vae_studio")
MAX_SAMPLES = 400
TRAINABLE = ("vae", "cvae")  # the app trains these; the completion models come from weights/
# On a ZeroGPU Space the GPU exists only inside spaces.GPU calls, and CUDA there only
# pretends to be available elsewhere; the training thread outlives any call, so it
# trains on the CPU there. Everywhere else "auto" picks CUDA, then MPS, then the CPU.
TRAIN_DEVICE = "cpu" if os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true") else "auto"
MAX_STEPS = 50
STUDIO: Studio | None = None  # set once by app.py before the server starts


def studio() -> Studio:
    assert STUDIO is not None, "app.py sets ui.actions.STUDIO before serving"
    return STUDIO


def user_facing(fn):
    """Turn our own plain-message exceptions into gr.Error, and anything else into a logged, generic one."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ImageError, ValueError) as exc:
            raise gr.Error(str(exc)) from None
        except Exception:
            log.exception("unexpected failure in %s", fn.__name__)
            raise gr.Error("Something went wrong on the server (it has been logged). Please try again.") from None

    return wrapper


# -- input checks ----------------------------------------------------------------------------
def number(name: str, value, lo: float, hi: float, whole: bool = False) -> float | int:
    """A number from any client (slider, JSON, string) checked against [lo, hi]."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"{name} must be a number, not {str(value)[:40]!r}") from None
    if not math.isfinite(x):
        raise gr.Error(f"{name} must be a finite number")
    if whole and x != int(x):
        raise gr.Error(f"{name} must be a whole number, not {x:g}")
    if not lo <= x <= hi:
        raise gr.Error(f"{name} must be between {lo:g} and {hi:g}, not {x:g}")
    return int(x) if whole else x


def whole_seed(value) -> int:
    return number("seed", value, 0, SEED_MAX, whole=True)


def choice(name: str, value, options) -> str:
    if value not in options:
        raise gr.Error(f"{name} must be one of {', '.join(options)}, not {str(value)[:40]!r}")
    return value


def digit_image(path, model, label: str = "image"):
    """The picture as `model` was trained to see it: an MNIST-style digit, or a padded, resized picture."""
    if not path:
        raise gr.Error(f"Upload or draw a picture first ({label} is empty)")
    if model.config.image_shape == (1, 28, 28):
        return load_digit(str(path))
    return load_picture(str(path), model.config.image_shape[1:])


# -- sampling tabs ---------------------------------------------------------------------------
@user_facing
def sample(n=64, temperature=1.0, seed=0) -> np.ndarray:
    """Decoded prior samples from the active VAE."""
    n = number("n", n, 1, MAX_SAMPLES, whole=True)
    temperature = number("temperature", temperature, 0, 5)
    seed = whole_seed(seed)
    return explore.sample_grid(studio().active("vae").model, n, temperature, seed)


@user_facing
def conditional(digit=0, n=64, seed=0) -> np.ndarray:
    """n samples of one digit from the active CVAE."""
    model = studio().active("cvae").model
    digit = number("digit", digit, 0, model.config.n_classes - 1, whole=True)
    n = number("n", n, 1, MAX_SAMPLES, whole=True)
    seed = whole_seed(seed)
    return explore.conditional_grid(model, digit, n, seed)


@user_facing
def all_digits(styles=8, seed=0) -> np.ndarray:
    """Every digit in a row; each column keeps one latent code, i.e. one style."""
    styles = number("styles", styles, 1, 20, whole=True)
    seed = whole_seed(seed)
    return explore.all_classes_grid(studio().active("cvae").model, styles, seed)


@user_facing
def traverse(span=3.0, steps=11, seed=0, base="zero", image=None) -> np.ndarray:
    """One row per latent dimension, varied over [−span, span] around the base code."""
    span = number("span", span, 0.1, 10)
    steps = number("steps", steps, 2, MAX_STEPS, whole=True)
    seed = whole_seed(seed)
    base = choice("base", base, explore.BASES)
    model = studio().active("vae").model
    code = None
    if base == "random":
        code = explore.random_code(model, seed)
    elif base == "image":
        code = explore.encode_mean(model, digit_image(image, model))
    return explore.traverse_grid(model, span, steps, code)


@user_facing
def reconstruct(image) -> np.ndarray:
    """The digit (as the model sees it, 28×28) beside its reconstruction."""
    model = studio().active("vae").model
    return explore.reconstruction_pair(model, digit_image(image, model))


@user_facing
def interpolate(image_a, image_b, steps=10) -> np.ndarray:
    """The decoded straight path between the codes of two digits."""
    steps = number("steps", steps, 2, MAX_STEPS, whole=True)
    model = studio().active("vae").model
    return explore.interpolation_grid(model, digit_image(image_a, model, "image A"),
                                      digit_image(image_b, model, "image B"), steps)


@user_facing
def complete(image, given="top-left", n=16, seed=0) -> np.ndarray:
    """Quadrant completion: the given part, the baseline's answer, then n completions from the prior network.

    `given` names 1–3 quadrants joined by "+", e.g. "top-left" or "top-left+bottom-left".
    """
    names = parse_given(given)
    n = number("n", n, 1, 64, whole=True)
    model = studio().active("scvae").model
    return explore.completion_grid(model, studio().active("baseline").model, digit_image(image, model), names, n,
                                   whole_seed(seed))


@user_facing
def sketch_to_image(sketch) -> np.ndarray | None:
    """A Sketchpad drawing → the grey picture that the upload box then holds (private)."""
    ink = sketch_ink((sketch or {}).get("composite"))
    if ink is None:
        return gr.skip()
    return ink


@user_facing
def explain(image, model="vae", label=0, beta=1.0, reduction="sum", seed=0):
    """One image through the active model: μ, σ, z per latent dimension, and how the loss splits.

    Returns the input beside its reconstruction from z, a per-dimension table, the KL bar
    chart's data, the loss terms in nats (JSON) and a short reading of them.
    """
    active = studio().active(choice("model", model, TRAINABLE))
    net = active.model
    label = number("label", label, 0, max(net.config.n_classes - 1, 0), whole=True)
    beta = number("beta", beta, 0, 1000)
    reduction = choice("reduction", reduction, REDUCTIONS)
    parts = explore.loss_breakdown(net, digit_image(image, net), label, whole_seed(seed))
    terms = weighed_terms(parts["reconstruction"], parts["kl"], beta, reduction, parts["n_pixels"])
    width = len(str(len(parts["mu"])))
    dims = [f"z{j + 1:0{width}d}" for j in range(len(parts["mu"]))]  # z01…z10 sort as numbers do
    table = pd.DataFrame({"dim": dims, "μ": parts["mu"], "σ": parts["sigma"], "z": parts["z"],
                          "KL (nats)": parts["kl_per_dim"]}).round(4)
    # bars start at zero: a KL near 0 is the point (an unused dimension), not an axis artefact
    bars = gr.BarPlot(pd.DataFrame({"dim": dims, "KL (nats)": parts["kl_per_dim"]}),
                      y_lim=[0, max(max(parts["kl_per_dim"]) * 1.05, 0.1)])
    numbers = {"reconstruction_nats": parts["reconstruction"], "kl_nats": parts["kl"],
               "likelihood": net.config.likelihood, "beta": beta, "reduction": reduction,
               "n_pixels": parts["n_pixels"], **terms}
    active_dims = sum(k > 0.1 for k in parts["kl_per_dim"])
    text = (f"**{active.model.config.kind.upper()}**, {net.config.likelihood} likelihood. Reconstruction "
            f"{parts['reconstruction']:.2f} nats, KL {parts['kl']:.2f} nats "
            f"({active_dims} of {len(dims)} dimensions above 0.1 nats).\n\n"
            f"With **{reduction}** reduction and β = {beta:g}: loss = {terms['reconstruction_term']:.4g} "
            f"+ {terms['kl_term']:.4g} = {terms['loss']:.4g}; the KL is **{terms['kl_share']:.1%}** of it "
            f"(effective β against a summed reconstruction: {terms['effective_beta']:g}).")
    return parts["picture"], table, bars, numbers, text


def explain_live(image, *settings):
    """`explain` for control changes: silent until there is a picture to explain (private)."""
    return explain(image, *settings) if image else (gr.skip(),) * 5


def _random_test_images(count: int, kind: str = "vae") -> tuple[np.ndarray, np.ndarray]:
    data = studio().test_data(studio().active(kind))
    idx = np.random.default_rng().choice(len(data.test_images), count, replace=False)
    return data.test_images[idx, 0], data.test_labels[idx]


@user_facing
def random_test_digits() -> tuple[np.ndarray, np.ndarray]:
    """Two test-set digits as pictures, a new pair each click, for people with no digit at hand (private)."""
    images, _ = _random_test_images(2)
    return images[0], images[1]


@user_facing
def random_test_image() -> np.ndarray:
    """One test-set digit as a picture (private)."""
    return _random_test_images(1, "scvae")[0][0]


@user_facing
def random_test_digit() -> tuple[np.ndarray, int]:
    """One test-set digit and its label (private)."""
    images, labels = _random_test_images(1)
    return images[0], int(labels[0])


@user_facing
def latent_map():
    """The test set's codes in 2-D, coloured by label, and the decoded manifold for a 2-D model."""
    active = studio().active("vae")
    data = studio().test_data(active)
    x, labels = data.tensors("test")
    coords, method = explore.latent_map(active.model, x, labels)
    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1],
                          "label": [data.class_names[k] for k in data.test_labels]})
    manifold = explore.manifold_grid(active.model) if active.model.config.latent == 2 else None
    text = f"{len(frame):,} test images; axes: {method}."
    if manifold is None:
        text += " The decoded manifold grid appears for a model with a 2-D latent space (train one with latent 2)."
    return frame, manifold, text


# -- training --------------------------------------------------------------------------------
UPDATE_EVERY_S = 1.0
NOT_SEEN = (-1, -1)


def _outputs(snap: Snapshot, seen: tuple[int, int]):
    """The seven Train-tab outputs plus what this browser has now seen.

    Pictures and the download are re-sent only when they changed: re-encoding two PNGs
    for every loss update would cost more than the update itself.
    """
    fresh_pictures = snap.pictures != seen[1]
    pictures = (snap.grid, snap.reconstructions, snap.download) if fresh_pictures else (gr.skip(),) * 3
    return (snap.status, snap.progress_html, snap.loss_frame, snap.parts_frame, *pictures,
            (snap.version, snap.pictures))


UPLOAD = "upload"


def train(model="vae", dataset="mnist", epochs=10, latent=10, batch_size=128, lr=1e-3, arch="mlp", hidden=200,
          likelihood="mse", beta=1.0, kl_warmup=0.0, seed=0, zip_file=None, height=28, width=28):
    """Start a run (or join the one going) and stream its progress, about once a second, until it ends.

    dataset="upload" trains on `zip_file`, a .zip of pictures (subfolders = classes), at height×width.
    """
    run, started = _start(model, dataset, epochs, latent, batch_size, lr, arch, hidden, likelihood, beta, kl_warmup,
                          seed, zip_file, height, width)
    seen = NOT_SEEN
    if not started:
        snap = run.snapshot()
        first = _outputs(snap, seen)
        seen = first[-1]
        yield (f"{BUSY}\n\n{snap.status}", *first[1:])
    while True:
        snap = run.snapshot()
        if snap.version != seen[0]:  # new pictures always come with a new version
            update = _outputs(snap, seen)
            seen = update[-1]
            yield update
        if snap.finished is not None:
            return
        run.wait(UPDATE_EVERY_S)


BUSY = "A run is in progress: showing its live progress instead. Press Stop to end it, or wait for it."


def start(*settings) -> str:
    """The Start button: start the run and return at once (private).

    The page's 1 s timer alone draws the run. A second writer (this event streaming too)
    can deliver an older update after a newer one has been recorded as seen, and the page
    would then keep a stale status for good.
    """
    _, started = _start(*settings)
    return "" if started else BUSY


def _start(model, dataset, epochs, latent, batch_size, lr, arch, hidden, likelihood, beta, kl_warmup, seed,
           zip_file, height, width):
    """Check every setting, read an uploaded zip, and start the run (or find the one going)."""
    try:
        dataset = choice("dataset", dataset, (*DATASETS, UPLOAD))
        model_config = ModelConfig(
            kind=choice("model", model, TRAINABLE), arch=choice("arch", arch, ARCHS),
            hidden=number("hidden width", hidden, 8, 2048, whole=True),
            latent=number("latent size", latent, 1, MAX_LATENT, whole=True),
            likelihood=choice("likelihood", likelihood, LIKELIHOODS), beta=number("beta", beta, 0, 100),
        )
        train_config = TrainConfig(
            dataset=dataset, epochs=number("epochs", epochs, 1, 500, whole=True),
            batch_size=number("batch size", batch_size, 1, 4096, whole=True), lr=number("learning rate", lr, 1e-6, 1),
            seed=whole_seed(seed), kl_warmup=number("KL warm-up", kl_warmup, 0, 500), device=TRAIN_DEVICE,
        )
        upload = _read_upload(zip_file, height, width, model_config.kind) if dataset == UPLOAD else None
        if upload is not None:
            train_config.dataset = upload.name
    except (ValueError, DataError) as exc:
        raise gr.Error(str(exc)) from None
    return studio().start_run(model_config, train_config, upload)


def _read_upload(zip_file, height, width, kind: str):
    if not zip_file:
        raise gr.Error("Upload a .zip of pictures first (or pick another dataset)")
    size = (number("image height", height, MIN_SIDE, MAX_SIDE, whole=True),
            number("image width", width, MIN_SIDE, MAX_SIDE, whole=True))
    path = str(zip_file)
    data = studio().read_upload(path, size, filename=path.replace("\\", "/").rsplit("/", 1)[-1])
    if kind == "cvae" and data.n_classes < 2:
        raise gr.Error("These pictures have no class subfolders, so only the VAE can train on them: choose "
                       "Model vae, or put each class in its own subfolder of the zip.")
    return data


def stop() -> str:
    """Stop the run in progress; it ends within a second, keeping its last finished epoch."""
    if studio().stop():
        return "Stopping: the run ends within a second and keeps its last finished epoch."
    return "No run is in progress."


def poll(seen):
    """The 1 s timer: every browser sees the current run, and the active models once it ends."""
    run = studio().run
    seen = tuple(seen) if seen else NOT_SEEN
    if run is None or (snap := run.snapshot()).version == seen[0]:
        return (gr.skip(),) * 9
    return (*_outputs(snap, seen), active_models() if snap.finished else gr.skip())


def active_models() -> str:
    return "\n\n".join(f"- {studio().active(kind).describe()}" for kind in studio().models)
