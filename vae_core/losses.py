"""The objectives: reconstruction terms, one per likelihood, the Gaussian KL, and importance sampling.

Every function returns one number per image (summed over pixels or latent dims), so
callers choose how to reduce over the batch. Summing over pixels — not averaging —
is what makes the two ELBO terms comparable: a per-pixel mean would silently shrink
the reconstruction term by the pixel count relative to the KL.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .config import LIKELIHOODS
from .nets import reparameterize


def gaussian_kl(
    mu: torch.Tensor,
    log_std: torch.Tensor,
    prior_mu: torch.Tensor | None = None,
    prior_log_std: torch.Tensor | None = None,
) -> torch.Tensor:
    """KL(N(mu, σ²) ‖ N(prior_mu, prior_σ²)) for diagonal Gaussians, summed over dims.

    With no prior given this is the familiar −½ Σ(1 + 2 log σ − μ² − σ²) against
    N(0, I); the structured-output CVAE passes its learned prior p(z|x).
    """
    return gaussian_kl_per_dim(mu, log_std, prior_mu, prior_log_std).sum(dim=-1)


def gaussian_kl_per_dim(
    mu: torch.Tensor,
    log_std: torch.Tensor,
    prior_mu: torch.Tensor | None = None,
    prior_log_std: torch.Tensor | None = None,
) -> torch.Tensor:
    """The KL of each latent dimension: which dimensions carry information (KL ≫ 0) and which are unused."""
    if prior_mu is None and prior_log_std is None:  # N(0, I): the same terms, in half the ops of a step
        return 0.5 * (torch.exp(2 * log_std) + mu * mu - 1) - log_std
    if prior_mu is None:
        prior_mu = torch.zeros_like(mu)
    if prior_log_std is None:
        prior_log_std = torch.zeros_like(log_std)
    var_ratio = torch.exp(2 * (log_std - prior_log_std))
    mean_term = ((mu - prior_mu) * torch.exp(-prior_log_std)) ** 2
    return 0.5 * (var_ratio + mean_term - 1 - 2 * (log_std - prior_log_std))


def log_normal(z: torch.Tensor, mu: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log N(z; μ, σ²) of a diagonal Gaussian, summed over the last dim: importance weights need it."""
    return (-0.5 * ((z - mu) * torch.exp(-log_std)) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def reconstruction_loss(
    likelihood: str, logits: torch.Tensor, x: torch.Tensor, log_sigma_x: torch.Tensor | None = None
) -> torch.Tensor:
    """The training reconstruction term −log p(x|z) (up to a constant for `mse`), per image.

    `logits` are the decoder's pre-sigmoid outputs: the Bernoulli term uses them
    directly (stable BCE), the others compare sigmoid(logits) with x.
    """
    dims = tuple(range(1, x.dim()))
    if likelihood == "bernoulli":
        return bernoulli_nll(logits, x).sum(dims)
    mean = torch.sigmoid(logits)
    if likelihood == "mse":
        return F.mse_loss(mean, x, reduction="none").sum(dims)
    if likelihood == "gaussian":
        assert log_sigma_x is not None, "the gaussian likelihood needs its learned log σ"
        # log_sigma_x is (C, H, W) per pixel or (1, 1, 1) global; both broadcast over x.
        nll = 0.5 * ((x - mean) * torch.exp(-log_sigma_x)) ** 2 + log_sigma_x + 0.5 * math.log(2 * math.pi)
        return nll.sum(dims)
    raise ValueError(f"unknown likelihood {likelihood!r}; choose one of {', '.join(LIKELIHOODS)}")


class _BernoulliNLL(torch.autograd.Function):
    """softplus(l) − x·l per pixel, with its gradient sigmoid(l) − x.

    The numbers of `F.binary_cross_entropy_with_logits(..., reduction="none")`, written with
    `log(1 + e^{−|l|})`: PyTorch's CPU `log1p` (which softplus and log-sigmoid use) is not
    vectorised and took 445 µs for a 128×784 batch against 86 µs for `log`, so the loss was
    a tenth of a training step. Where e^{−|l|} is below float precision, `log(1 + e)` drops a
    term under 1e-7 nats; the gradient is exact.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if logits.shape != x.shape:  # as PyTorch's loss: no silent broadcast of a mismatched target
            raise ValueError(f"the target's shape {tuple(x.shape)} is not the logits' {tuple(logits.shape)}")
        nll = logits.abs().neg_().exp_().add_(1).log_()
        nll += logits.clamp_min(0)
        nll.addcmul_(x, logits, value=-1)
        ctx.save_for_backward(logits, x)
        return nll

    @staticmethod
    @once_differentiable  # its in-place backward is not itself differentiable: a second order says so plainly
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        logits, x = ctx.saved_tensors
        grad_logits = torch.sigmoid(logits).sub_(x).mul_(grad) if ctx.needs_input_grad[0] else None
        grad_x = -logits * grad if ctx.needs_input_grad[1] else None
        return grad_logits, grad_x


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """−log Bernoulli(x; sigmoid(logits)) per pixel (x may be grey, in [0, 1]).

    Only the CPU takes the hand-written form: on a GPU, where a small model's step is bound
    by kernel launches, PyTorch's own loss launches fewer kernels.
    """
    if logits.device.type != "cpu":
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return _BernoulliNLL.apply(logits, x)


def log_likelihood_offset(likelihood: str, n_pixels: int) -> float:
    """What turns the training term into a normalized −log p(x|z), in nats.

    MSE-sum is the Gaussian likelihood with variance ½ minus its constant:
    −log N(x; m, ½) = (x − m)² + ½ log π per pixel. The other terms are already exact.
    """
    return 0.5 * n_pixels * math.log(math.pi) if likelihood == "mse" else 0.0


def kl_weight(beta: float, warmup_epochs: float, progress_epochs: float) -> float:
    """β scaled by a linear warm-up: 0 at the start, β after `warmup_epochs` epochs."""
    if warmup_epochs <= 0:
        return beta
    return beta * min(1.0, progress_epochs / warmup_epochs)


REDUCTIONS = ("sum", "mean")


def term_balance(reconstruction: float, kl: float, beta: float, reduction: str, n_pixels: int) -> dict[str, float]:
    """How one image's loss splits between its two terms under a reduction choice.

    `sum` (ours, and the ELBO's): reconstruction summed over pixels + β·KL. `mean`, as
    `F.mse_loss`/`F.binary_cross_entropy` do by default: the reconstruction is averaged
    over the n pixels while the KL stays summed over latent dims, so next to the
    reconstruction the KL counts n times more: the same as training with sum and β·n.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, not {reduction!r}")
    recon = reconstruction / n_pixels if reduction == "mean" else reconstruction
    weighted_kl = beta * kl
    total = recon + weighted_kl
    return {"reconstruction_term": recon, "kl_term": weighted_kl, "loss": total,
            "kl_share": weighted_kl / total if total else 0.0,
            "effective_beta": beta * n_pixels if reduction == "mean" else beta}


def importance_sampled_nll(
    log_likelihood: Callable[[torch.Tensor], torch.Tensor],
    proposal: tuple[torch.Tensor, torch.Tensor],
    prior: tuple[torch.Tensor, torch.Tensor] | None,
    samples: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """−log p(x) per item, estimated with S draws from a Gaussian proposal r (Burda et al. 2015).

    p(x) = E_{z~r}[p(x|z) p(z) / r(z)]; the log of the S-sample average is a lower bound
    on log p(x) that tightens as S grows (S = 1 is the ELBO when r is the posterior).
    `log_likelihood` maps the (S·B, latent) draws to log p(x|z), S·B values; `prior`
    (μ, log σ) defaults to N(0, I). The IWAE bound of a VAE and the conditional NLL of
    the structured-output CVAE are both this estimate.
    """
    mu_r, log_std_r = proposal
    z = reparameterize(mu_r.expand(samples, *mu_r.shape), log_std_r.expand(samples, *log_std_r.shape), generator)
    prior_mu, prior_log_std = prior if prior is not None else (torch.zeros_like(mu_r), torch.zeros_like(log_std_r))
    log_w = log_normal(z, prior_mu, prior_log_std) - log_normal(z, mu_r, log_std_r)
    log_lik = log_likelihood(z.reshape(-1, mu_r.shape[-1])).view(samples, -1)
    return -(torch.logsumexp(log_lik + log_w, dim=0) - math.log(samples))
