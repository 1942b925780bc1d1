import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from vae_core.config import ModelConfig
from vae_core.losses import gaussian_kl, kl_weight, reconstruction_loss
from vae_core.models import build_model, count_parameters, make_config


def test_seed_vae_layers_and_parameter_count():
    model = build_model(ModelConfig())
    enc, dec = model.encoder, model.decoder.mlp
    assert (enc.fc1.in_features, enc.fc1.out_features) == (784, 200)
    assert (enc.fc2_mu.in_features, enc.fc2_mu.out_features) == (200, 10)
    assert (enc.fc2_log_std.in_features, enc.fc2_log_std.out_features) == (200, 10)
    assert (dec.fc3.in_features, dec.fc3.out_features) == (10, 200)
    assert (dec.fc4.in_features, dec.fc4.out_features) == (200, 784)
    assert count_parameters(model) == 320_804


def test_seed_cvae_layers_and_parameter_count():
    model = build_model(make_config("cvae"))
    assert model.encoder.fc1.in_features == 794
    assert model.decoder.mlp.fc3.in_features == 20
    assert count_parameters(model) == 324_804


@pytest.mark.parametrize("kind", ["vae", "cvae"])
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_forward_shapes(kind, arch):
    model = build_model(make_config(kind, arch=arch, latent=7))
    x = torch.rand(5, 1, 28, 28)
    labels = torch.arange(5)
    logits, mu, log_std, z = model(x, labels)
    assert logits.shape == x.shape
    assert mu.shape == log_std.shape == z.shape == (5, 7)
    samples = model.sample(4, labels[:4] if kind == "cvae" else None)
    assert samples.shape == (4, 1, 28, 28) and 0 <= samples.min() and samples.max() <= 1


def test_kl_against_torch_distributions_standard_and_general_prior():
    torch.manual_seed(0)
    mu, log_std = torch.randn(6, 4), torch.randn(6, 4) * 0.5
    pm, pls = torch.randn(6, 4), torch.randn(6, 4) * 0.5
    q = Normal(mu, log_std.exp())
    expected_std = kl_divergence(q, Normal(torch.zeros(4), torch.ones(4))).sum(-1)
    expected_gen = kl_divergence(q, Normal(pm, pls.exp())).sum(-1)
    torch.testing.assert_close(gaussian_kl(mu, log_std), expected_std)
    torch.testing.assert_close(gaussian_kl(mu, log_std, pm, pls), expected_gen)
    # and the seed's own formula, −½ Σ(1 + 2 log σ − μ² − σ²)
    seed = -0.5 * (1 + 2 * log_std - mu**2 - torch.exp(2 * log_std)).sum(-1)
    torch.testing.assert_close(gaussian_kl(mu, log_std), seed)


def test_seed_loss_is_mse_sum_plus_kl_at_the_same_z():
    torch.manual_seed(1)
    model = build_model(ModelConfig())
    x = torch.rand(8, 1, 28, 28)
    losses = model.loss_function(x, generator=torch.Generator().manual_seed(3))
    logits, mu, log_std, z = model(x, generator=torch.Generator().manual_seed(3))
    recon = F.mse_loss(torch.sigmoid(logits), x, reduction="sum")
    kl = -0.5 * torch.sum(1 + 2 * log_std - mu.pow(2) - torch.exp(2 * log_std))
    torch.testing.assert_close(losses["loss"], recon + kl)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(z, mu + log_std.exp() * eps)


