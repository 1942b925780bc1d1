"""The structured-output CVAE of Sohn, Lee & Yan (NeurIPS 2015), on quadrant completion.

x is the given part of a digit (some quadrants, the rest masked), y the hidden part.
Three networks, built from the same encoders and decoders as the VAE:

- the recognition network q(z|x, y) sees the whole image (and the mask);
- the prior network p(z|x) sees only the given quadrants (and the mask);
- the generation network p(y|x, z) predicts every pixel from z and x; only the hidden
  pixels count in its loss.

Objectives (`ModelConfig.objective`), per image, with BCE summed over hidden pixels:
    cvae      KL(q(z|x,y) ‖ p(z|x)) + BCE(y | x, z ~ q)              (the paper's eq. 4)
    gsnn      BCE(y | x, z ~ p(z|x)), the prior network trained alone   (eq. 8)
    hybrid    α·cvae + (1 − α)·gsnn                                    (eq. 9)
    baseline  BCE(y | x, z = 0): the generation network made deterministic, the paper's CNN baseline.

Pixels are binarized at ½ (a Bernoulli likelihood is then exact, so the negative
conditional log-likelihood is in true nats). The mask rides along as an input channel,
so one model can serve a fixed layout (`given_quadrants` 1, 2 or 3, as in the paper) or
any layout of 1–3 quadrants ("any", what the app's model is trained on).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from ..config import ModelConfig, option
from ..kinds import KindSpec, register
from ..losses import bernoulli_nll, gaussian_kl, importance_sampled_nll
from ..nets import build_decoder, build_encoder, reparameterize
from .base import in_chunks

QUADRANTS = ("top-left", "top-right", "bottom-left", "bottom-right")
OBJECTIVES = ("cvae", "gsnn", "hybrid", "baseline")
# The training layouts: the paper's fixed 1, 2 or 3 given quadrants, or any 1–3.
TRAINING_LAYOUTS = ("1", "2", "3", "any")
# The paper's settings, in reading order: 1 = top-left, 2 = top half, 3 = all but bottom-right.
CANONICAL = {"1": QUADRANTS[:1], "2": QUADRANTS[:2], "3": QUADRANTS[:3], "any": QUADRANTS[:2]}


@dataclass
class StructuredConfig(ModelConfig):
    """The structured-output CVAE's settings: the model's, plus its layout and objective."""

    kind: str = "scvae"
    likelihood: str = "bernoulli"
    given_quadrants: str = option("any", "1 = top-left, 2 = top half, 3 = all but bottom-right (the paper's), "
                                  "any = random 1-3", choices=TRAINING_LAYOUTS)
    objective: str = option("cvae", "cvae, gsnn (prior network only), hybrid (alpha·cvae + (1-alpha)·gsnn), "
                            "baseline (z = 0: a deterministic network)", choices=OBJECTIVES)
    alpha: float = option(0.5, "the hybrid objective's weight", limit="alpha")

    def __post_init__(self) -> None:
        self.given_quadrants = str(self.given_quadrants)  # config.json may hold the layout 2 as a number
        super().__post_init__()

    def problems(self) -> list[str]:
        problems = super().problems()
        if self.likelihood != "bernoulli":
            problems.append("the structured-output CVAE predicts binarized pixels: use the bernoulli likelihood")
        return problems

    @property
    def role(self) -> str:
        """The baseline is the Complete tab's deterministic comparison, beside the session's completion model."""
        return "baseline" if self.objective == "baseline" else self.kind


def quadrant_index(height: int, width: int) -> torch.Tensor:
    """(height, width) map of which quadrant each pixel is in, 0–3 in QUADRANTS order."""
    rows = (torch.arange(height) >= height // 2).long()
    cols = (torch.arange(width) >= width // 2).long()
    return rows[:, None] * 2 + cols[None, :]


def quadrant_mask(given: Iterable[str], image_shape: tuple[int, int, int]) -> torch.Tensor:
    """(1, C, H, W) float mask, 1 on the given quadrants."""
    given = list(given)
    unknown = [q for q in given if q not in QUADRANTS]
    if unknown or not 1 <= len(set(given)) <= 3:
        raise ValueError(f"give 1 to 3 quadrants out of {', '.join(QUADRANTS)}; got {', '.join(given) or 'none'}")
    c, h, w = image_shape
    bits = sum(1 << QUADRANTS.index(q) for q in set(given))
    mask = (bits >> quadrant_index(h, w)) & 1
    return mask.float().expand(1, c, h, w).clone()


def parse_given(text: str) -> tuple[str, ...]:
    """A layout as users spell it, "top-left+bottom-left" (commas too), checked: 1–3 distinct quadrants."""
    names = tuple(part.strip() for part in str(text).replace(",", "+").split("+") if part.strip())
    if any(name not in QUADRANTS for name in names) or not 1 <= len(set(names)) <= 3:
        raise ValueError(f"given must name 1 to 3 of the quadrants {', '.join(QUADRANTS)} joined by '+', "
                         f"not {str(text)[:60]!r}")
    return names


def random_masks(n: int, image_shape: tuple[int, int, int], generator: torch.Generator | None,
                 device: torch.device) -> torch.Tensor:
    """n masks, each a uniformly drawn layout of 1–3 given quadrants (14 layouts)."""
    c, h, w = image_shape
    codes = torch.randint(1, 15, (n, 1, 1, 1), generator=generator, device=device)
    return ((codes >> quadrant_index(h, w).to(device)) & 1).float().expand(n, c, h, w)


def binarize(x: torch.Tensor) -> torch.Tensor:
    return (x > 0.5).to(x.dtype)


NCLL_ROWS = 20_000  # generation-network rows per forward pass of the importance-sampled NCLL


class StructuredCVAE(nn.Module):
    """Prior, recognition and generation networks: a `Model`, a `Completer` and `WarmStartable`."""

    def __init__(self, config: StructuredConfig):
        super().__init__()
        self.config = config
        c, h, w = config.image_shape
        paired = (2 * c, h, w)  # the image (or its given part) and the mask, as channels
        self.recognition = build_encoder(config.arch, paired, 0, config.hidden, config.latent)
        self.prior = build_encoder(config.arch, paired, 0, config.hidden, config.latent)
        self.generation = build_decoder(config.arch, config.image_shape, 2 * c * h * w, config.hidden, config.latent)
        self.log_sigma_x = None

    # -- the three networks ----------------------------------------------------------------
    def encode(self, y: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The recognition network q(z|x, y): it sees the whole (binarized) image."""
        return self.recognition(torch.cat([y, mask], 1), None)

    def prior_params(self, x_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The prior network p(z|x), from the given part and the mask."""
        return self.prior(x_in, None)

    def decode_logits(self, z: torch.Tensor, x_in: torch.Tensor) -> torch.Tensor:
        """The generation network p(y|x, z): logits for every pixel."""
        return self.generation(z, x_in.flatten(1))

    reparameterize = staticmethod(reparameterize)

    @staticmethod
    def given_input(y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.cat([y * mask, mask], 1)

    def training_masks(self, n: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
        if self.config.given_quadrants == "any":
            return random_masks(n, self.config.image_shape, generator, device)
        return self.layout_mask(CANONICAL[self.config.given_quadrants], device).expand(n, -1, -1, -1)

    def layout_mask(self, given: Iterable[str], device: torch.device | None = None) -> torch.Tensor:
        return quadrant_mask(given, self.config.image_shape).to(device or next(self.parameters()).device)

    # -- objectives --------------------------------------------------------------------------
    def _hidden_bce(self, logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """−log p(y|x, z) per image: Bernoulli over the hidden pixels only."""
        return (bernoulli_nll(logits, y) * (1 - mask)).flatten(1).sum(1)

    def _baseline_bce(self, x_in: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The baseline's −log p(y|x) per image: the generation network at z = 0, its only answer."""
        z = torch.zeros(len(x_in), self.config.latent, device=x_in.device)
        return self._hidden_bce(self.decode_logits(z, x_in), y, mask)

    def loss_function(
        self,
        x: torch.Tensor,
        labels: torch.Tensor | None = None,
        kl_weight: float | None = None,
        generator: torch.Generator | None = None,
        mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Batch sums of the objective (`loss`), its BCE (`recon`) and its KL; labels are not used."""
        cfg = self.config
        y = binarize(x)
        if mask is None:
            mask = self.training_masks(len(x), x.device, generator)
        x_in = self.given_input(y, mask)
        weight = cfg.beta if kl_weight is None else kl_weight
        if cfg.objective == "baseline":
            recon = self._baseline_bce(x_in, y, mask).sum()
            return {"loss": recon, "recon": recon, "kl": torch.zeros_like(recon)}
        mu_p, log_std_p = self.prior_params(x_in)
        parts = {}
        if cfg.objective in ("cvae", "hybrid"):
            mu_q, log_std_q = self.encode(y, mask)
            z = self.reparameterize(mu_q, log_std_q, generator)
            parts["recon"] = self._hidden_bce(self.decode_logits(z, x_in), y, mask).sum()
            parts["kl"] = gaussian_kl(mu_q, log_std_q, mu_p, log_std_p).sum()
        if cfg.objective in ("gsnn", "hybrid"):
            z = self.reparameterize(mu_p, log_std_p, generator)
            parts["gsnn"] = self._hidden_bce(self.decode_logits(z, x_in), y, mask).sum()
        if cfg.objective == "gsnn":
            return {"loss": parts["gsnn"], "recon": parts["gsnn"], "kl": torch.zeros_like(parts["gsnn"])}
        cvae = parts["recon"] + weight * parts["kl"]
        loss = cvae if cfg.objective == "cvae" else cfg.alpha * cvae + (1 - cfg.alpha) * parts["gsnn"]
        return {"loss": loss, "recon": parts["recon"], "kl": parts["kl"]}

    @torch.no_grad()
    def conditional_nll(self, x: torch.Tensor, mask: torch.Tensor, samples: int = 100,
                        generator: torch.Generator | None = None) -> torch.Tensor:
        """−log p(y|x) per image, in nats, by importance sampling with S samples.

        p(y|x) = E_{z~r}[p(y|x,z) p(z|x) / r(z)], r = q(z|x,y) (the paper's choice). A GSNN
        never trains q, so it uses r = p(z|x) itself, an unbiased plain Monte Carlo
        average. The baseline has no z: its Bernoulli means give the likelihood directly.
        """
        y = binarize(x)
        mask = mask.expand(len(x), -1, -1, -1)
        x_in = self.given_input(y, mask)
        if self.config.objective == "baseline":
            return self._baseline_bce(x_in, y, mask)
        prior = self.prior_params(x_in)
        proposal = prior if self.config.objective == "gsnn" else self.encode(y, mask)
        reps = lambda t: t.expand(samples, *t.shape).reshape(-1, *t.shape[1:])  # noqa: E731

        def log_lik(z: torch.Tensor) -> torch.Tensor:
            return -self._hidden_bce(self.decode_logits(z, reps(x_in)), reps(y), reps(mask))

        return importance_sampled_nll(log_lik, proposal, prior, samples, generator)

    def test_metrics(self, x: torch.Tensor, labels: torch.Tensor, samples: int,
                     generator: torch.Generator) -> dict:
        """The completion figures for the canonical layout of its training setting (labels are not used)."""
        return self.completion_metrics(x, samples, generator, CANONICAL[self.config.given_quadrants])

    def completion_metrics(self, x: torch.Tensor, samples: int, generator: torch.Generator,
                           layout: tuple[str, ...]) -> dict:
        """The negative conditional log-likelihood of the hidden quadrants given `layout`, nats per image."""
        self.eval()
        layout = tuple(layout)
        mask = self.layout_mask(layout, x.device)
        ncll = in_chunks(lambda xb: self.conditional_nll(xb, mask, samples, generator), x,
                         size=max(1, NCLL_ROWS // samples)).mean().item()
        return {"ncll": ncll, "samples": samples, "given": list(layout), "objective": self.config.objective}

    def warm_start(self, other: nn.Module) -> None:
        """Start the generation network from a trained baseline's, as Sohn et al. do."""
        if not isinstance(other, StructuredCVAE):
            raise ValueError("--init-from copies a structured-output baseline's generation network into an scvae")
        try:
            self.generation.load_state_dict(other.generation.state_dict())
        except RuntimeError:
            raise ValueError("the --init-from checkpoint has a different architecture, hidden width or latent size") \
                from None

    # -- pictures ----------------------------------------------------------------------------
    @torch.no_grad()
    def complete(self, x: torch.Tensor, mask: torch.Tensor, n: int, generator: torch.Generator | None = None,
                 mean: bool = False) -> torch.Tensor:
        """n completions of one image (1, C, H, W): z ~ p(z|x) (or its mean, or 0 for the baseline).

        The given pixels are the input's own; the hidden ones are p(y|x, z)'s probabilities.
        """
        y = binarize(x)
        x_in = self.given_input(y, mask).expand(n, -1, -1, -1)
        if self.config.objective == "baseline":
            z = torch.zeros(n, self.config.latent, device=x.device)
        else:
            mu_p, log_std_p = self.prior_params(x_in)
            z = mu_p if mean else self.reparameterize(mu_p, log_std_p, generator)
        return y * mask + torch.sigmoid(self.decode_logits(z, x_in)) * (1 - mask)

    @torch.no_grad()
    def generate(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Each image completed through the prior's mean (the baseline: its only answer), canonical layout."""
        mask = self.layout_mask(CANONICAL[self.config.given_quadrants], x.device)
        return torch.cat([self.complete(x[i : i + 1], mask, 1, mean=True) for i in range(len(x))])

    @torch.no_grad()
    def preview(self, x: torch.Tensor, labels: torch.Tensor, generator: torch.Generator,
                per_row: int = 8) -> torch.Tensor:
        """The trainer's per-epoch grid: a row per test image, its given part then completions."""
        mask = self.layout_mask(CANONICAL[self.config.given_quadrants], x.device)
        rows = [torch.cat([binarize(x[i : i + 1]) * mask, self.complete(x[i : i + 1], mask, per_row - 1, generator)])
                for i in range(min(len(x), per_row))]
        return torch.cat(rows)


register(KindSpec(
    "scvae", StructuredCVAE, StructuredConfig, title="Structured CVAE",
    description="structured-output conditional VAE (Sohn et al. 2015)",
    help="the structured-output CVAE of Sohn et al. 2015: completes hidden quadrants of a digit",
    likelihood="bernoulli", pretrained=("scvae",), companions={"baseline": "scvae-baseline"}, order=2,
))
