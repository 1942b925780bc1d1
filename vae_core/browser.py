"""A model's decoder as numbers a web page can run, and the test set's map, for the in-page playground.

An MLP decoder is two matrix products: h = relu(W₁[z; onehot(y)] + b₁), x̂ = sigmoid(W₂h + b₂).
A page that holds W₁, b₁, W₂, b₂ redraws a digit on every slider event without asking the
server. They travel as little-endian float32 in base64: float16 would halve the bytes but
moves pixels by up to 1.5e-3, above the 1e-3 the page promises against the server's decode.
"""

from __future__ import annotations

import base64
import math

import numpy as np
import torch

from .explore import conditioning, labels_for, latent_map, manifold_grid, map_axes
from .images import png_bytes
from .losses import gaussian_kl_per_dim
from .models import LabelConditioned, PriorSampler

ACTIVE_NATS = 0.01  # a dimension whose average KL is below this carries nothing: the decoder ignores it


def _b64(tensor: torch.Tensor) -> str:
    return base64.b64encode(tensor.detach().cpu().float().contiguous().numpy().astype("<f4").tobytes()).decode()


def decoder_weights(model: PriorSampler) -> dict | None:
    """The MLP decoder's layers for the page, or None for a model the page cannot run (a conv decoder)."""
    layers = model.export_mlp()
    if layers is None:
        return None
    return {"layers": [{"w": _b64(weight), "b": _b64(bias), "rows": weight.shape[0], "cols": weight.shape[1]}
                       for weight, bias in layers]}


@torch.no_grad()
def latent_activity(model: PriorSampler, x: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """Each latent dimension's KL to the prior, averaged over pictures: how much it carries."""
    mu, log_std = model.encode(x, conditioning(model, labels))
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
    return model.decode(z, labels_for(model, 1, label))[0].cpu().numpy()


MANIFOLD_TILES = 15  # per side: 15 tiles of 28 px are a 450-px picture, each tile at least life-size ×1


@torch.no_grad()
def map_view(model: PriorSampler, x: torch.Tensor, labels: torch.Tensor, class_names: list[str]) -> dict:
    """The test pictures on two latent axes, for the page to draw, hover and click.

    Each point carries its picture and its reconstruction through the posterior mean (uint8,
    base64), so a click shows both at once. For a 2-D model the decoded manifold fills the
    background: tiles uniformly spaced over the plotted range, so each lies under the codes
    it decodes.
    """
    coords, axes = latent_map(model, x, labels)
    reconstructions = model.generate(x, conditioning(model, labels))
    span = float(np.ceil(np.percentile(np.abs(coords), 99) * 2) / 2) or 1.0
    view = {
        "x": np.round(coords[:, 0], 3).tolist(), "y": np.round(coords[:, 1], 3).tolist(),
        "labels": labels.tolist(), "classes": class_names, "span": span, "image_shape": list(x.shape[1:]),
        "axes": ["z₁", "z₂"] if axes.startswith("z") else ["PC1", "PC2"], "axes_text": axes,
        "pictures": _bytes_b64(x), "reconstructions": _bytes_b64(reconstructions), "manifold": None,
    }
    if model.config.latent == 2:
        tiles = manifold_grid(model, MANIFOLD_TILES, span=span * (MANIFOLD_TILES - 1) / MANIFOLD_TILES,
                               padding=0)  # tile centres: the tiles cover [−span, span]
        view["manifold"] = base64.b64encode(png_bytes(tiles)).decode()
    return view


def _bytes_b64(images: torch.Tensor) -> str:
    return base64.b64encode(images.clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy().tobytes()).decode()


@torch.no_grad()
def posterior_marker(model: PriorSampler, x: torch.Tensor, test_x: torch.Tensor, test_labels: torch.Tensor,
                     label: int = 0) -> dict:
    """A picture's posterior on the map's axes: its mean and the ±2σ ellipse (axes and angle).

    The mean and the diagonal covariance go through the map's own projection (`explore.map_axes`
    of the test pictures' codes): on a 2-D model the ellipse is axis-aligned, on a 1-D one flat.
    """
    mu, log_std = model.encode(x, labels_for(model, 1, label))
    centre, axes, _ = map_axes(model.posterior_means(test_x, test_labels))
    mean, cov2 = (mu[0] - centre) @ axes, axes.T @ torch.diag(torch.exp(2 * log_std[0])) @ axes
    values, vectors = torch.linalg.eigh(cov2)
    radius = [round(2 * math.sqrt(max(v, 0.0)), 3) for v in values.tolist()]  # ascending: minor, major
    return {"x": round(mean[0].item(), 3), "y": round(mean[1].item(), 3), "rx": radius[1], "ry": radius[0],
            "angle": round(math.atan2(vectors[1, 1].item(), vectors[0, 1].item()), 4)}