def test_bernoulli_and_gaussian_terms_match_their_distributions():
    torch.manual_seed(2)
    logits, x = torch.randn(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
    bce = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(reconstruction_loss("bernoulli", logits, x), bce)
    for log_sigma in (torch.full((1, 1, 1), -0.7), torch.randn(1, 4, 4) * 0.3):
        expected = -Normal(torch.sigmoid(logits), log_sigma.exp()).log_prob(x).sum((1, 2, 3))
        torch.testing.assert_close(reconstruction_loss("gaussian", logits, x, log_sigma), expected)


@pytest.mark.parametrize("scale", [1.0, 30.0, 200.0])
def test_fast_bernoulli_term_matches_torchs_bce_in_value_and_gradient(scale):
    """The hand-written Bernoulli NLL (losses.bernoulli_nll) against PyTorch's stable BCE, in
    float64 so that a wrong term shows, at logits far enough out to overflow a naive exp."""
    torch.manual_seed(4)
    logits = (torch.randn(5, 1, 6, 6, dtype=torch.float64) * scale).requires_grad_()
    x = torch.rand(5, 1, 6, 6, dtype=torch.float64).requires_grad_()
    weights = torch.rand(5, dtype=torch.float64)  # a different upstream gradient per image
    ours = reconstruction_loss("bernoulli", logits, x)
    torchs = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(ours, torchs)
    for a, b in zip(torch.autograd.grad((ours * weights).sum(), (logits, x)),
                    torch.autograd.grad((torchs * weights).sum(), (logits, x)), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(RuntimeError, match="differentiate twice|does not require grad"):  # refused, never wrong
        first = torch.autograd.grad(reconstruction_loss("bernoulli", logits, x).sum(), logits, create_graph=True)[0]
        torch.autograd.grad(first.sum(), logits)
    with pytest.raises(ValueError, match="shape"):  # no silent broadcast, as PyTorch's loss
        reconstruction_loss("bernoulli", logits, x[:1])
    assert torch.autograd.gradcheck(lambda lg, t: reconstruction_loss("bernoulli", lg, t),
                                     (logits[:2, :, :2].detach().clone().requires_grad_(),
                                      x[:2, :, :2].detach().clone().requires_grad_()))


def test_gaussian_likelihood_learns_its_variance_parameter():
    model = build_model(ModelConfig(likelihood="gaussian", gaussian_variance="pixel"))
    assert model.log_sigma_x.shape == (1, 28, 28)
    model.loss_function(torch.rand(4, 1, 28, 28))["loss"].backward()
    assert model.log_sigma_x.grad is not None and model.log_sigma_x.grad.abs().sum() > 0


def test_kl_warmup_is_linear_then_flat():
    assert kl_weight(2.0, 4, 0) == 0
    assert kl_weight(2.0, 4, 1) == pytest.approx(0.5)
    assert kl_weight(2.0, 4, 10) == 2.0
    assert kl_weight(0.5, 0, 0) == 0.5


def test_cvae_class_rows_share_style_across_classes():
    model = build_model(make_config("cvae", latent=2)).eval()
    rows = model.class_rows(range(10), 3, torch.Generator().manual_seed(0))
    assert rows.shape == (30, 1, 28, 28)
    # each column is one style: the same code z under every class's label (the generator's first 3 draws)
    styles = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model.decode(styles.repeat(10, 1), torch.arange(10).repeat_interleave(3))
    torch.testing.assert_close(rows, expected)
    assert not torch.equal(rows[0], rows[3])  # and the label matters: same style, another class


@pytest.mark.parametrize("bad", [dict(latent=0), dict(latent=65), dict(kind="gan"), dict(beta=math.nan),
                                 dict(likelihood="poisson"), dict(arch="conv", image_shape=(1, 30, 30))])
def test_bad_model_settings_are_refused_with_a_message(bad):
    with pytest.raises(ValueError, match="must|needs"):
        make_config(**({"kind": "vae"} | bad))
    with pytest.raises(ValueError, match="at least 2 classes"):  # a kind's own rule, in its config class
        make_config("cvae", n_classes=1)


@pytest.mark.parametrize("n, nrow", [(64, 8), (10, 8), (3, 8), (30, 10)])
def test_grid_layout_matches_torchvision_make_grid(n, nrow):
    from torchvision.utils import make_grid

    from vae_core.images import to_grid

    images = torch.rand(n, 1, 28, 28)
    expected = make_grid(images, nrow=nrow, padding=2).mul(255).round().to(torch.uint8)[0].numpy()
    assert (to_grid(images, nrow) == expected).all()


def test_manifold_grid_is_laid_out_at_normal_quantiles():
    from vae_core.explore import manifold_grid

    model = build_model(ModelConfig(latent=2)).eval()
    grid = manifold_grid(model, n=5)
    assert grid.shape == (5 * 30 + 2, 5 * 30 + 2)
    # top-left tile: z₁ at the lowest quantile 1/6, z₂ at the highest 5/6 (≈ ∓0.97, not ∓2)
    q = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor([1 / 6, 5 / 6]))
    expected = (model.decode(q.view(1, 2))[0, 0] * 255).round().to(torch.uint8).numpy()
    assert (grid[2:30, 2:30] == expected).all()
