"""The interface every model keeps, as `typing.Protocol`s, so no caller asks which model it holds.

`Model` is what the trainer, the evaluator, the CLI and the app need of any model.
Capabilities that only some models have are protocols of their own that extend it, checked
with `isinstance` (they are runtime-checkable; `KindSpec.can` asks a kind's class the same):
a caller asks "can it sample from a prior?", never "is it a VAE?". A new model implements
`Model` plus whichever capabilities it has; its module registers its kind (`vae_core.kinds`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, runtime_checkable

import torch

from ..config import ModelConfig


@runtime_checkable
class Model(Protocol):
    """What every model offers: the `nn.Module` methods callers use, and the model's own."""

    config: ModelConfig
    training: bool

    def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]: ...

    def buffers(self, recurse: bool = True) -> Iterator[torch.Tensor]: ...

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...

    def to(self, *args: Any, **kwargs: Any) -> Any: ...

    def loss_function(self, x: torch.Tensor, labels: torch.Tensor | None = None, kl_weight: float | None = None,
                      generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Batch sums of the training objective (`loss`) and its two parts (`recon`, `kl`)."""
        ...

    def preview(self, x: torch.Tensor, labels: torch.Tensor, generator: torch.Generator,
                per_row: int = 8) -> torch.Tensor:
        """The picture of what the model does now (a batch of images in [0, 1]), from a few test images."""
        ...

    def generate(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The model's deterministic answer to each input: a reconstruction, or a completion."""
        ...

    def test_metrics(self, x: torch.Tensor, labels: torch.Tensor, samples: int,
                     generator: torch.Generator) -> dict:
        """The model's own likelihood figures on a test set, with `samples` importance samples."""
        ...


@runtime_checkable
class PriorSampler(Model, Protocol):
    """A latent-variable model with the prior N(0, I): sampling, traversals, interpolation, maps."""

    def loss_terms(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                   generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One draw through the model, per image: `mu`, `log_std`, `z`, the decoded `mean` and the `recon` term
        that the training loss sums, so that a view of the loss shows what the optimizer sees."""
        ...

    def export_mlp(self) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """The decoder's layers (weight, bias), first to last, for a decoder that is a ReLU MLP with a sigmoid
        output (so the page can run it); None for any other decoder."""
        ...

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]: ...

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor: ...

    def sample(self, n: int, labels: torch.Tensor | None = None, temperature: float = 1.0,
               generator: torch.Generator | None = None, z: torch.Tensor | None = None) -> torch.Tensor: ...

    def posterior_means(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class LabelConditioned(PriorSampler, Protocol):
    """Takes a class label beside every input and every code."""

    def class_rows(self, classes: Iterable[int], per_row: int, generator: torch.Generator,
                   temperature: float = 1.0) -> torch.Tensor: ...


@runtime_checkable
class Completer(Model, Protocol):
    """Completes the hidden part of an input from its given part."""

    def complete(self, x: torch.Tensor, mask: torch.Tensor, n: int, generator: torch.Generator | None = None,
                 mean: bool = False) -> torch.Tensor: ...

    def layout_mask(self, given: Iterable[str], device: torch.device | None = None) -> torch.Tensor: ...

    def completion_metrics(self, x: torch.Tensor, samples: int, generator: torch.Generator,
                           layout: tuple[str, ...]) -> dict: ...


@runtime_checkable
class WarmStartable(Model, Protocol):
    """Starts from part of another trained model (`--init-from`)."""

    def warm_start(self, other: Model) -> None:
        """Copy what it can use of `other`, or refuse with a ValueError naming why."""
        ...


def in_chunks(fn: Callable[..., torch.Tensor], *tensors: torch.Tensor, size: int) -> torch.Tensor:
    """`fn` over slices of `size` rows of every tensor, results concatenated: bounded memory on any test set."""
    return torch.cat([fn(*(t[i : i + size] for t in tensors)) for i in range(0, len(tensors[0]), size)])


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
