"""Do CVAE samples look like the digit they were asked for? An independent judge says.

Trains a small CNN on real MNIST digits (the training split of the data in use;
the offline subset here), reports its accuracy on held-out real digits, then
classifies `--per-digit` samples of every class from each CVAE checkpoint. The CNN
never sees a generated image while it learns; its weights are kept in
weights/digit_judge.safetensors, so later runs (and the app's Train tab) judge with the
same CNN. Prints one JSON line.

    python bench/digit_classifier.py weights/cvae [more checkpoints…] [--per-digit 100] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from vae_core.checkpoint import load_checkpoint
from vae_core.datasets import load_dataset
from vae_core.recognize import load_judge, make_classifier, recognized

ROOT = Path(__file__).resolve().parents[1]


def shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random translations of up to 2 px: cheap augmentation that makes 4,500 digits go further."""
    dx, dy = torch.randint(-2, 3, (2,), generator=generator).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def train_classifier(x, y, epochs: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = make_classifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x), generator=generator).split(64):
            loss = F.cross_entropy(model(shift(x[idx], generator)), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return (model(x).argmax(1) == y).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--per-digit", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classifier", default=str(ROOT / "weights" / "digit_judge.safetensors"),
                        help="weights of the judge: read if present, else trained and written here")
    args = parser.parse_args()

    data = load_dataset("mnist")
    train_x, train_y = data.tensors("train")
    test_x, test_y = data.tensors("test")
    started = time.perf_counter()
    if Path(args.classifier).is_file():
        judge = load_judge(args.classifier)
    else:
        judge = train_classifier(train_x, train_y, args.epochs, args.seed)
        save_file(judge.state_dict(), args.classifier)
    real_acc = accuracy(judge, test_x, test_y)

    results = {}
    for path in args.checkpoints:
        score = recognized(load_checkpoint(path).model, judge, args.per_digit, args.seed)
        results[path] = {"recognized": round(score["overall"], 4),
                         "per_digit": [round(v, 3) for v in score["per_digit"]]}
    print(json.dumps({
        "dataset_note": data.note,
        "classifier_accuracy_on_held_out_real_digits": round(real_acc, 4),
        "held_out_real_digits": len(test_y),
        "samples_per_digit": args.per_digit,
        "cvae_samples_recognized": results,
        "seconds": round(time.perf_counter() - started, 1),
    }))


if __name__ == "__main__":
    main()
