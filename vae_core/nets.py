"""The networks every model is built from: MLP and convolutional encoders and decoders.

An encoder maps (features, condition) to (μ, log σ); a decoder maps (z, condition) to
logits shaped like the image. The seed VAE's parameter names (`fc1`, `fc2_mu`,
`fc2_log_std`, `fc3`, `fc4`) are kept, so its checkpoints load as they are. The
probabilistic parts (likelihoods, KL, sampling) live in `losses` and `models`, so an
architecture is swapped without touching them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


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
