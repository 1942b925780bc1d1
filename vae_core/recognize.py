"""An independent reader of digits: does a CVAE's sample look like the digit it was asked for?

The judge is a small CNN trained on the 4,500 real training digits only (`bench/digit_classifier.py`
trains it; 99.0 % on the 500 held-out real digits). It never saw a generated digit, so the
share of samples it reads as their label measures the model, not the judge's habits.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from .models import LabelConditioned, Model, PriorSampler

JUDGED_SHAPE = (1, 28, 28)


def make_classifier() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def load_judge(path: str | Path) -> nn.Module:
    """The CNN from its safetensors file, in eval mode (no pickle involved)."""
    judge = make_classifier()
    judge.load_state_dict(load_file(str(path)))
    return judge.eval()


def can_judge(model: Model, dataset: str) -> bool:
    """Only a label-conditioned model of MNIST digits can be read by a digit reader."""
    cfg = model.config
    return isinstance(model, LabelConditioned) and dataset == "mnist" and cfg.n_classes == 10 \
        and tuple(cfg.image_shape) == JUDGED_SHAPE


@torch.no_grad()
def recognized(model: PriorSampler, judge: nn.Module, per_digit: int = 100, seed: int = 0,
               temperature: float = 1.0) -> dict:
    """The share of `per_digit` samples of each digit that the judge reads as that digit, overall and per digit."""
    labels = torch.arange(10).repeat_interleave(per_digit)
    pictures = model.sample(len(labels), labels, temperature=temperature,
                            generator=torch.Generator().manual_seed(seed)).cpu()
    per = (judge(pictures).argmax(1) == labels).view(10, per_digit).float().mean(1)
    return {"overall": per.mean().item(), "per_digit": per.tolist()}


def describe(score: dict) -> str:
    worst = min(range(10), key=lambda d: score["per_digit"][d])
    return f"{100 * score['overall']:.1f} % (weakest: the {worst}, {100 * score['per_digit'][worst]:.0f} %)"
