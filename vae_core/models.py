"""The VAE and the label-conditioned CVAE.

The seed VAE is `fc1` 784→200 → heads `fc2_mu`, `fc2_log_std` 200→10 → z → `fc3`
10→200 → `fc4` 200→784 → sigmoid. The CVAE is the same model with a one-hot label
concatenated to the encoder input and to z, so one class serves both: `cond_dim` is
0 or the number of classes. The convolutional variant wraps the same heads around a
conv trunk, so both architectures share every line of the probabilistic part.

Every model offers the same small interface — `encode`, `reparameterize`, `decode`,
`loss_function`, `sample`, `generate`, `preview` — so the trainer, the evaluator and
the app never ask which model they hold.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from .losses import LIKELIHOODS, gaussian_kl, reconstruction_loss

KINDS = ("vae", "cvae", "scvae")
OBJECTIVES = ("cvae", "gsnn", "hybrid", "baseline")
GIVEN = ("1", "2", "3", "any")
ARCHS = ("mlp", "conv")
MAX_LATENT = 64


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model: a checkpoint's config.json holds exactly this."""

    kind: str = "vae"
    arch: str = "mlp"
    image_shape: tuple[int, int, int] = (1, 28, 28)
    hidden: int = 200
    latent: int = 10
    n_classes: int = 10
    likelihood: str = "mse"
    gaussian_variance: str = "global"
    beta: float = 1.0
    # the structured-output CVAE only (kind "scvae"): see structured.py
    given_quadrants: str = "any"
    objective: str = "cvae"
    alpha: float = 0.5

    def __post_init__(self) -> None:
        self.image_shape = tuple(int(v) for v in self.image_shape)
        self.given_quadrants = str(self.given_quadrants)
        problems = []
        if self.kind not in KINDS:
            problems.append(f"model must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.arch not in ARCHS:
            problems.append(f"arch must be one of {', '.join(ARCHS)}, not {self.arch!r}")
        if self.likelihood not in LIKELIHOODS:
            problems.append(f"likelihood must be one of {', '.join(LIKELIHOODS)}, not {self.likelihood!r}")
        if self.gaussian_variance not in ("global", "pixel"):
            problems.append("gaussian variance must be 'global' or 'pixel'")
        if not 1 <= int(self.latent) <= MAX_LATENT:
            problems.append(f"latent size must be between 1 and {MAX_LATENT}, not {self.latent}")
        if not 1 <= int(self.hidden) <= 8192:
            problems.append(f"hidden width must be between 1 and 8192, not {self.hidden}")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            problems.append(f"beta must be a finite number ≥ 0, not {self.beta}")
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            problems.append(f"image shape must be (channels, height, width), not {self.image_shape}")
        elif self.arch == "conv" and (self.image_shape[1] % 4 or self.image_shape[2] % 4):
            problems.append("the conv architecture needs image height and width divisible by 4")
        if self.kind == "cvae" and self.n_classes < 2:
            problems.append("a CVAE needs labelled data with at least 2 classes")
        if self.kind == "scvae":
            if self.likelihood != "bernoulli":
                problems.append("the structured-output CVAE predicts binarized pixels: use the bernoulli likelihood")
            if self.objective not in OBJECTIVES:
                problems.append(f"objective must be one of {', '.join(OBJECTIVES)}, not {self.objective!r}")
            if self.given_quadrants not in GIVEN:
                problems.append(f"given quadrants must be one of {', '.join(GIVEN)}, not {self.given_quadrants!r}")
            if not 0 <= self.alpha <= 1:
                problems.append(f"alpha must be between 0 and 1, not {self.alpha}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def cond_dim(self) -> int:
        return self.n_classes if self.kind == "cvae" else 0

    @property
    def n_pixels(self) -> int:
        return math.prod(self.image_shape)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model settings: {', '.join(sorted(unknown))}")
        return cls(**data)


class MLPEncoder(nn.Module):
    """x (+ one-hot label) → hidden → (μ, log σ). The head predicts log σ, not log σ²."""

    def __init__(self, in_dim: int, cond_dim: int, hidden: int, latent: int):
        super().__init__()
        self.fc1 = nn.Linear(in_dim + cond_dim, hidden)
        self.fc2_mu = nn.Linear(hidden, latent)
        self.fc2_log_std = nn.Linear(hidden, latent)

    def forward(self, features: torch.Tensor, cond: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.fc1(_concat(features.flatten(1), cond)))
        return self.fc2_mu(h), self.fc2_log_std(h)


class MLPDecoder(nn.Module):
    """z (+ one-hot label) → hidden → out_dim pre-activations."""

    def __init__(self, latent: int, cond_dim: int, hidden: int, out_dim: int):
        super().__init__()
        self.fc3 = nn.Linear(latent + cond_dim, hidden)
        self.fc4 = nn.Linear(hidden, out_dim)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return self.fc4(F.relu(self.fc3(_concat(z, cond))))


class ConvEncoder(nn.Module):
    """Two stride-2 convolutions (H×W → H/4×W/4), then the MLP encoder's heads."""

    def __init__(self, image_shape: tuple[int, int, int], cond_dim: int, hidden: int, latent: int):
        super().__init__()
        c, h, w = image_shape
        self.trunk = nn.Sequential(
            nn.Conv2d(c, 32, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2, padding=1), nn.ReLU(),
        )
        self.head = MLPEncoder(64 * (h // 4) * (w // 4), cond_dim, hidden, latent)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.trunk(x), cond)


class ConvDecoder(nn.Module):
    """The MLP decoder to a 64×H/4×W/4 feature map, then two stride-2 transposed convolutions."""

    def __init__(self, image_shape: tuple[int, int, int], cond_dim: int, hidden: int, latent: int):
        super().__init__()
        c, h, w = image_shape
        self.feature_shape = (64, h // 4, w // 4)
        self.head = MLPDecoder(latent, cond_dim, hidden, math.prod(self.feature_shape))
        self.trunk = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, c, 4, stride=2, padding=1),
        )

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        features = F.relu(self.head(z, cond)).view(-1, *self.feature_shape)
        return self.trunk(features)


def _concat(x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    return x if cond is None else torch.cat([x, cond], dim=1)


def build_networks(
    arch: str, image_shape: tuple[int, int, int], enc_cond: int, dec_cond: int, hidden: int, latent: int
) -> tuple[nn.Module, nn.Module]:
    """Encoder and decoder for an architecture; the decoder returns logits shaped like the image."""
    return (build_encoder(arch, image_shape, enc_cond, hidden, latent),
            build_decoder(arch, image_shape, dec_cond, hidden, latent))


def build_encoder(arch: str, in_shape: tuple[int, int, int], cond_dim: int, hidden: int, latent: int) -> nn.Module:
    """(features of in_shape, cond) → (μ, log σ)."""
    if arch == "conv":
        return ConvEncoder(in_shape, cond_dim, hidden, latent)
    return MLPEncoder(math.prod(in_shape), cond_dim, hidden, latent)


def build_decoder(arch: str, out_shape: tuple[int, int, int], cond_dim: int, hidden: int, latent: int) -> nn.Module:
    """(z, cond) → logits shaped out_shape."""
    if arch == "conv":
        return ConvDecoder(out_shape, cond_dim, hidden, latent)
    return _Unflatten(MLPDecoder(latent, cond_dim, hidden, math.prod(out_shape)), out_shape)


class _Unflatten(nn.Module):
    """Gives the MLP decoder image-shaped output while keeping its seed parameter names."""

    def __init__(self, mlp: MLPDecoder, image_shape: tuple[int, int, int]):
        super().__init__()
        self.mlp = mlp
        self.image_shape = image_shape

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return self.mlp(z, cond).view(-1, *self.image_shape)


def reparameterize(mu: torch.Tensor, log_std: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """z = μ + σ·ε with ε ~ N(0, I): the sample stays differentiable in μ and σ."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(log_std) * eps


class VAE(nn.Module):
    """The VAE (kind 'vae') and the label-concat CVAE (kind 'cvae')."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config.cond_dim
        self.encoder, self.decoder = build_networks(config.arch, config.image_shape, c, c, config.hidden, config.latent)
        if config.likelihood == "gaussian":
            shape = config.image_shape if config.gaussian_variance == "pixel" else (1, 1, 1)
            self.log_sigma_x = nn.Parameter(torch.zeros(shape))
        else:
            self.log_sigma_x = None

    @property
    def conditional(self) -> bool:
        return self.config.kind == "cvae"

    def _cond(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        if not self.conditional:
            return None
        if labels is None:
            raise ValueError("a CVAE needs a label for every image")
        return F.one_hot(labels.long(), self.config.n_classes).to(next(self.parameters()).dtype)

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x, self._cond(labels))

    reparameterize = staticmethod(reparameterize)

    def decode_logits(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(z, self._cond(labels))

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(z, labels))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, generator: torch.Generator | None = None):
        mu, log_std = self.encode(x, labels)
        z = self.reparameterize(mu, log_std, generator)
        return self.decode_logits(z, labels), mu, log_std, z

    def loss_function(
        self,
        x: torch.Tensor,
        labels: torch.Tensor | None = None,
        kl_weight: float | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Batch sums of −ELBO (recon + weight·KL), recon and KL; weight defaults to β."""
        logits, mu, log_std, _ = self(x, labels, generator)
        recon = reconstruction_loss(self.config.likelihood, logits, x, self.log_sigma_x).sum()
        kl = gaussian_kl(mu, log_std).sum()
        weight = self.config.beta if kl_weight is None else kl_weight
        return {"loss": recon + weight * kl, "recon": recon, "kl": kl}

    @torch.no_grad()
    def sample(
        self,
        n: int,
        labels: torch.Tensor | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        z: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Decoded prior draws z ~ N(0, temperature²·I), as images in [0, 1]."""
        device = next(self.parameters()).device
        if z is None:
            z = torch.randn(n, self.config.latent, generator=generator, device=device) * temperature
        if labels is not None:
            labels = labels.to(device)
        return self.decode(z.to(device), labels)

    @torch.no_grad()
    def generate(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Reconstruction through the posterior mean (no sampling noise)."""
        mu, _ = self.encode(x, labels)
        return self.decode(mu, labels)

    @torch.no_grad()
    def preview(self, generator: torch.Generator, x: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                per_row: int = 8) -> torch.Tensor:
        """The trainer's per-epoch sample grid: 64 prior draws, or one row per class (test images unused)."""
        if not self.conditional:
            return self.sample(per_row * per_row, generator=generator)
        return self.class_rows(range(self.config.n_classes), per_row, generator)

    @torch.no_grad()
    def class_rows(self, classes, per_row: int, generator: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
        """One row per class, the same `per_row` latent draws in every row, so a column shares its style."""
        device = next(self.parameters()).device
        classes = list(classes)
        z = torch.randn(per_row, self.config.latent, generator=generator, device=device) * temperature
        labels = torch.tensor(classes, device=device).repeat_interleave(per_row)
        return self.sample(len(labels), labels, z=z.repeat(len(classes), 1))


def build_model(config: ModelConfig) -> nn.Module:
    if config.kind == "scvae":
        from .structured import StructuredCVAE  # it builds on this module's networks

        return StructuredCVAE(config)
    return VAE(config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
