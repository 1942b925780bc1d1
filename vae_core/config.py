"""Settings as dataclasses, and every numeric bound written once.

`ModelConfig` is exactly what a checkpoint's config.json records about its model;
`TrainConfig` is one run's settings. `LIMITS` holds the range of every number a user
can set. The CLI's argument parsers, the app's widgets and the app's server-side checks
are all built from it, so a bound can never differ between two places again.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

KINDS = ("vae", "cvae", "scvae")
ARCHS = ("mlp", "conv")
LIKELIHOODS = ("mse", "bernoulli", "gaussian")
GAUSSIAN_VARIANCES = ("global", "pixel")
OBJECTIVES = ("cvae", "gsnn", "hybrid", "baseline")
# The structured-output CVAE's training layouts: the paper's fixed 1, 2 or 3 given quadrants, or any 1–3.
TRAINING_LAYOUTS = ("1", "2", "3", "any")
DEVICES = ("auto", "cpu", "cuda", "mps")
# How a model's training pictures were prepared, so an upload is prepared the same way:
# MNIST's digit recipe (ink cropped, scaled into 20×20, centred by mass), or a picture
# resized to the model's height × width with its aspect kept by padding.
PREPARATIONS = ("mnist-digit", "padded-picture")


@dataclass(frozen=True)
class Limit:
    """The closed range [lo, hi] of one setting; `whole` for counts."""

    lo: float
    hi: float
    whole: bool = False

    def check(self, name: str, value: float) -> float | int:
        """The value if it is a finite number in range (and whole where it must be); else ValueError naming why."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number, not {str(value)[:40]!r}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number")
        if self.whole and value != int(value):
            raise ValueError(f"{name} must be a whole number, not {value:g}")
        if not self.lo <= value <= self.hi:
            side = "below the minimum" if value < self.lo else "above the maximum"
            raise ValueError(f"{name} must be between {self.lo:g} and {self.hi:g}: {value:g} is {side}")
        return int(value) if self.whole else float(value)


LIMITS: dict[str, Limit] = {
    # the model
    "latent": Limit(1, 64, whole=True),
    "hidden": Limit(8, 8192, whole=True),
    "beta": Limit(0, 100),
    "alpha": Limit(0, 1),
    "image_side": Limit(8, 256, whole=True),
    "n_classes": Limit(0, 1000, whole=True),
    # a run
    "epochs": Limit(1, 10_000, whole=True),
    "batch_size": Limit(1, 65_536, whole=True),
    "lr": Limit(1e-6, 100),
    "kl_warmup": Limit(0, 1000),
    "shift": Limit(0, 4, whole=True),
    "seed": Limit(0, 2**31 - 1, whole=True),
    "step_every": Limit(1, 10_000, whole=True),  # steps between progress events (and loss reads)
    # looking at a model
    "n_samples": Limit(1, 400, whole=True),
    "temperature": Limit(0, 3),
    "span": Limit(0.1, 10),
    "steps": Limit(2, 50, whole=True),
    "styles": Limit(1, 20, whole=True),
    "completions": Limit(1, 64, whole=True),
    "importance_samples": Limit(1, 10_000, whole=True),
}


