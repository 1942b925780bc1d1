"""The app's actions: check the user's input, ask vae_core, hand back pictures.

Every public function here is a Gradio endpoint; its Python parameter names are the
API's keyword names. Wrong input ends as a `gr.Error` with a plain sentence, and an
unexpected failure is logged and reported without a traceback or a server path.
"""

from __future__ import annotations

import functools
import logging
import math

import gradio as gr
import numpy as np
import pandas as pd

from vae_core import explore
from vae_core.data import DATASETS
from vae_core.images import ImageError, load_digit, sketch_ink
from vae_core.losses import LIKELIHOODS
from vae_core.models import ARCHS, KINDS, MAX_LATENT, ModelConfig
from vae_core.trainer import TrainConfig

from .components import SEED_MAX
from .live_run import Snapshot
from .studio import Studio

log = logging.getLogger("vae_studio")
MAX_SAMPLES = 400
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


def digit_image(path, label: str = "image"):
    if not path:
        raise gr.Error(f"Upload or draw a digit first ({label} is empty)")
    return load_digit(str(path))


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
        code = explore.encode_mean(model, digit_image(image))
    return explore.traverse_grid(model, span, steps, code)


@user_facing
def reconstruct(image) -> np.ndarray:
    """The digit (as the model sees it, 28×28) beside its reconstruction."""
    return explore.reconstruction_pair(studio().active("vae").model, digit_image(image))


@user_facing
def interpolate(image_a, image_b, steps=10) -> np.ndarray:
    """The decoded straight path between the codes of two digits."""
    steps = number("steps", steps, 2, MAX_STEPS, whole=True)
    model = studio().active("vae").model
    return explore.interpolation_grid(model, digit_image(image_a, "image A"), digit_image(image_b, "image B"), steps)


@user_facing
def sketch_to_image(sketch) -> np.ndarray | None:
    """A Sketchpad drawing → the grey picture that the upload box then holds (private)."""
    ink = sketch_ink((sketch or {}).get("composite"))
    if ink is None:
        return gr.skip()
    return ink


@user_facing
def random_test_digits() -> tuple[np.ndarray, np.ndarray]:
    """Two test-set digits as pictures, a new pair each click, for people with no digit at hand (private)."""
    data = studio().test_data(studio().active("vae").info.get("dataset", "mnist"))
    i, j = np.random.default_rng().choice(len(data.test_images), 2, replace=False)
    return data.test_images[i, 0], data.test_images[j, 0]


@user_facing
def latent_map():
    """The test set's codes in 2-D, coloured by label, and the decoded manifold for a 2-D model."""
    active = studio().active("vae")
    data = studio().test_data(active.info.get("dataset", "mnist"))
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


def train(model="vae", dataset="mnist", epochs=10, latent=10, batch_size=128, lr=1e-3, arch="mlp", hidden=200,
          likelihood="mse", beta=1.0, kl_warmup=0.0, seed=0):
    """Start a run (or join the one going) and stream its progress, about once a second, until it ends."""
    try:
        model_config = ModelConfig(
            kind=choice("model", model, KINDS), arch=choice("arch", arch, ARCHS),
            hidden=number("hidden width", hidden, 8, 2048, whole=True),
            latent=number("latent size", latent, 1, MAX_LATENT, whole=True),
            likelihood=choice("likelihood", likelihood, LIKELIHOODS), beta=number("beta", beta, 0, 100),
        )
        train_config = TrainConfig(
            dataset=choice("dataset", dataset, DATASETS), epochs=number("epochs", epochs, 1, 500, whole=True),
            batch_size=number("batch size", batch_size, 1, 4096, whole=True), lr=number("learning rate", lr, 1e-6, 1),
            seed=whole_seed(seed),
            kl_warmup=number("KL warm-up", kl_warmup, 0, 500),
        )
    except ValueError as exc:
        raise gr.Error(str(exc)) from None
    run, started = studio().start_run(model_config, train_config)
    seen = NOT_SEEN
    if not started:
        busy = "A run is in progress: showing its live progress instead. Press Stop to end it, or wait for it."
        gr.Info(busy)
        snap = run.snapshot()
        first = _outputs(snap, seen)
        seen = first[-1]
        yield (f"{busy}\n\n{snap.status}", *first[1:])
    while True:
        snap = run.snapshot()
        if snap.version != seen[0]:  # new pictures always come with a new version
            update = _outputs(snap, seen)
            seen = update[-1]
            yield update
        if snap.finished is not None:
            return
        run.wait(UPDATE_EVERY_S)


def stop() -> str:
    """Stop the run in progress; it ends within a second, keeping its last finished epoch."""
    if studio().stop():
        return "Stopping: the run ends within a second and keeps its last finished epoch."
    return "No run is in progress."


def poll(seen):
    """The 1 s timer: any browser, including one that never pressed Start, sees the current run."""
    run = studio().run
    seen = tuple(seen) if seen else NOT_SEEN
    if run is None or (snap := run.snapshot()).version == seen[0]:
        return (gr.skip(),) * 8
    return _outputs(snap, seen)


def active_models() -> str:
    return "\n\n".join(f"- {studio().active(kind).describe()}" for kind in ("vae", "cvae"))
