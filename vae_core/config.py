"""Settings as dataclasses, and every numeric bound written once.

`ModelConfig` is exactly what a checkpoint's config.json records about its model;
`TrainConfig` is one run's settings. `LIMITS` holds the range of every number a user
can set. The CLI's argument parsers, the app's widgets and the app's server-side checks
are all built from it, so a bound can never differ between two places again.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

ARCHS = ("mlp", "conv")
LIKELIHOODS = ("mse", "bernoulli", "gaussian")
GAUSSIAN_VARIANCES = ("global", "pixel")
DEVICES = ("auto", "cpu", "cuda", "mps")
# How a model's training pictures were prepared, so an upload is prepared the same way:
# MNIST's digit recipe (ink cropped, scaled into 20×20, centred by mass), or a picture
# resized to the model's height × width with its aspect kept by padding.
PREPARATIONS = ("mnist-digit", "padded-picture")


def check_number(name: str, value: object, text: bool = True) -> float:
    """`value` as a finite float, from a number or (where `text`) a numeric string; else ValueError naming why.

    The one place a user's number is read: `Limit.check`, the CLI's option types, the app's
    handlers and its widgets' own refusals all go through it.
    """
    if isinstance(value, str) and text:
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{name} must be a number, not {str(value)[:40]!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {str(value)[:40]!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number")
    return float(value)


@dataclass(frozen=True)
class Limit:
    """The closed range [lo, hi] of one setting; `whole` for counts."""

    lo: float
    hi: float
    whole: bool = False

    def check(self, name: str, value: object, text: bool = True) -> Any:
        """The value if it is a finite number in range (and whole where it must be); else ValueError naming why.

        `text`: a numeric string is read as its number (a user typed it); a config file's must be a number.
        The value is an int for a `whole` limit, else a float (typed Any: a caller knows which its limit is).
        """
        number = check_number(name, value, text)
        if self.whole and number != int(number):
            raise ValueError(f"{name} must be a whole number, not {number:g}")
        if not self.lo <= number <= self.hi:
            side = "below the minimum" if number < self.lo else "above the maximum"
            raise ValueError(f"{name} must be between {self.lo:g} and {self.hi:g}: {number:g} is {side}")
        return int(number) if self.whole else number


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
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(options)}, not {str(value)[:40]!r}")
    return value


@dataclass(frozen=True)
class Option:
    """What a user-set model field is: its help, its range or choices, and how the app's Train tab shows it.

    Carried in the field's metadata, so the CLI's flags, config validation, the model card's
    command and the Train tab's widgets are all built from the config class itself.
    """

    help: str
    limit: str | None = None  # a key of LIMITS, for a number
    choices: tuple[str, ...] = ()
    label: str = ""  # the Train tab's label; "" keeps the field out of the app (the CLI still has it)
    step: float | None = None  # the Train tab's slider step, where not 1 for a count
    number_box: bool = False  # the Train tab shows a number box rather than a slider

    def check(self, name: str, value: object) -> object:
        """The value, checked against this option's range or choices (whole numbers made ints; no strings)."""
        if self.limit is not None:
            return LIMITS[self.limit].check(name.replace("_", " "), value, text=False)
        if self.choices:
            return check_choice(name.replace("_", " "), value, self.choices)
        return value


def option(default: object, help: str, **kwargs) -> Any:
    """A dataclass field that is a user-set model option (see `Option`)."""
    return field(default=default, metadata={"option": Option(help, **kwargs)})


def options_of(config_class: type) -> dict[str, tuple[Option, object]]:
    """The user-set fields of a config class, in order: name → (its Option, its default)."""
    return {f.name: (f.metadata["option"], f.default) for f in fields(config_class) if "option" in f.metadata}


# The flat config of checkpoint format 0.1 wrote the structured CVAE's three fields for every kind
# (`models.config_from_dict` reads such a checkpoint of another kind without them).
SHARED_IN_0_1 = ("given_quadrants", "objective", "alpha")


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model: a checkpoint's config.json holds exactly this.

    This class is the VAE's; a kind with settings or rules of its own subclasses it (see
    `vae_core.kinds`), adding fields made with `option` and checks in `problems`.
    """

    MIN_CLASSES: ClassVar[int] = 0  # the labelled data a kind needs: a CVAE needs two classes or more

    kind: str = "vae"
    arch: str = option("mlp", "fully connected (the seed's) or convolutional encoder and decoder", choices=ARCHS,
                       label="Architecture")
    image_shape: tuple[int, int, int] = (1, 28, 28)
    hidden: int = option(200, "width of the hidden layers", limit="hidden", label="Hidden width", step=8)
    latent: int = option(10, "size of the latent code z", limit="latent", label="Latent size")
    n_classes: int = 10
    likelihood: str = option("mse", "the decoder's likelihood: mse as in the seed (a Gaussian of variance 1/2), "
                             "bernoulli (BCE-sum) or gaussian with a learned variance", choices=LIKELIHOODS,
                             label="Likelihood")
    gaussian_variance: str = option("global", "for --likelihood gaussian: one learned variance or one per pixel",
                                    choices=GAUSSIAN_VARIANCES)
    beta: float = option(1.0, "weight of the KL term", limit="beta", label="β (KL weight)", number_box=True)
    preparation: str = "mnist-digit"

    def __post_init__(self) -> None:
        self.image_shape = tuple(int(v) for v in self.image_shape)  # type: ignore[assignment]
        problems: list[str] = []
        for name, (opt, _) in options_of(type(self)).items():
            try:
                setattr(self, name, opt.check(name, getattr(self, name)))
            except ValueError as exc:
                problems.append(str(exc))
        _collect(problems, check_choice, "preparation", self.preparation, PREPARATIONS)
        problems += self.problems()
        if problems:
            raise ValueError("; ".join(problems))

    def problems(self) -> list[str]:
        """What is wrong with these settings beyond each field's own range: shapes, and a kind's own rules."""
        problems: list[str] = []
        if len(self.image_shape) != 3 or not 1 <= self.image_shape[0] <= 4:
            problems.append(f"image shape must be (channels 1–4, height, width), not {self.image_shape}")
        else:
            for side, value in zip(("image height", "image width"), self.image_shape[1:], strict=True):
                _collect(problems, LIMITS["image_side"].check, side, value)
            if self.arch == "conv" and (self.image_shape[1] % 4 or self.image_shape[2] % 4):
                problems.append("the conv architecture needs image height and width divisible by 4")
        _collect(problems, LIMITS["n_classes"].check, "number of classes", self.n_classes)
        if self.n_classes < self.MIN_CLASSES:
            problems.append(f"a {self.kind} needs labelled data with at least {self.MIN_CLASSES} classes")
        return problems

    @property
    def role(self) -> str:
        """The place a model of these settings takes among a session's models: its kind."""
        return self.kind

    @property
    def n_pixels(self) -> int:
        return math.prod(self.image_shape)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """These settings from a checkpoint's `model` dict; unknown fields refused (`models.config_from_dict`
        picks the class of the dict's kind)."""
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
        problems: list[str] = []
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
