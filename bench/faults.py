"""Fault figures: NaN runs, stop latency, SIGKILL during checkpoint writes, a full queue,
bad input through the API (gradio_client and raw HTTP), and a crowd of adopters. Prints one JSON line.

    python bench/faults.py [--kills 100] [--stops 10]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
from gradio_client import Client, handle_file
from PIL import Image

from testing import ROOT
from testing.appserver import Server
from testing.cli import run_cli
from testing.faults import kill_during_writes
from testing.rawapi import call, fn_index, join, upload
from vae_core.checkpoint import load_checkpoint
from vae_core.config import ModelConfig, TrainConfig
from vae_core.datasets import load_offline_subset
from vae_core.train import Trainer


def nan_run(data, tmp: Path) -> dict:
    out = tmp / "nan"
    Trainer(ModelConfig(), TrainConfig(epochs=1, out=str(out)), data).start().join()
    started = time.monotonic()
    trainer = Trainer(ModelConfig(), TrainConfig(epochs=5, lr=100.0, out=str(out), resume=str(out)), data).start()
    final = list(trainer.events())[-1]
    return {"event": final["event"], "seconds_to_stop": round(time.monotonic() - started, 2),
            "message": final["message"], "good_checkpoint_loads": load_checkpoint(out).info["epochs_trained"] == 1}


def stop_latencies(data, trials: int) -> list[float]:
    latencies = []
    for _ in range(trials):
        trainer = Trainer(ModelConfig(), TrainConfig(epochs=50, batch_size=4), data).start()
        q = trainer.subscribe()
        while q.get(timeout=60)["event"] != "step":
            pass
        asked = time.monotonic()
        trainer.stop()
        while q.get(timeout=10)["event"] != "stopped":
            pass
        latencies.append(time.monotonic() - asked)
        trainer.join()
    return latencies


def full_queue(tmp: Path, requests: int = 40) -> dict:
    """A server with room for 2 waiting requests, hit by `requests` at once."""
    import os

    server = Server(tmp / "runs-q", tmp / "q.log", dict(os.environ) | {"VAE_STUDIO_QUEUE_SIZE": "2"})
    answers: list = []
    together = threading.Barrier(requests)

    def call():
        client = Client(server.url, verbose=False)
        together.wait()  # connect first, then all ask at once: the timing is the answer's alone
        started = time.perf_counter()
        try:
            client.predict(n=400, api_name="/sample")
            answers.append(("ok", time.perf_counter() - started))
        except Exception as exc:  # noqa: BLE001
            answers.append((str(exc), time.perf_counter() - started))

    try:
        threads = [threading.Thread(target=call) for _ in range(requests)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.close()
    busy = [s for text, s in answers if "Queue is full" in text]
    return {"requests": requests, "served": sum(text == "ok" for text, _ in answers), "told_busy": len(busy),
            "other_errors": sorted({text[:80] for text, _ in answers if text != "ok" and "Queue is full" not in text}),
            "busy_answer_max_s": round(max(busy), 2) if busy else None}


def bad_inputs(tmp: Path) -> dict:
    """Each bad request and the one sentence it got back; the server must answer the next call."""
    text = tmp / "notes.png"
    text.write_text("not a picture")
    huge = tmp / "huge.png"
    Image.new("L", (6000, 4000)).save(huge)
    cut = tmp / "cut.png"
    Image.new("L", (28, 28), 255).save(cut)
    cut.write_bytes(cut.read_bytes()[:30])
    archive = tmp / "digits.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.txt", "x")
    cases = {
        "n=0": dict(n=0, api_name="/sample"), "n=1000": dict(n=1000, api_name="/sample"),
        "n='lots'": dict(n="lots", api_name="/sample"), "temperature=-1": dict(temperature=-1, api_name="/sample"),
        "digit=12": dict(digit=12, api_name="/conditional"), "steps=80": dict(steps=80, api_name="/traverse"),
        "text file": dict(image=handle_file(text), api_name="/reconstruct"),
        "zip file": dict(image=handle_file(archive), api_name="/reconstruct"),
        "truncated png": dict(image=handle_file(cut), api_name="/reconstruct"),
        "24-megapixel png": dict(image=handle_file(huge), api_name="/reconstruct"),
        "latent=0": dict(kind="vae", dataset="mnist", epochs=1, latent=0, batch_size=8, lr=1e-3, api_name="/train"),
    }
    thin = tmp / "thin.png"
    Image.new("L", (5, 300)).save(thin)
    pixels = tmp / "pixels.zip"
    with zipfile.ZipFile(pixels, "w", zipfile.ZIP_DEFLATED) as z:
        blank = tmp / "blank.png"
        Image.new("L", (3000, 3000), 255).save(blank)
        for i in range(30):
            z.write(blank, f"a/{i}.png")
    cases |= {
        "5x300 picture": dict(image=handle_file(thin), api_name="/reconstruct"),
        "270-megapixel zip (under 1 MB)": dict(kind="vae", dataset="upload", epochs=1, zip_file=handle_file(pixels),
                                               api_name="/train"),
    }
    server = Server(tmp / "runs-b", tmp / "b.log")
    answers = {}
    try:
        client = Client(server.url, verbose=False)
        for name, kwargs in cases.items():
            try:
                client.predict(**kwargs)
                answers[name] = "ACCEPTED"
            except Exception as exc:  # noqa: BLE001
                answers[name] = str(exc)[:120]
            client.predict(n=4, api_name="/sample")  # still serving
        raw = {"raw path to a server picture": [{"path": str(huge)}], "raw path to nothing": [{"path": str(tmp / "x")}],
               "raw relative path": [{"path": "weights/README.md"}],
               "raw marked path to a server picture": [{"path": str(huge), "meta": {"_type": "gradio.FileData"}}],
               "raw picture given as text": ["abc"], "raw picture given as a number": [5]}
        for name, data in raw.items():
            kind, message = call(server.url, "reconstruct", data)
            answers[name] = "ACCEPTED" if kind == "complete" else str(message.get("error"))[:120]
        kind, message = call(server.url, "train", ["nokind", "mnist", 1, 10, 128, 1e-3, "mlp", 200, "mse", 1.0, 0, 0,
                                                   None, 28, 28])
        answers["raw kind='nokind'"] = "ACCEPTED" if kind == "complete" else str(message.get("error"))[:120]
        bomb = tmp / "drawing.png"  # 144 megapixels in 170 kB, sent as a drawing's composite
        Image.new("L", (12000, 12000), 255).save(bomb)
        started = time.monotonic()
        message = join(server.url, fn_index(server.url, "sketch_to_image"),
                       [{"background": None, "layers": [], "composite": {"path": upload(server.url, str(bomb)),
                                                                         "meta": {"_type": "gradio.FileData"}}}])
        answers["144-megapixel drawing"] = (f"{message['output'].get('error')} "
                                           f"({time.monotonic() - started:.2f} s)")[:160]
        tiny = tmp / "tiny.zip"  # 4,000 8×8 pictures, to train at 256×256: 262 megapixels once resized
        with zipfile.ZipFile(tiny, "w") as z:
            Image.new("L", (8, 8), 128).save(tmp / "tiny.png")
            for i in range(4000):
                z.write(tmp / "tiny.png", f"{i % 2}/{i}.png")
        try:
            client.predict(kind="vae", dataset="upload", epochs=1, zip_file=handle_file(tiny), height=256, width=256,
                           api_name="/train")
            answers["4,000 8x8 pictures at 256x256"] = "ACCEPTED"
        except Exception as exc:  # noqa: BLE001
            answers["4,000 8x8 pictures at 256x256"] = str(exc)[:120]
    finally:
        server.close()
    log = (tmp / "b.log").read_text()
    return {"answers": answers, "tracebacks_in_server_log": log.count("Traceback")}


def crowd_of_adopters(tmp: Path, crowd: int = 40) -> dict:
    """A visitor trains; `crowd` new sessions (more than the 32 trainers kept) adopt the run: the visitor keeps it."""
    server = Server(tmp / "runs-c", tmp / "c.log")
    try:
        visitor = Client(server.url, verbose=False)
        visitor.predict(kind="vae", dataset="mnist", epochs=1, latent=3, api_name="/train")
        before = np.asarray(Image.open(visitor.predict(n=16, seed=3, api_name="/sample")))
        for _ in range(crowd):
            Client(server.url, verbose=False).predict(api_name="/adopt_run")
        after = np.asarray(Image.open(visitor.predict(n=16, seed=3, api_name="/sample")))
    finally:
        server.close()
    return {"adopters": crowd, "visitor_keeps_model": bool(np.array_equal(before, after))}


def cli_outputs(tmp: Path) -> dict:
    """The CLI against a user's folder, a user's file, and a checkpoint whose config.json lies about its sizes."""
    folder, notes = tmp / "thesis", tmp / "notes.txt"
    folder.mkdir()
    (folder / "chapter.tex").write_text("months of work")
    notes.write_text("keep me")
    answers = {}
    for name, args in [("--out on a folder of the user's", ["train", "--epochs", "1", "--out", str(folder)]),
                       ("--out on a user's file", ["train", "--epochs", "1", "--out", str(notes)])]:
        done = run_cli(*args)
        answers[name] = {"exit": done.returncode, "said": done.stderr.strip()[-120:]}
    lying = tmp / "lying"
    shutil.copytree(ROOT / "weights" / "vae", lying)
    config = json.loads((lying / "config.json").read_text())
    config["model"].update(hidden=8192, latent=64, image_shape=[1, 256, 256])
    (lying / "config.json").write_text(json.dumps(config))
    done = run_cli("evaluate", str(lying))
    answers["config.json claiming 4 GB of weights"] = {"exit": done.returncode, "said": done.stderr.strip()[-120:]}
    intact = (folder / "chapter.tex").read_text() == "months of work" and notes.read_text() == "keep me"
    return {"answers": answers, "user_files_intact": intact}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--stops", type=int, default=10)
    args = parser.parse_args()
    data = load_offline_subset()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        nan = nan_run(data, tmp)
        stops = stop_latencies(data, args.stops)
        kills = kill_during_writes(tmp / "killed", args.kills)
        queue = full_queue(tmp)
        bad = bad_inputs(tmp)
        crowd = crowd_of_adopters(tmp)
        outputs = cli_outputs(tmp)
    print(json.dumps({
        "nan": nan,
        "stop_latency_ms": {"trials": len(stops), "p50": round(1000 * float(np.median(stops)), 1),
                            "max": round(1000 * max(stops), 1)},
        "sigkill_during_checkpoint_write": {"kills": len(kills), "loaded_consistent": len(kills),
                                            "distinct_saves_hit": len(set(kills))},
        "full_queue": queue,
        "bad_inputs": bad,
        "crowd_of_adopters": crowd,
        "cli_outputs": outputs,
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
