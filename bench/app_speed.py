"""What the app costs on top of vae_core. Prints one JSON line.

1. Training throughput of the same run (seed VAE, Fashion-MNIST, 3 epochs) started
   through the /train endpoint of `python app.py` (a separate process, as users run
   it) and through the CLI, alternating, `--repeats` times each; medians are compared
   (this 2-core machine varies ±15 % run to run).
2. /sample (64 images) latency over 50 gradio_client calls, beside Gradio's floor:
   an endpoint in the same server (built in this process, so the floor can be added)
   returning a fixed picture of the same size through the same kind of component, so
   queue, transport and PNG encoding are in both.

    python bench/app_speed.py [--calls 50] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gradio as gr
import numpy as np
from gradio_client import Client

import app
from testing import ROOT
from testing.appserver import Server
from ui.session import Studio
from ui.settings import Settings
from ui.tabs.sample import SampleTab


def steady_speed(history: list[dict]) -> float:
    """Mean images/s over the epochs after the first (which pays one-off warm-up)."""
    speeds = [e["samples_per_s"] for e in history]
    return float(np.mean(speeds[1:] if len(speeds) > 1 else speeds))


def percentiles(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1)}


def timed_calls(client: Client, calls: int, **kwargs) -> list[float]:
    client.predict(**kwargs)  # warm-up
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        client.predict(**kwargs)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        studio = Studio.open(Settings(runs_dir=runs))
        demo = app.build(studio)
        fixed = np.asarray(SampleTab(studio).sample(64, 1.0, 0))
        with demo:
            floor_btn = gr.Button(visible=False)
            floor_out = gr.Image(format="png", type="numpy", visible=False)
            floor_btn.click(lambda: fixed, None, floor_out, api_name="floor")
        demo.launch(prevent_thread_lock=True, quiet=True)
        client = Client(demo.local_url, verbose=False)

        sample = timed_calls(client, args.calls, n=64, temperature=1.0, seed=0, api_name="/sample")
        floor = timed_calls(client, args.calls, api_name="/floor")
        demo.close()

        server = Server(runs, Path(tmp) / "app.log")
        client = Client(server.url, verbose=False)
        app_speeds, cli_speeds = [], []
        for _ in range(args.repeats):
            client.predict(kind="vae", dataset="fashion-mnist", epochs=args.epochs, latent=10, batch_size=128,
                           lr=1e-3, api_name="/train")
            newest = max(runs.glob("*/config.json"), key=lambda p: p.stat().st_mtime)
            app_speeds.append(steady_speed(json.loads(newest.read_text())["history"]))
            cli = subprocess.run(
                [sys.executable, "-m", "vae_core", "train", "--dataset", "fashion-mnist", "--epochs",
                 str(args.epochs), "--out", str(Path(tmp) / "cli"), "--json"],
                capture_output=True, text=True, cwd=ROOT, check=True)
            cli_speeds.append(steady_speed([e for e in map(json.loads, cli.stdout.splitlines())
                                            if e["event"] == "epoch"]))
        server.close()

    app_speed, cli_speed = float(np.median(app_speeds)), float(np.median(cli_speeds))
    sample_p, floor_p = percentiles(sample), percentiles(floor)
    print(json.dumps({
        "train_images_per_s_app": round(app_speed), "train_images_per_s_cli": round(cli_speed),
        "app_slower_pct": round(100 * (1 - app_speed / cli_speed), 1),
        "sample64": sample_p, "floor": floor_p,
        "sample_minus_floor_p50_ms": round(sample_p["p50_ms"] - floor_p["p50_ms"], 1),
        "app_runs": [round(v) for v in app_speeds], "cli_runs": [round(v) for v in cli_speeds],
        "calls": args.calls, "epochs": args.epochs,
    }))


if __name__ == "__main__":
    main()
