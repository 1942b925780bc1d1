"""The VAE and the label-conditioned CVAE.

The seed VAE is `fc1` 784→200 → heads `fc2_mu`, `fc2_log_std` 200→10 → z → `fc3`
10→200 → `fc4` 200→784 → sigmoid. The CVAE is the same model with a one-hot label
concatenated to the encoder input and to z. The convolutional variant wraps the same
heads around a conv trunk (`nets`), so both architectures share every line here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..kinds import KindSpec, register
from ..losses import gaussian_kl, importance_sampled_nll, log_likelihood_offset, reconstruction_loss
from ..nets import build_decoder, build_encoder, reparameterize
from .base import in_chunks

ENCODE_CHUNK = 2000  # rows per forward pass when encoding a whole test set
IWAE_ROWS = 20_000  # decoder rows per forward pass of the importance-sampled bound (images × samples)


@dataclass
class CVAEConfig(ModelConfig):
    """The VAE's settings, for a model that needs labelled data."""

    MIN_CLASSES: ClassVar[int] = 2
    kind: str = "cvae"


class VAE(nn.Module):
    """Encoder → (μ, log σ) → z = μ + σ·ε → sigmoid decoder; loss = reconstruction + β·KL(q ‖ N(0, I))."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = self.condition_size(config)
        self.encoder = build_encoder(config.arch, config.image_shape, c, config.hidden, config.latent)
        self.decoder = build_decoder(config.arch, config.image_shape, c, config.hidden, config.latent)
        self.log_sigma_x: nn.Parameter | None = None
        if config.likelihood == "gaussian":
            shape = config.image_shape if config.gaussian_variance == "pixel" else (1, 1, 1)
            self.log_sigma_x = nn.Parameter(torch.zeros(shape))

    @staticmethod
    def condition_size(config: ModelConfig) -> int:
        """Width of the condition concatenated to the encoder input and to z: none for the VAE."""
        return 0

    def condition(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        return None

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x, self.condition(labels))

    reparameterize = staticmethod(reparameterize)

    def decode_logits(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(z, self.condition(labels))

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

    def loss_terms(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                   generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One draw z = μ + σ·ε per image, and the reconstruction term the training loss sums (per image)."""
        logits, mu, log_std, z = self(x, labels, generator)
        recon = reconstruction_loss(self.config.likelihood, logits, x, self.log_sigma_x)
        return {"mu": mu, "log_std": log_std, "z": z, "mean": torch.sigmoid(logits), "recon": recon}

    def export_mlp(self) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """The MLP decoder's two layers, or None for the conv decoder."""
        mlp = getattr(self.decoder, "mlp", None)
        return None if mlp is None else [(layer.weight, layer.bias) for layer in (mlp.fc3, mlp.fc4)]

    @torch.no_grad()
    def sample(
        self,
        n: int,
        labels: torch.Tensor | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        z: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Decoded prior draws z ~ N(0, temperature²·I) (or the given codes), as images in [0, 1]."""
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
    def preview(self, x: torch.Tensor, labels: torch.Tensor, generator: torch.Generator,
                per_row: int = 8) -> torch.Tensor:
        """per_row² prior draws (the test images are not needed)."""
        return self.sample(per_row * per_row, generator=generator)

    @torch.no_grad()
    def posterior_means(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """E_q[z] of every image, encoded in chunks."""
        return in_chunks(lambda xb, yb: self.encode(xb, yb)[0], x, labels, size=ENCODE_CHUNK)

    @torch.no_grad()
    def iwae_nll(self, x: torch.Tensor, labels: torch.Tensor, k: int = 100,
                 generator: torch.Generator | None = None) -> float:
        """−log p(x) by the k-sample importance-weighted bound with q(z|x) as proposal, nats per image.

        For `mse` the decoder is read as the Gaussian of variance ½ whose NLL MSE-sum is, up
        to its constant, so the number is a proper likelihood.
        """
        offset = log_likelihood_offset(self.config.likelihood, self.config.n_pixels)

        def chunk_nll(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
            reps = xb.expand(k, *xb.shape).reshape(-1, *xb.shape[1:])

            def log_lik(z: torch.Tensor) -> torch.Tensor:
                logits = self.decode_logits(z, yb.repeat(k))
                return -(reconstruction_loss(self.config.likelihood, logits, reps, self.log_sigma_x) + offset)

            return importance_sampled_nll(log_lik, self.encode(xb, yb), None, k, generator)

        self.eval()
        return in_chunks(chunk_nll, x, labels, size=max(1, IWAE_ROWS // k)).mean().item()

    @torch.no_grad()
    def active_units(self, x: torch.Tensor, labels: torch.Tensor, threshold: float = 0.01) -> int:
        """Latent dims whose posterior mean moves with the input: Cov_x(E_q[z]) > threshold (Burda et al.)."""
        self.eval()
        return int((self.posterior_means(x, labels).var(dim=0) > threshold).sum().item())

    def test_metrics(self, x: torch.Tensor, labels: torch.Tensor, samples: int,
                     generator: torch.Generator) -> dict:
        return {"iwae_nll": self.iwae_nll(x, labels, samples, generator), "iwae_k": samples,
                "active_units": self.active_units(x, labels)}



class CVAE(VAE):
    """The VAE with a one-hot class label concatenated to the encoder input and to z."""

    @staticmethod
    def condition_size(config: ModelConfig) -> int:
        return config.n_classes

    def condition(self, labels: torch.Tensor | None) -> torch.Tensor:
        if labels is None:
            raise ValueError("a CVAE needs a label for every image")
        return F.one_hot(labels.long(), self.config.n_classes).to(next(self.parameters()).dtype)

    @torch.no_grad()
    def preview(self, x: torch.Tensor, labels: torch.Tensor, generator: torch.Generator,
                per_row: int = 8) -> torch.Tensor:
        """One row per class."""
        return self.class_rows(range(self.config.n_classes), per_row, generator)

    @torch.no_grad()
    def class_rows(self, classes: Iterable[int], per_row: int, generator: torch.Generator,
                   temperature: float = 1.0) -> torch.Tensor:
        """One row per class, the same `per_row` latent draws in every row, so a column shares its style."""
        device = next(self.parameters()).device
        classes = list(classes)
        z = torch.randn(per_row, self.config.latent, generator=generator, device=device) * temperature
        labels = torch.tensor(classes, device=device).repeat_interleave(per_row)
        return self.sample(len(labels), labels, z=z.repeat(len(classes), 1))


register(KindSpec(
    "vae", VAE, ModelConfig, title="VAE", description="variational autoencoder",
    help="a VAE: encoder, z ~ q(z|x), decoder, prior N(0, I)", app_trains=True,
    pretrained=("vae-sharp", "vae", "vae2d"), companions={"vae2d": "vae2d"}, order=0,
))
register(KindSpec(
    "cvae", CVAE, CVAEConfig, title="CVAE", description="label-conditioned variational autoencoder",
    help="a VAE conditioned on the class label (draws a chosen digit)", app_trains=True,
    pretrained=("cvae-sharp", "cvae"), order=1,
))
