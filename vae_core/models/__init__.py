"""The models and the registry that builds one from its config.

To add a model: write a class that keeps `base.Model` (and whichever capability
protocols it has), add its kind to `config.KINDS`, and register it in `REGISTRY`.
"""

from __future__ import annotations

from ..config import ModelConfig
from .base import Completer, LabelConditioned, Model, PriorSampler, count_parameters, in_chunks
from .structured import StructuredCVAE
from .vae import CVAE, VAE

REGISTRY: dict[str, type] = {"vae": VAE, "cvae": CVAE, "scvae": StructuredCVAE}


def build_model(config: ModelConfig) -> Model:
    """A freshly initialised model of `config.kind` (its weights drawn from torch's global generator)."""
    return REGISTRY[config.kind](config)


__all__ = ["CVAE", "VAE", "Completer", "LabelConditioned", "Model", "ModelConfig", "PriorSampler", "REGISTRY",
           "StructuredCVAE", "build_model", "count_parameters", "in_chunks"]
