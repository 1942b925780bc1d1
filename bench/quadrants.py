"""Sohn et al.'s quadrant-completion table on our data: baseline vs CVAE vs GSNN vs hybrid.

For 1, 2 and 3 given quadrants, trains the four objectives on the same data for the same
epochs (same seed, same networks), then reports on the test set:

- `ncll`: −log p(y|x) in nats per image, importance-sampled with S samples (lower is better);
- `diversity`: per-pixel standard deviation over 16 completions of one input, averaged over
  the hidden pixels and 100 test inputs (the deterministic baseline is 0 by construction);
- `blur`: mean binary entropy (bits) of the predicted hidden pixels of one completion —
  how grey, i.e. averaged, an answer is.

Prints a Markdown table on stderr and one JSON line on stdout.

    python bench/quadrants.py [--dataset mnist] [--epochs 20] [--samples 100] [--given 1 2 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from vae_core.config import TrainConfig
from vae_core.datasets import load_dataset
from vae_core.models import make_config
from vae_core.models.structured import CANONICAL
from vae_core.train import Trainer

OBJECTIVES = ("baseline", "cvae", "gsnn", "hybrid")


@torch.no_grad()
def pictures(model, x: torch.Tensor, mask: torch.Tensor, seed: int) -> tuple[float, float]:
    """(diversity, blur) over the hidden pixels, for the first 100 test images."""
    generator = torch.Generator().manual_seed(seed)
    hidden = (1 - mask).bool()[0]
    spread, entropy = [], []
    for i in range(min(100, len(x))):
        completions = model.complete(x[i : i + 1], mask, 16, generator)
        spread.append(completions.std(0)[hidden].mean().item())
        p = completions[0][hidden].clamp(1e-6, 1 - 1e-6)
        entropy.append((-(p * p.log2() + (1 - p) * (1 - p).log2())).mean().item())
    return sum(spread) / len(spread), sum(entropy) / len(entropy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--given", nargs="+", default=["1", "2", "3"], choices=["1", "2", "3"])
    parser.add_argument("--hidden", type=int, default=400)
    parser.add_argument("--latent", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = load_dataset(args.dataset)
    test_x, _ = data.tensors("test")
    rows = []
    for given in args.given:
        for objective in OBJECTIVES:
            started = time.perf_counter()
            config = make_config("scvae", hidden=args.hidden, latent=args.latent, given_quadrants=given,
                                 objective=objective)
            trainer = Trainer(config, TrainConfig(epochs=args.epochs, seed=args.seed, device="cpu"), data).start()
            final = list(trainer.events())[-1]
            if final["event"] != "done":
                raise SystemExit(f"{objective}/{given}: {final['message']}")
            model = trainer.model.eval()
            mask = model.layout_mask(CANONICAL[given])
            ncll = model.completion_metrics(test_x, args.samples, torch.Generator().manual_seed(args.seed),
                                            CANONICAL[given])["ncll"]
            diversity, blur = pictures(model, test_x, mask, args.seed)
            rows.append({"given": int(given), "objective": objective, "ncll": round(ncll, 2),
                         "diversity": round(diversity, 4), "blur_bits": round(blur, 4),
                         "train_s": round(time.perf_counter() - started, 1)})
            print(rows[-1], file=sys.stderr, flush=True)
    print("| given | " + " | ".join(OBJECTIVES) + " |", file=sys.stderr)
    print("|---|" + "---|" * len(OBJECTIVES), file=sys.stderr)
    for given in args.given:
        cells = [next(r for r in rows if r["given"] == int(given) and r["objective"] == o) for o in OBJECTIVES]
        print(f"| {given} | " + " | ".join(f"{c['ncll']:.2f} (div {c['diversity']:.3f}, blur {c['blur_bits']:.2f})"
                                            for c in cells) + " |", file=sys.stderr)
    cvae_family_wins = all(
        min(r["ncll"] for r in rows if r["given"] == int(g) and r["objective"] != "baseline")
        < next(r["ncll"] for r in rows if r["given"] == int(g) and r["objective"] == "baseline")
        for g in args.given)
    print(json.dumps({"bench": "quadrants", "dataset": args.dataset, "dataset_note": data.note,
                      "epochs": args.epochs, "samples": args.samples, "hidden": args.hidden, "latent": args.latent,
                      "rows": rows, "cvae_family_beats_baseline": cvae_family_wins}))


if __name__ == "__main__":
    main()
