"""Looking inside a trained model: sample grids, traversals, interpolations, latent maps.

Each function returns the picture as a uint8 grid (`images.to_grid`), so the app
only has to show it. All randomness comes from an explicit seed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .images import to_grid
from .losses import gaussian_kl_per_dim
from .models import Completer, LabelConditioned, Model, PriorSampler
from .models.structured import binarize

BASES = ("zero", "random", "image")


def square(n: int) -> int:
    """Tiles per row for a square-ish grid: 400 samples as 20×20, 64 as 8×8, 10 as 4×3."""
    return math.ceil(math.sqrt(n))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def conditioning(model: PriorSampler, labels: torch.Tensor) -> torch.Tensor | None:
    """The labels, for a label-conditioned model; others take none."""
    return labels if isinstance(model, LabelConditioned) else None


def labels_for(model: PriorSampler, count: int, label: int = 0) -> torch.Tensor | None:
    """`count` copies of `label` for a label-conditioned model; others take none."""
    return conditioning(model, torch.full((count,), int(label)))


@torch.no_grad()
def sample_grid(model: PriorSampler, n: int = 64, temperature: float = 1.0, seed: int = 0) -> np.ndarray:
    """Decoded prior draws; a CVAE draws its class uniformly for each image."""
    generator = _gen(seed)
    labels = None
    if isinstance(model, LabelConditioned):
        labels = torch.randint(0, model.config.n_classes, (n,), generator=generator)
    return to_grid(model.sample(n, labels, temperature, generator), nrow=square(n))


@torch.no_grad()
def conditional_grid(model: LabelConditioned, digit: int, n: int = 64, seed: int = 0,
                     temperature: float = 1.0) -> np.ndarray:
    """n samples of one class from a CVAE."""
    return to_grid(model.sample(n, torch.full((n,), int(digit)), temperature, _gen(seed)), nrow=square(n))


@torch.no_grad()
def all_classes_grid(model: LabelConditioned, styles: int = 8, seed: int = 0) -> np.ndarray:
    """One row per class; each column keeps its latent code, so a column shows one style."""
    images = model.class_rows(range(model.config.n_classes), styles, _gen(seed))
    return to_grid(images, nrow=styles)


@torch.no_grad()
def traverse_grid(
    model: PriorSampler, span: float = 3.0, steps: int = 11, base: torch.Tensor | None = None, label: int = 0
) -> np.ndarray:
    """Row d varies latent dim d over [−span, span] around `base` (default the origin)."""
    latent = model.config.latent
    base = torch.zeros(latent) if base is None else base.reshape(latent)
    values = torch.linspace(-span, span, steps)
    z = base.repeat(latent * steps, 1).view(latent, steps, latent)
    for d in range(latent):
        z[d, :, d] = base[d] + values
    return to_grid(model.sample(0, labels_for(model, latent * steps, label), z=z.view(-1, latent)), nrow=steps)


@torch.no_grad()
def random_code(model: PriorSampler, seed: int) -> torch.Tensor:
    return torch.randn(model.config.latent, generator=_gen(seed))


@torch.no_grad()
def encode_mean(model: PriorSampler, x: torch.Tensor, label: int = 0) -> torch.Tensor:
    """The posterior mean of one image (1, C, H, W)."""
    return model.encode(x, labels_for(model, 1, label))[0][0]


@torch.no_grad()
def reconstruction_pair(model: PriorSampler, x: torch.Tensor, label: int = 0) -> np.ndarray:
    """The input beside its reconstruction through the posterior mean."""
    return to_grid(torch.cat([x, model.generate(x, labels_for(model, 1, label))]))


@torch.no_grad()
def interpolation_grid(model: PriorSampler, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 10) -> np.ndarray:
    """Decodes the straight path between two posterior means, endpoints included."""
    z_a, z_b = encode_mean(model, x_a), encode_mean(model, x_b)
    t = torch.linspace(0, 1, steps).unsqueeze(1)
    z = (1 - t) * z_a + t * z_b
    return to_grid(model.sample(0, labels_for(model, steps), z=z), nrow=steps)


@torch.no_grad()
def latent_map(model: PriorSampler, x: torch.Tensor, labels: torch.Tensor) -> tuple[np.ndarray, str]:
    """2-D coordinates of the posterior means: the code itself, or its first two principal components."""
    means = model.posterior_means(x, labels)
    centre, axes, name = map_axes(means)
    return ((means - centre) @ axes).numpy(), name


def map_axes(means: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The latent map's projection of codes onto its two axes: centre, a (d, 2) matrix, and their names.

    A 1- or 2-D code is its own axes (a 1-D code's second axis is 0); a larger one is projected
    on the first two principal components of `means`. Anything placed on the map (a drawn
    digit's posterior) goes through the same projection.
    """
    d = means.shape[1]
    if d <= 2:
        return torch.zeros(d), torch.eye(d, 2), "z₁ (1-D latent)" if d == 1 else "z₁, z₂"
    centre = means.mean(0)
    _, _, v = torch.linalg.svd(means - centre, full_matrices=False)
    axes = torch.zeros(d, 2)
    axes[:, : min(2, len(v))] = v[:2].T  # fewer than two components when there are fewer than two points
    return centre, axes, f"first two principal components of the {d}-D code"


