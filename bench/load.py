"""20 people sampling while someone trains: latency, errors, and what the load costs training.

Starts `python app.py` on a free port (loopback only), measures the training
throughput of a Fashion-MNIST run alone, then starts a long run and lets `--users`
gradio_client users call /sample and /conditional (64 images each) back to back for
`--seconds`, checking every answer is a valid grid. Once the server is up, this process
lowers its own priority to the lowest (nice 19): its users stand in for people on other
machines, not for a third program competing for these cores. Prints one JSON line.

    python bench/load.py [--users 20] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from gradio_client import Client
from PIL import Image

from testing.appserver import Server

TRAIN = dict(kind="vae", dataset="fashion-mnist", latent=10, batch_size=128, lr=1e-3, api_name="/train")
GRID_64 = (242, 242)


def run_speeds(runs: Path) -> list[float]:
    newest = max(runs.glob("*/config.json"), key=lambda p: p.stat().st_mtime)
    return [e["samples_per_s"] for e in json.loads(newest.read_text())["history"]]


def user(url: str, deadline: float, seed: int, latencies: dict, errors: list) -> None:
    client = Client(url, verbose=False)
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        endpoint = rng.choice(["/sample", "/conditional"])
        kwargs = {"n": 64, "seed": rng.randrange(10**6)}
        if endpoint == "/conditional":
            kwargs["digit"] = rng.randrange(10)
        start = time.perf_counter()
        try:
            path = client.predict(**kwargs, api_name=endpoint)
            with Image.open(path) as im:
                if im.format != "PNG" or im.size != GRID_64:
                    raise ValueError(f"unexpected answer {im.format} {im.size}")
            latencies[endpoint].append(time.perf_counter() - start)
        except Exception as exc:  # noqa: BLE001 - every failure is a finding to report
            errors.append(f"{endpoint}: {exc}"[:200])


def summary(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1000
    if not len(ms):
        return {"calls": 0}
    return {"calls": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        server = Server(runs, Path(tmp) / "app.log")
        try:
            client = Client(server.url, verbose=False)
            client.predict(epochs=3, **TRAIN)
            alone = run_speeds(runs)[1:]

            os.nice(19)  # from here on this process is the remote users; the server keeps its priority
            loaded_run = client.submit(epochs=200, **TRAIN)
            while not loaded_run.outputs():
                time.sleep(0.1)
            latencies: dict = {"/sample": [], "/conditional": []}
            errors: list = []
            deadline = time.monotonic() + args.seconds
            users = [threading.Thread(target=user, args=(server.url, deadline, i, latencies, errors))
                     for i in range(args.users)]
            for thread in users:
                thread.start()
            for thread in users:
                thread.join()
            client.predict(api_name="/stop")
            loaded_run.result(timeout=30)
            under_load = run_speeds(runs)
        finally:
            server.close()
    print(json.dumps({
        "users": args.users, "seconds": args.seconds,
        "sample": summary(latencies["/sample"]), "conditional": summary(latencies["/conditional"]),
        "errors": len(errors), "first_errors": errors[:3],
        "train_images_per_s_alone": round(float(np.median(alone))),
        "train_images_per_s_under_load": round(float(np.median(under_load))) if under_load else None,
        "epochs_under_load": len(under_load),
        "app_ready_s": round(server.ready_s, 1),
    }))


if __name__ == "__main__":
    main()
