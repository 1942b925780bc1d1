"""A model's decoder as numbers a web page can run, and the test set's map, for the in-page playground.

An MLP decoder is two matrix products: h = relu(W₁[z; onehot(y)] + b₁), x̂ = sigmoid(W₂h + b₂).
A page that holds W₁, b₁, W₂, b₂ redraws a digit on every slider event without asking the
server. They travel as little-endian float32 in base64: float16 would halve the bytes but
moves pixels by up to 1.5e-3, above the 1e-3 the page promises against the server's decode.
"""

from __future__ import annotations

import base64

import numpy as np
import torch

from .losses import gaussian_kl_per_dim
from .models import LabelConditioned, PriorSampler

ACTIVE_NATS = 0.01  # a dimension whose average KL is below this carries nothing: the decoder ignores it


def _b64(tensor: torch.Tensor) -> str:
    return base64.b64encode(tensor.detach().cpu().float().contiguous().numpy().astype("<f4").tobytes()).decode()


def decoder_weights(model: PriorSampler) -> dict | None:
    """The MLP decoder's layers for the page, or None for a model the page cannot run (a conv decoder)."""
    mlp = getattr(model.decoder, "mlp", None)
    if mlp is None:
        return None
    return {"layers": [{"w": _b64(layer.weight), "b": _b64(layer.bias), "rows": layer.out_features,
                        "cols": layer.in_features} for layer in (mlp.fc3, mlp.fc4)]}


@torch.no_grad()
def latent_activity(model: PriorSampler, x: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """Each latent dimension's KL to the prior, averaged over pictures: how much it carries."""
    mu, log_std = model.encode(x, labels if isinstance(model, LabelConditioned) else None)
    return gaussian_kl_per_dim(mu, log_std).mean(0).tolist()


def playground(model: PriorSampler, x: torch.Tensor, labels: torch.Tensor, class_names: list[str]) -> dict:
    """All the page needs: shapes, the dimensions by how much they carry, the classes, and the decoder."""
    kl = latent_activity(model, x, labels)
    cfg = model.config
    return {
        "latent": cfg.latent, "image_shape": list(cfg.image_shape),
        "classes": class_names if isinstance(model, LabelConditioned) else [],
        "order": sorted(range(cfg.latent), key=lambda d: -kl[d]), "kl": [round(k, 4) for k in kl],
        "active": [k >= ACTIVE_NATS for k in kl], "decoder": decoder_weights(model),
    }


@torch.no_grad()
def decode(model: PriorSampler, code: list[float], label: int = 0) -> np.ndarray:
    """One code decoded to float pixels in [0, 1]: what the page's decoder must reproduce."""
    z = torch.tensor([code], dtype=torch.float32)
    labels = torch.tensor([int(label)]) if isinstance(model, LabelConditioned) else None
    return model.decode(z, labels)[0].cpu().numpy()