@torch.no_grad()
def manifold_grid(model: PriorSampler, n: int = 15, label: int = 0, span: float | None = None,
                  padding: int = 2) -> np.ndarray:
    """Decodes an n×n grid of a 2-D latent space (top row: high z₂).

    Without `span` the points sit at the normal's quantiles (1/(n+1) … n/(n+1)), so each
    covers an equal share of the prior's mass, as in Kingma & Welling's figures. With it they
    are evenly spaced over [−span, span], so that the tiles line up with a plot's axes.
    """
    if model.config.latent != 2:
        raise ValueError("the manifold grid needs a model with a 2-D latent space")
    values = torch.distributions.Normal(0.0, 1.0).icdf(torch.arange(1, n + 1) / (n + 1)) if span is None \
        else torch.linspace(-span, span, n)
    z2, z1 = torch.meshgrid(values.flip(0), values, indexing="ij")
    z = torch.stack([z1.reshape(-1), z2.reshape(-1)], 1)
    return to_grid(model.sample(0, labels_for(model, n * n, label), z=z), nrow=n, padding=padding)


@torch.no_grad()
def loss_breakdown(model: PriorSampler, x: torch.Tensor, label: int = 0, seed: int = 0) -> dict:
    """The ELBO's parts for one image (1, C, H, W) and one draw z = μ + σ·ε (ε seeded).

    The same functions the training loss calls compute every number here, so what a
    learner reads is what the optimizer sees: `reconstruction` is the training term
    (−log p(x|z), up to a constant for `mse`) and `kl` is the closed-form KL to N(0, I).
    """
    terms = model.loss_terms(x, labels_for(model, 1, label), _gen(seed))
    mu, log_std = terms["mu"], terms["log_std"]
    kl_per_dim = gaussian_kl_per_dim(mu, log_std)
    return {
        "mu": mu[0].tolist(), "sigma": torch.exp(log_std[0]).tolist(), "z": terms["z"][0].tolist(),
        "kl_per_dim": kl_per_dim[0].tolist(),
        "reconstruction": terms["recon"].sum().item(),
        "kl": kl_per_dim.sum().item(),
        "n_pixels": model.config.n_pixels,
        "picture": to_grid(torch.cat([x, terms["mean"]])),
    }


@torch.no_grad()
def completion_grid(model: Completer, baseline: Completer, x: torch.Tensor, given: tuple[str, ...], n: int = 16,
                    seed: int = 0) -> np.ndarray:
    """Quadrant completion: the given part, the baseline's single answer, then n completions.

    Completions draw z from the prior network p(z|x); the given quadrants are the input's
    own pixels. A grey line outlines the given part on every tile.
    """
    mask = model.layout_mask(given)
    given_part = binarize(x) * mask + 0.25 * (1 - mask)  # the hidden area shown dark grey
    tiles = torch.cat([given_part, baseline.complete(x, mask, 1), model.complete(x, mask, n, _gen(seed))])
    edge = (F.max_pool2d(mask, 3, stride=1, padding=1) - mask).bool().expand_as(tiles)  # hidden pixels beside x
    return to_grid(tiles.masked_fill(edge, 0.5), nrow=min(n + 2, 10))


@torch.no_grad()
def epoch_pictures(model: Model, x: torch.Tensor, labels: torch.Tensor, seed: int = 0, count: int = 8) -> dict:
    """What a live run shows after each epoch: the model's preview grid, and test images above their
    reconstructions (or completions).

    The test images are spread over the whole test set, so a set sorted by class (the
    offline subset is) shows a mix of classes, not eight zeros.
    """
    pick = torch.linspace(0, len(x) - 1, min(count, len(x)), device=x.device).round().long()
    originals, chosen = x[pick], labels[pick]
    generator = torch.Generator(device=x.device).manual_seed(seed)
    grid = to_grid(model.preview(originals, chosen, generator))
    return {"grid": grid, "reconstructions": to_grid(torch.cat([originals, model.generate(originals, chosen)]))}
