"""Test-set metrics: negative ELBO and its parts, the IWAE bound, active latent units."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .losses import log_likelihood_offset, log_normal, reconstruction_loss
from .models import VAE


@torch.no_grad()
def elbo_metrics(
    model: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator | None = None,
    chunk: int = 1000,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, float] | None:
    """Per-image means of the model's own loss at KL weight 1 (the −ELBO for a VAE), one z draw.

    This is pytorch/examples' "Test set loss". Returns None when `should_stop` fires
    between chunks, so a stop is never delayed by a full pass over a large test set.
    """
    was_training = model.training
    model.eval()
    totals = torch.zeros(3, device=x.device)
    for start in range(0, len(x), chunk):
        if should_stop():
            model.train(was_training)
            return None
        parts = model.loss_function(x[start : start + chunk], labels[start : start + chunk], 1.0, generator)
        totals += torch.stack([parts["loss"], parts["recon"], parts["kl"]])
    model.train(was_training)
    loss, recon, kl = (totals / len(x)).tolist()
    return {"test_loss": loss, "recon": recon, "kl": kl}


@torch.no_grad()
def iwae_nll(
    model: VAE, x: torch.Tensor, labels: torch.Tensor, k: int = 100, generator: torch.Generator | None = None
) -> float:
    """−log p(x) estimated by the k-sample importance-weighted bound (Burda et al. 2015), nats per image.

    log p(x) ≥ E[log (1/k) Σ p(x|z_i) p(z_i) / q(z_i|x)], tighter as k grows; k = 1 is the ELBO.
    For `mse` the decoder is read as the Gaussian of variance ½ whose NLL MSE-sum is, up to
    its constant, so the number is a proper likelihood.
    """
    model.eval()
    cfg = model.config
    offset = log_likelihood_offset(cfg.likelihood, cfg.n_pixels)
    chunk = max(1, 20000 // k)
    total = 0.0
    for start in range(0, len(x), chunk):
        xb, yb = x[start : start + chunk], labels[start : start + chunk]
        mu, log_std = model.encode(xb, yb)
        eps = torch.randn((k, *mu.shape), generator=generator, device=x.device)
        z = mu + torch.exp(log_std) * eps
        log_q = log_normal(z, mu, log_std)
        log_p_z = log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
        reps = xb.expand(k, *xb.shape).reshape(-1, *xb.shape[1:])
        logits = model.decode_logits(z.reshape(-1, cfg.latent), yb.repeat(k))
        log_p_x = -(reconstruction_loss(cfg.likelihood, logits, reps, model.log_sigma_x) + offset).view(k, -1)
        log_w = log_p_x + log_p_z - log_q
        total += -(torch.logsumexp(log_w, dim=0) - math.log(k)).sum().item()
    return total / len(x)


@torch.no_grad()
def active_units(model: VAE, x: torch.Tensor, labels: torch.Tensor, threshold: float = 0.01) -> int:
    """Latent dims whose posterior mean moves with the input: Cov_x(E_q[z]) > threshold (Burda et al.)."""
    model.eval()
    means = torch.cat([model.encode(x[i : i + 2000], labels[i : i + 2000])[0] for i in range(0, len(x), 2000)])
    return int((means.var(dim=0) > threshold).sum().item())


def evaluate(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, iwae_k: int = 100, seed: int = 0,
             given: tuple[str, ...] | None = None) -> dict:
    """The `evaluate` command's numbers for one model on one test set.

    A structured-output CVAE reports its negative conditional log-likelihood instead of
    the IWAE bound: `iwae_k` is then its number of importance samples S, and `given`
    the quadrant layout (default: the one it was trained on; "any" models: the top half).
    """
    generator = torch.Generator(device=x.device).manual_seed(seed)
    metrics = elbo_metrics(model, x, labels, generator)
    if model.config.kind == "scvae":
        from .structured import CANONICAL

        given = given or CANONICAL[model.config.given_quadrants]
        metrics["ncll"] = conditional_nll(model, x, given, iwae_k, generator)
        metrics.update(samples=iwae_k, given=list(given), objective=model.config.objective)
        return metrics
    metrics["iwae_nll"] = iwae_nll(model, x, labels, iwae_k, generator)
    metrics["iwae_k"] = iwae_k
    metrics["active_units"] = active_units(model, x, labels)
    return metrics


@torch.no_grad()
def conditional_nll(model: nn.Module, x: torch.Tensor, given: tuple[str, ...], samples: int = 100,
                    generator: torch.Generator | None = None) -> float:
    """−log p(y|x) in nats per test image for the hidden quadrants (see StructuredCVAE.conditional_nll)."""
    model.eval()
    mask = model.layout_mask(given, x.device)
    chunk = max(1, 20000 // samples)
    total = sum(model.conditional_nll(x[i : i + chunk], mask, samples, generator).sum().item()
                for i in range(0, len(x), chunk))
    return total / len(x)
