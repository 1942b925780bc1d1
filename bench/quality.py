"""How good are a checkpoint's pictures, judged by readers that never saw a generated digit? One JSON line.

For a label-conditioned model (CVAE): the share of its samples, at temperature 1, that each
of two independent classifiers reads as the asked-for digit, overall and per digit. The
classifiers are the CNN of `vae_core/recognize.py` (trained by `bench/digit_classifier.py`)
and a 3-nearest-neighbour vote in pixel space over the 4,500 real training digits. For a
VAE: the share of prior samples the CNN reads with confidence ≥ 0.9, and a Fréchet distance
between samples and the real test digits in the CNN's 128-d penultimate features (an FID for MNIST). For both: the test
−ELBO on the held-out digits.

    python bench/quality.py weights/cvae weights/vae [--samples 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from scipy import linalg

from vae_core.checkpoint import load_checkpoint
from vae_core.datasets import load_dataset
from vae_core.evaluate import elbo_metrics
from vae_core.models import LabelConditioned
from vae_core.recognize import load_judge

JUDGE = Path(__file__).resolve().parents[1] / "weights" / "digit_judge.safetensors"


@torch.no_grad()
def knn_labels(train_x: torch.Tensor, train_y: torch.Tensor, x: torch.Tensor, k: int = 3) -> torch.Tensor:
    distances = torch.cdist(x.flatten(1), train_x.flatten(1))
    return train_y[distances.topk(k, largest=False).indices].mode(1).values


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """‖μa − μb‖² + Tr(Σa + Σb − 2(ΣaΣb)^½), the FID formula, on any features."""
    mean = np.sum((a.mean(0) - b.mean(0)) ** 2)
    ridge = 1e-6 * np.eye(a.shape[1])  # ReLU features that are always 0 make a covariance singular
    cov_a, cov_b = np.cov(a, rowvar=False) + ridge, np.cov(b, rowvar=False) + ridge
    root = linalg.sqrtm(cov_a @ cov_b).real
    return float(mean + np.trace(cov_a + cov_b - 2 * root))


@torch.no_grad()
def score(path: str, judge: torch.nn.Module, data, samples: int, seed: int) -> dict:
    model = load_checkpoint(path).model
    train_x, train_y = data.tensors("train")
    test_x, test_y = data.tensors("test")
    generator = torch.Generator().manual_seed(seed)
    result = {"test_neg_elbo": round(elbo_metrics(model, test_x, test_y, torch.Generator().manual_seed(seed))
                                     ["test_loss"], 2)}
    features = judge[:-1]  # everything up to the last linear layer: 128 features
    if isinstance(model, LabelConditioned):
        per = samples // 10
        labels = torch.arange(10).repeat_interleave(per)
        pictures = model.sample(len(labels), labels, generator=generator)
        for name, read in (("cnn", judge(pictures).argmax(1)), ("knn", knn_labels(train_x, train_y, pictures))):
            per_digit = (read == labels).view(10, per).float().mean(1)
            result[f"recognized_{name}"] = round(per_digit.mean().item(), 4)
            result[f"worst_digit_{name}"] = round(per_digit.min().item(), 3)
            result[f"per_digit_{name}"] = [round(v, 3) for v in per_digit.tolist()]
    else:
        pictures = model.sample(samples, generator=generator)
        confidence = judge(pictures).softmax(1).max(1).values
        result["confident_share"] = round((confidence >= 0.9).float().mean().item(), 4)
        result["fid_cnn_features"] = round(frechet(features(pictures).numpy(), features(test_x).numpy()), 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = load_dataset("mnist")
    judge = load_judge(JUDGE)
    test_x, test_y = data.tensors("test")
    train_x, train_y = data.tensors("train")
    with torch.no_grad():
        readers = {"cnn": (judge(test_x).argmax(1) == test_y).float().mean().item(),
                   "knn": (knn_labels(train_x, train_y, test_x) == test_y).float().mean().item()}
    print(json.dumps({"dataset_note": data.note, "readers_accuracy_on_real_test_digits":
                      {k: round(v, 4) for k, v in readers.items()}, "samples": args.samples,
                      "checkpoints": {path: score(path, judge, data, args.samples, args.seed)
                                      for path in args.checkpoints}}))


if __name__ == "__main__":
    main()
