"""The structured-output CVAE (Sohn et al. 2015): networks, masks, KL, NCLL, completions."""

import pytest
import torch

from vae_core.config import ModelConfig, TrainConfig
from vae_core.evaluate import evaluate
from vae_core.losses import gaussian_kl
from vae_core.models import build_model, count_parameters, make_config
from vae_core.models.structured import CANONICAL, QUADRANTS, quadrant_mask, random_masks
from vae_core.train import Trainer


def scvae(**overrides):
    return build_model(make_config("scvae", **({"hidden": 64, "latent": 6} | overrides)))


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_three_networks_and_their_shapes(arch):
    model = scvae(arch=arch)
    x = torch.rand(5, 1, 28, 28)
    mask = quadrant_mask(["top-left"], (1, 28, 28)).expand(5, -1, -1, -1)
    x_in = model.given_input(x, mask)
    assert x_in.shape == (5, 2, 28, 28)
    for mu, log_std in (model.encode(x, mask), model.prior_params(x_in)):
        assert mu.shape == log_std.shape == (5, 6)
    assert model.decode_logits(torch.zeros(5, 6), x_in).shape == (5, 1, 28, 28)
    if arch == "mlp":  # recognition and prior see image + mask (2×784); generation sees z and x (6 + 1568)
        assert model.recognition.fc1.in_features == model.prior.fc1.in_features == 2 * 784
        assert model.generation.mlp.fc3.in_features == 6 + 2 * 784
        assert count_parameters(model) == 2 * (1568 * 64 + 64 + 2 * (64 * 6 + 6)) + (1574 * 64 + 64) + (64 * 784 + 784)


def test_masks():
    assert quadrant_mask(["top-left"], (1, 28, 28))[0, 0, :14, :14].all()
    assert quadrant_mask(["top-left"], (1, 28, 28)).sum() == 14 * 14
    top = quadrant_mask(CANONICAL["2"], (1, 28, 28))[0, 0]
    assert top[:14].all() and not top[14:].any()
    three = quadrant_mask(CANONICAL["3"], (1, 28, 28))[0, 0]
    assert not three[14:, 14:].any() and three.sum() == 3 * 196
    odd = quadrant_mask(["bottom-right"], (1, 28, 20))[0, 0]
    assert odd.sum() == 14 * 10 and odd[14:, 10:].all()
    for bad in ([], QUADRANTS, ["middle"]):
        with pytest.raises(ValueError, match="1 to 3 quadrants"):
            quadrant_mask(bad, (1, 28, 28))
    drawn = random_masks(2000, (1, 28, 28), torch.Generator().manual_seed(0), torch.device("cpu"))
    given = drawn[:, 0, ::14, ::14].reshape(2000, 4).sum(1)  # one pixel per quadrant
    assert set(given.tolist()) == {1.0, 2.0, 3.0}
    assert len({tuple(m) for m in drawn[:, 0, ::14, ::14].reshape(2000, 4).tolist()}) == 14  # every layout occurs


def test_kl_between_two_gaussians_matches_torch():
    gen = torch.Generator().manual_seed(0)
    mu_q, log_q, mu_p, log_p = (torch.randn(7, 5, generator=gen) for _ in range(4))
    q = torch.distributions.Normal(mu_q, log_q.exp())
    p = torch.distributions.Normal(mu_p, log_p.exp())
    expected = torch.distributions.kl_divergence(q, p).sum(-1)
    assert torch.allclose(gaussian_kl(mu_q, log_q, mu_p, log_p), expected, atol=1e-5)


def test_objectives_and_config_checks():
    x = torch.rand(4, 1, 28, 28)
    gen = torch.Generator().manual_seed(0)
    parts = {o: scvae(objective=o, given_quadrants="1").loss_function(x, generator=gen)
             for o in ("baseline", "cvae", "gsnn", "hybrid")}
    assert parts["baseline"]["kl"] == 0 and parts["gsnn"]["kl"] == 0 and parts["cvae"]["kl"] > 0
    for p in parts.values():
        assert torch.isfinite(p["loss"]) and p["loss"] > 0
    with pytest.raises(ValueError, match="bernoulli"):
        make_config("scvae", likelihood="mse")
    with pytest.raises(ValueError, match="objective"):
        make_config("scvae", objective="magic")
    with pytest.raises(ValueError, match="StructuredConfig"):  # a kind's settings are its own config class
        build_model(ModelConfig(kind="scvae"))


def test_ncll_is_finite_and_falls_with_training(subset):
    data = subset
    test_x, _ = data.tensors("test")
    config = make_config("scvae", hidden=128, latent=8, given_quadrants="2")
    untrained = build_model(config)
    before = untrained.completion_metrics(test_x[:200], 20, torch.Generator().manual_seed(0), CANONICAL["2"])["ncll"]
    trainer = Trainer(config, TrainConfig(epochs=2, seed=0, device="cpu"), data).start()
    assert list(trainer.events())[-1]["event"] == "done"
    metrics = evaluate(trainer.model, test_x[:200], torch.zeros(200), samples=20)
    assert torch.isfinite(torch.tensor(metrics["ncll"])) and metrics["ncll"] < 0.6 * before
    assert metrics["given"] == ["top-left", "top-right"] and metrics["samples"] == 20
    # importance sampling with q is a valid estimate: close to (and within a bound of) its S = 1 ELBO average
    one = trainer.model.completion_metrics(test_x[:200], 1, torch.Generator().manual_seed(1), CANONICAL["2"])["ncll"]
    assert metrics["ncll"] <= one + 0.5


def test_completions_differ_by_seed_and_keep_the_given_part(subset):
    model = scvae(given_quadrants="any").eval()
    x = subset.tensors("test")[0][:1]
    mask = model.layout_mask(["top-left", "bottom-left"])
    a = model.complete(x, mask, 4, torch.Generator().manual_seed(0))
    b = model.complete(x, mask, 4, torch.Generator().manual_seed(1))
    given = mask.bool().expand_as(a)
    assert torch.equal(a[given], b[given]) and torch.equal(a[given], (x > 0.5).float().expand_as(a)[given])
    assert not torch.allclose(a[~given], b[~given])
    assert not torch.allclose(a[0][~given[0]], a[1][~given[0]])  # 4 draws, 4 different completions
    baseline = scvae(objective="baseline").eval()
    one, other = baseline.complete(x, mask, 1), baseline.complete(x, mask, 1, torch.Generator().manual_seed(5))
    assert torch.equal(one, other)  # the baseline has a single answer
