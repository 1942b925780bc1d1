"""What a model kind is: one module that registers one `KindSpec`.

Everything that differs between kinds lives in its spec and its config class: the CLI's
`--kind` and flags, config validation, the model card, the app's Train tab, its model picker
and the loss curves are all built from the registry, and the trainer and the tabs never ask
which kind they hold (tabs ask for a capability: `models.base`).

A kind's module calls `register` when imported. `vae_core.models` finds the modules and
reads the registry (`kinds`, `spec`, `make_config`, `build_model`); this module only holds
it, so that a kind's module can register without importing the package that finds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .config import ModelConfig

LOSS_TERMS = ("recon", "kl")  # the terms of a VAE's loss: reconstruction and KL


@dataclass(frozen=True)
class KindSpec:
    """One model kind: what builds it, what it is called, and what the app does with it."""

    name: str  # as --kind and config.json spell it
    model: type  # an nn.Module built from its config: `model(config)`
    config: type[ModelConfig]  # its settings (and their rules); several kinds may share one class
    title: str  # what people read: "VAE", "CVAE"
    description: str  # a phrase for the model card: "variational autoencoder"
    help: str  # one line for `--kind`'s help
    likelihood: str | None = None  # the likelihood it always trains with; None: the dataset's default
    loss_terms: tuple[str, ...] = LOSS_TERMS  # the parts of its loss it reports beside `loss`
    app_trains: bool = False  # the app's Train tab offers it
    # folders in weights/ that the app offers for this kind, its default first
    pretrained: tuple[str, ...] = ()
    # pretrained models the tabs use by name beside the session's own (name → folder in weights/)
    companions: dict[str, str] = field(default_factory=dict)
    order: int = 100  # its place in every list of kinds (--kind, the app's choices), then by name

    def can(self, capability: type) -> bool:
        """Whether its models have `capability` (a protocol of `models.base`): every method it declares.

        Asked of the class, before any model is built; a protocol's data members (`config`) are
        each instance's, so `issubclass` cannot answer and the methods stand for the whole.
        """
        return all(callable(getattr(self.model, name, None)) for name in _methods(capability))


def _methods(protocol: type) -> set[str]:
    """The public methods that `protocol` and the protocols it extends declare."""
    return {name for klass in protocol.__mro__ if Protocol in klass.__bases__
            for name, value in vars(klass).items() if callable(value) and not name.startswith("_")}


REGISTRY: dict[str, KindSpec] = {}


def register(spec: KindSpec) -> KindSpec:
    """Add a kind; a second, different kind of the same name is refused (two plugins must not shadow each other)."""
    if spec.name in REGISTRY and REGISTRY[spec.name] != spec:
        raise ValueError(f"two model kinds are called {spec.name!r}")
    REGISTRY[spec.name] = spec
    return spec
