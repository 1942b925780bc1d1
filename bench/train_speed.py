"""Training throughput: pytorch/examples' VAE loop versus vae_core's trainer, same run.

Both train the example's model (784-400-20, Bernoulli, Adam 1e-3, batch 128) for one
epoch of Fashion-MNIST. The example reads through torchvision's dataset and a
DataLoader(ToTensor()); vae_core keeps the data as one tensor on the device.
The two alternate `--repeats` times and medians are compared (this 2-core machine
varies ±15 % from run to run). Prints one JSON line.

    python bench/train_speed.py [--device cpu|cuda] [--data-root /usr/share/datasets/fashion-mnist]
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vae_core.config import ModelConfig, TrainConfig
from vae_core.datasets import load_dataset
from vae_core.train import Trainer


class ExampleVAE(nn.Module):
    """pytorch/examples vae/main.py, verbatim in substance."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


def example_loss(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def run_example(root: Path, device: torch.device, seed: int) -> dict:
    from torchvision import datasets, transforms

    torch.manual_seed(seed)
    kwargs = {"num_workers": 1, "pin_memory": True} if device.type == "cuda" else {}
    train = torch.utils.data.DataLoader(
        datasets.FashionMNIST(str(root), train=True, transform=transforms.ToTensor()),
        batch_size=128, shuffle=True, **kwargs)
    test = torch.utils.data.DataLoader(
        datasets.FashionMNIST(str(root), train=False, transform=transforms.ToTensor()),
        batch_size=128, shuffle=False, **kwargs)
    model = ExampleVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    start = time.perf_counter()
    train_loss = 0.0
    for data, _ in train:
        data = data.to(device)
        optimizer.zero_grad()
        recon, mu, logvar = model(data)
        loss = example_loss(recon, data, mu, logvar)
        loss.backward()
        train_loss += loss.item()  # as the example does: one host sync per step is part of its cost
        optimizer.step()
    seconds = time.perf_counter() - start
    model.eval()
    test_loss = 0.0
    with torch.no_grad():
        for data, _ in test:
            data = data.to(device)
            recon, mu, logvar = model(data)
            test_loss += example_loss(recon, data, mu, logvar).item()
    return {"images_per_s": len(train.dataset) / seconds, "test_loss": test_loss / len(test.dataset)}


def run_vae_core(data_root: Path, device: str, seed: int) -> dict:
    data = load_dataset("fashion-mnist", data_root)
    model = ModelConfig(hidden=400, latent=20, likelihood="bernoulli")
    trainer = Trainer(model, TrainConfig(dataset="fashion-mnist", epochs=1, batch_size=128, lr=1e-3, seed=seed,
                                         device=device), dataset=data).start()
    epoch = next(e for e in trainer.events() if e["event"] in ("epoch", "error"))
    trainer.join()
    if epoch["event"] == "error":
        raise SystemExit(epoch["message"])
    return {"images_per_s": epoch["samples_per_s"], "test_loss": epoch["test_loss"]}


def torchvision_root(flat: Path, tmp: Path) -> Path:
    """torchvision's FashionMNIST reads un-gzipped files from <root>/FashionMNIST/raw."""
    raw = tmp / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in flat.glob("*-ubyte.gz"):
        with gzip.open(gz) as src, open(raw / gz.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return tmp


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-root", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    examples, ourses = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = torchvision_root(Path(args.data_root), Path(tmp))
        for _ in range(args.repeats):
            examples.append(run_example(root, device, args.seed))
            ourses.append(run_vae_core(Path(args.data_root), args.device, args.seed))
    example, ours = (
        {key: statistics.median(run[key] for run in runs) for key in ("images_per_s", "test_loss")}
        for runs in (examples, ourses))
    print(json.dumps({
        "device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu x{torch.get_num_threads()}",
        "example_images_per_s": round(example["images_per_s"]),
        "vae_core_images_per_s": round(ours["images_per_s"]),
        "speedup": round(ours["images_per_s"] / example["images_per_s"], 2),
        "example_test_loss": round(example["test_loss"], 2),
        "vae_core_test_loss": round(ours["test_loss"], 2),
        "test_loss_diff_pct": round(100 * (ours["test_loss"] / example["test_loss"] - 1), 2),
        "example_runs": [round(r["images_per_s"]) for r in examples],
        "vae_core_runs": [round(r["images_per_s"]) for r in ourses],
    }))


if __name__ == "__main__":
    main()
