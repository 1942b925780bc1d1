"""The models, their capabilities, and the registry of kinds that builds one from its config.

To add a model kind: one module in this package, or in an installed plugin (an entry point
in the group `vae_studio.kinds`), with its class, its config class if it has settings or
rules of its own, and a `register(KindSpec(...))` line (`vae_core.kinds`). Nothing else
names the kinds: the CLI, the model card and the app read them from `kinds()`.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points
from typing import Any

from ..config import SHARED_IN_0_1, ModelConfig
from ..kinds import REGISTRY, KindSpec
from .base import Completer, LabelConditioned, Model, PriorSampler, WarmStartable, count_parameters, in_chunks
from .structured import StructuredConfig, StructuredCVAE
from .vae import CVAE, VAE, CVAEConfig

ENTRY_POINTS = "vae_studio.kinds"
_plugins_loaded: list[bool] = []  # one entry once the plugins' modules have been imported


def kinds() -> dict[str, KindSpec]:
    """Every kind, this package's and installed plugins', in their `order`.

    This package's modules are all imported on first call (so a new module here needs no
    import line), then every entry point of the group `vae_studio.kinds`.
    """
    if not _plugins_loaded:
        _plugins_loaded.append(True)
        for module in pkgutil.iter_modules(__path__, f"{__name__}."):
            importlib.import_module(module.name)
        for point in entry_points(group=ENTRY_POINTS):
            point.load()
    return {kind.name: kind for kind in sorted(REGISTRY.values(), key=lambda kind: (kind.order, kind.name))}


def spec(name: object) -> KindSpec:
    """The spec of kind `name`; ValueError listing the kinds there are."""
    found = kinds()
    if name not in found:
        raise ValueError(f"kind must be one of {', '.join(found)}, not {str(name)[:40]!r}")
    return found[str(name)]


def make_config(kind: str, **settings: Any) -> ModelConfig:
    """A checked config of kind `kind` from its settings (the kind's own fields included)."""
    return spec(kind).config(kind=kind, **settings)


def config_from_dict(data: dict) -> ModelConfig:
    """The config a checkpoint's `model` dict describes, as its kind's class.

    Checkpoint format 0.1 wrote the structured CVAE's fields for every kind: a kind whose
    class lacks them reads such a dict without them.
    """
    config_class = spec(data.get("kind", "vae")).config
    own = set(config_class.__dataclass_fields__)
    return config_class.from_dict({k: v for k, v in data.items() if k in own or k not in SHARED_IN_0_1})


def build_model(config: ModelConfig) -> Model:
    """A freshly initialised model of `config.kind` (its weights drawn from torch's global generator)."""
    kind = spec(config.kind)
    if type(config) is not kind.config:
        raise ValueError(f"a {kind.name}'s settings are a {kind.config.__name__}, not a {type(config).__name__}: "
                         "make them with vae_core.models.make_config")
    return kind.model(config)


__all__ = ["CVAE", "VAE", "CVAEConfig", "Completer", "KindSpec", "LabelConditioned", "Model", "ModelConfig",
           "PriorSampler", "StructuredCVAE", "StructuredConfig", "WarmStartable", "build_model", "config_from_dict",
           "count_parameters", "in_chunks", "kinds", "make_config", "spec"]
