"""Test-set metrics: the negative ELBO and its parts, then each model's own likelihood figures."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .models import Completer, Model, spec


def stacked(parts: dict[str, torch.Tensor], terms: tuple[str, ...]) -> torch.Tensor:
    """A loss function's `loss` and its `terms`, in that order, as one vector: summed and read as one."""
    return torch.stack([parts["loss"], *(parts[term] for term in terms)])


def unstacked(values: list[float], terms: tuple[str, ...]) -> tuple[float, dict[str, float]]:
    """`stacked`'s vector read back: the loss, and each term by its name."""
    return values[0], dict(zip(terms, values[1:], strict=True))


@torch.no_grad()
def elbo_parts(
    model: Model,
    x: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator | None = None,
    chunk: int = 1000,
    should_stop: Callable[[], bool] = lambda: False,
) -> tuple[float, dict[str, float]] | None:
    """Per-image means of the model's own loss at KL weight 1 (the −ELBO for a VAE), one z draw, and of
    each term its kind reports (`KindSpec.loss_terms`).

    This is pytorch/examples' "Test set loss". Returns None when `should_stop` fires
    between chunks, so a stop is never delayed by a full pass over a large test set.
    """
    terms = spec(model.config.kind).loss_terms
    was_training = model.training
    model.eval()
    totals = torch.zeros(1 + len(terms), device=x.device)
    for start in range(0, len(x), chunk):
        if should_stop():
            model.train(was_training)
            return None
        totals += stacked(model.loss_function(x[start : start + chunk], labels[start : start + chunk], 1.0, generator),
                          terms)
    model.train(was_training)
    return unstacked((totals / len(x)).tolist(), terms)


def elbo_metrics(model: Model, x: torch.Tensor, labels: torch.Tensor,
                 generator: torch.Generator | None = None) -> dict[str, float]:
    """`elbo_parts` as the `evaluate` command and the benchmarks report it: `test_loss`, then each term."""
    parts = elbo_parts(model, x, labels, generator)
    if parts is None:  # only a `should_stop` ends it early, and none is given here
        raise RuntimeError("the test-set evaluation ended early")
    loss, terms = parts
    return {"test_loss": loss, **terms}


def evaluate(model: Model, x: torch.Tensor, labels: torch.Tensor, samples: int = 100, seed: int = 0,
             layout: tuple[str, ...] | None = None) -> dict:
    """The `evaluate` command's numbers: the ELBO's, then the model's own (`Model.test_metrics`).

    A VAE adds the IWAE bound with `samples` = k and its active units; the structured-output
    CVAE its conditional NLL with S = `samples` for the given `layout`.
    """
    generator = torch.Generator(device=x.device).manual_seed(seed)
    elbo = elbo_metrics(model, x, labels, generator)
    if layout is None:
        return {**elbo, **model.test_metrics(x, labels, samples, generator)}
    if not isinstance(model, Completer):
        raise ValueError("given quadrants only apply to a model that completes them (an scvae)")
    return {**elbo, **model.completion_metrics(x, samples, generator, layout)}
