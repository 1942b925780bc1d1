"""Training throughput: pytorch/examples' VAE loop versus vae_core's trainer, same run.

Both train the example's model (784-400-20, Bernoulli, Adam 1e-3, batch 128) for one
epoch of Fashion-MNIST. The example reads through torchvision's dataset and a
DataLoader(ToTensor()), in its process's main thread as its script does; vae_core keeps
the data as one tensor on the device and trains in its trainer thread, as the CLI does.
Each contender runs in a fresh process of its own: a process that has already run the
other (or anything with torch) would be slowed by the OpenMP thread team that work
leaves behind. The two alternate `--repeats` times and medians are compared (this
2-core machine varies ±15 % from run to run). The machine's own matmul throughput, at
the model's largest layer, is measured the same way, so that the images/s can be read
as a fraction of what the hardware can do; so is the time of the step's matrix products
alone, a ceiling for any loop that trains this model here. Prints one JSON line.

    python bench/train_speed.py [--device cpu|cuda] [--compile] [--data-root /usr/share/datasets/fashion-mnist]
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vae_core.config import ModelConfig, TrainConfig
from vae_core.datasets import load_dataset
from vae_core.train import Trainer, in_passing_thread

# The example's layers (in, out): fc1, fc21, fc22, fc3, fc4.
LAYERS = [(784, 400), (400, 20), (400, 20), (20, 400), (400, 784)]
# Multiply-adds per image: forward in·out per layer; backward twice that (input and weight
# gradients), except the first layer, whose input (the data) needs no gradient.
MACS_PER_IMAGE = sum(3 * i * o for i, o in LAYERS) - LAYERS[0][0] * LAYERS[0][1]


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


def run_vae_core(data_root: Path, device: str, seed: int, compile: bool = False, graphs: bool = False) -> dict:
    data = in_passing_thread(load_dataset, "fashion-mnist", data_root)  # as the CLI does
    model = ModelConfig(hidden=400, latent=20, likelihood="bernoulli")
    epochs = 2 if compile else 1  # compiled: the first epoch pays the compilation, the second is timed
    trainer = Trainer(model, TrainConfig(dataset="fashion-mnist", epochs=epochs, batch_size=128, lr=1e-3, seed=seed,
                                         device=device, compile=compile, cuda_graphs=graphs), dataset=data).start()
    epochs_seen = [e for e in trainer.events() if e["event"] in ("epoch", "error")]
    if epochs_seen[-1]["event"] == "error":
        raise SystemExit(epochs_seen[-1]["message"])
    return {"images_per_s": epochs_seen[-1]["samples_per_s"], "test_loss": epochs_seen[0]["test_loss"]}


def matmul_gflops(device: torch.device) -> float:
    """The best of five timings of the largest layer's forward matmul at batch 128, in a thread like training's."""
    a, w = torch.randn(128, 784, device=device), torch.randn(784, 400, device=device)
    reps = 200 if device.type == "cpu" else 5000

    def best() -> float:
        for _ in range(20):
            a @ w
        times = []
        for _ in range(5):
            _sync(device)
            start = time.perf_counter()
            for _ in range(reps):
                a @ w
            _sync(device)
            times.append(time.perf_counter() - start)
        return 2 * 128 * 784 * 400 * reps / min(times) / 1e9

    return in_passing_thread(best)


def step_gemms_per_s(device: torch.device) -> float:
    """Images/s if a step were nothing but its matrix products: every forward, weight-gradient and
    input-gradient product of the model at batch 128 (bias added as training's `addmm` does), timed
    alone, back to back, in a thread like training's: a ceiling for any loop that trains this model's
    layers as they are (one that fused the μ and log σ heads could shave the small products)."""
    gemms = []
    for i, (fan_in, fan_out) in enumerate(LAYERS):
        x, w, b = torch.randn(128, fan_in, device=device), torch.randn(fan_out, fan_in, device=device), \
            torch.randn(fan_out, device=device)
        grad = torch.randn(128, fan_out, device=device)
        gemms += [lambda x=x, w=w, b=b: torch.addmm(b, x, w.t()), lambda x=x, g=grad: g.t() @ x]
        if i:  # the data needs no gradient
            gemms.append(lambda w=w, g=grad: g @ w)
    reps = 100 if device.type == "cpu" else 2000

    def best() -> float:
        for _ in range(10):
            for gemm in gemms:
                gemm()
        times = []
        for _ in range(5):
            _sync(device)
            start = time.perf_counter()
            for _ in range(reps):
                for gemm in gemms:
                    gemm()
            _sync(device)
            times.append(time.perf_counter() - start)
        return 128 * reps / min(times)

    return in_passing_thread(best)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def contender(args: argparse.Namespace) -> dict:
    """One measurement in this (fresh) process."""
    device = torch.device(args.device)
    if args.contender == "peak":
        return {"gflops": matmul_gflops(device), "gemm_bound": step_gemms_per_s(device)}
    if args.contender == "example":
        with tempfile.TemporaryDirectory() as tmp:
            return run_example(torchvision_root(Path(args.data_root), Path(tmp)), device, args.seed)
    return run_vae_core(Path(args.data_root), args.device, args.seed, compile=args.contender == "compiled",
                        graphs=args.contender == "graphed")


def fresh(args: argparse.Namespace, which: str) -> dict:
    command = [sys.executable, __file__, "--contender", which, "--device", args.device, "--data-root", args.data_root,
               "--seed", str(args.seed)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{which} failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


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
    parser.add_argument("--compile", action="store_true", help="also time vae_core with --compile")
    parser.add_argument("--cuda-graphs", action="store_true", help="also time vae_core with --cuda-graphs")
    parser.add_argument("--contender", choices=("example", "vae_core", "compiled", "graphed", "peak"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.contender:
        print(json.dumps(contender(args)))
        return
    names = ["example", "vae_core", *(["compiled"] if args.compile else []), *(["graphed"] if args.cuda_graphs else [])]
    runs = {name: [] for name in names}
    for _ in range(args.repeats):
        for name in names:
            runs[name].append(fresh(args, name))
    peaks = [fresh(args, "peak") for _ in range(2)]
    peak = max(p["gflops"] for p in peaks)
    gemm_bound = max(p["gemm_bound"] for p in peaks)
    median = {name: {key: statistics.median(r[key] for r in rs) for key in ("images_per_s", "test_loss")}
              for name, rs in runs.items()}
    example, ours = median["example"], median["vae_core"]
    device = torch.device(args.device)
    result = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu x{torch.get_num_threads()}",
        "example_images_per_s": round(example["images_per_s"]),
        "vae_core_images_per_s": round(ours["images_per_s"]),
        "speedup": round(ours["images_per_s"] / example["images_per_s"], 2),
        "example_test_loss": round(example["test_loss"], 2),
        "vae_core_test_loss": round(ours["test_loss"], 2),
        "test_loss_diff_pct": round(100 * (ours["test_loss"] / example["test_loss"] - 1), 2),
        "matmul_peak_gflops": round(peak, 1),
        "vae_core_gflops": round(ours["images_per_s"] * 2 * MACS_PER_IMAGE / 1e9, 1),
        "vae_core_fraction_of_peak": round(ours["images_per_s"] * 2 * MACS_PER_IMAGE / 1e9 / peak, 3),
        "peak_images_per_s": round(peak * 1e9 / (2 * MACS_PER_IMAGE)),
        # the step's own matrix products alone, and how much of that bound the 4x would need
        "gemm_bound_images_per_s": round(gemm_bound),
        "vae_core_fraction_of_gemm_bound": round(ours["images_per_s"] / gemm_bound, 3),
        "four_x_fraction_of_gemm_bound": round(4 * example["images_per_s"] / gemm_bound, 3),
        "example_runs": [round(r["images_per_s"]) for r in runs["example"]],
        "vae_core_runs": [round(r["images_per_s"]) for r in runs["vae_core"]],
    }
    for name in ("compiled", "graphed"):
        if name in median:
            result[f"{name}_images_per_s"] = round(median[name]["images_per_s"])
            result[f"{name}_speedup"] = round(median[name]["images_per_s"] / example["images_per_s"], 2)
            result[f"{name}_test_loss"] = round(median[name]["test_loss"], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