def check_choice(name: str, value: object, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(options)}, not {str(value)[:40]!r}")
    return value  # type: ignore[return-value]


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model: a checkpoint's config.json holds exactly this."""

    kind: str = "vae"
    arch: str = "mlp"
    image_shape: tuple[int, int, int] = (1, 28, 28)
    hidden: int = 200
    latent: int = 10
    n_classes: int = 10
    likelihood: str = "mse"
    gaussian_variance: str = "global"
    beta: float = 1.0
    preparation: str = "mnist-digit"
    # the structured-output CVAE only (kind "scvae"): see models/structured.py
    given_quadrants: str = "any"
    objective: str = "cvae"
    alpha: float = 0.5

    def __post_init__(self) -> None:
        self.image_shape = tuple(int(v) for v in self.image_shape)
        self.given_quadrants = str(self.given_quadrants)
        problems = []
        for name, value, options in (("kind", self.kind, KINDS), ("arch", self.arch, ARCHS),
                                     ("likelihood", self.likelihood, LIKELIHOODS),
                                     ("gaussian variance", self.gaussian_variance, GAUSSIAN_VARIANCES),
                                     ("preparation", self.preparation, PREPARATIONS)):
            _collect(problems, check_choice, name, value, options)
        for name in ("latent", "hidden", "beta"):
            _collect(problems, LIMITS[name].check, f"{name} size" if name == "latent" else name, getattr(self, name))
        if len(self.image_shape) != 3 or not 1 <= self.image_shape[0] <= 4:
            problems.append(f"image shape must be (channels 1–4, height, width), not {self.image_shape}")
        else:
            for side, value in zip(("image height", "image width"), self.image_shape[1:], strict=True):
                _collect(problems, LIMITS["image_side"].check, side, value)
            if self.arch == "conv" and (self.image_shape[1] % 4 or self.image_shape[2] % 4):
                problems.append("the conv architecture needs image height and width divisible by 4")
        _collect(problems, LIMITS["n_classes"].check, "number of classes", self.n_classes)
        if self.kind == "cvae" and self.n_classes < 2:
            problems.append("a CVAE needs labelled data with at least 2 classes")
        if self.kind == "scvae":
            if self.likelihood != "bernoulli":
                problems.append("the structured-output CVAE predicts binarized pixels: use the bernoulli likelihood")
            _collect(problems, check_choice, "objective", self.objective, OBJECTIVES)
            _collect(problems, check_choice, "given quadrants", self.given_quadrants, TRAINING_LAYOUTS)
            _collect(problems, LIMITS["alpha"].check, "alpha", self.alpha)
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def n_pixels(self) -> int:
        return math.prod(self.image_shape)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model settings: {', '.join(sorted(unknown))}")
        return cls(**data)


@dataclass(frozen=True)
class TrainConfig:
    """One run's settings; the model's own settings are in ModelConfig."""

    dataset: str = "mnist"
    data_root: str | None = None
    image_size: tuple[int, int] | None = None
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    kl_warmup: float = 0.0
    # Move each training picture by up to this many pixels each way, anew every time it is
    # seen: more distinct digits from a small set (the 4,500 offline digits overfit by epoch 100).
    shift: int = 0
    step_every: int = 20
    out: str | None = None
    resume: str | None = None
    init_from: str | None = None
    ddp: bool = False
    # torch.compile the loss step (on CUDA in "reduce-overhead" mode, i.e. CUDA graphs): for a
    # launch-bound step on a GPU. Off by default: compiling takes tens of seconds.
    compile: bool = False
    # Capture the whole training step (loss, backward, Adam) as a CUDA graph and replay it: for a
    # launch-bound step on a GPU (vae_core/train/graphs.py). Ignored off CUDA and under DDP.
    cuda_graphs: bool = False

    def __post_init__(self) -> None:
        problems = []
        for name in ("epochs", "batch_size", "lr", "kl_warmup", "shift", "seed", "step_every"):
            _collect(problems, LIMITS[name].check, name.replace("_", " "), getattr(self, name))
        _collect(problems, check_choice, "device", self.device, DEVICES)
        if self.shift and self.cuda_graphs:
            problems.append("shift draws new offsets every step, which a replayed CUDA graph cannot: use one of them")
        if self.compile and self.cuda_graphs:
            problems.append("choose one of compile and cuda graphs: compile's reduce-overhead mode captures graphs "
                            "of its own")
        if problems:
            raise ValueError("; ".join(problems))


def _collect(problems: list[str], check, *args) -> None:
    """Run one check, keeping its message: a config names every problem at once, not only the first."""
    try:
        check(*args)
    except ValueError as exc:
        problems.append(str(exc))
