"""Fault injection shared by the tests and bench/faults.py."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import torch

from vae_core.checkpoint import load_checkpoint, save_checkpoint
from vae_core.config import ModelConfig
from vae_core.models import build_model

CONFIG = ModelConfig(hidden=800)  # ~5 MB of tensors: a wide window to be killed in


def _stamped_model(epoch: int):
    model = build_model(CONFIG)
    with torch.no_grad():
        model.encoder.fc1.bias.fill_(epoch)
    return model


def _rewrite_forever(path: str, model, ready) -> None:
    """Child: save the same checkpoint again and again; save i stamps i into the weights too.

    The model comes built from the parent: a forked child's first parallel PyTorch op
    waits ~2 s for OpenMP to recover its threads, and nothing here needs them.
    """
    epoch = 1
    ready.set()
    while True:
        epoch += 1
        with torch.no_grad():
            model.encoder.fc1.bias.fill_(epoch)
        save_checkpoint(path, model, None, {"epochs_trained": epoch})


def kill_during_writes(path: Path, trials: int, seed: int = 0) -> list[int]:
    """SIGKILL a real child process at random moments while it rewrites `path`.

    After every kill the checkpoint must load, and its weights and config.json must come
    from the same save (no torn mix of two writes). Returns the epoch found after each kill.
    """
    model = _stamped_model(1)
    save_checkpoint(path, model, None, {"epochs_trained": 1})
    ctx = multiprocessing.get_context("fork")
    rng = random.Random(seed)
    found = []
    for _ in range(trials):
        ready = ctx.Event()
        child = ctx.Process(target=_rewrite_forever, args=(str(path), model, ready))
        child.start()
        assert ready.wait(30), "the writer did not start"
        time.sleep(rng.uniform(0.01, 0.4))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        ckpt = load_checkpoint(path)
        epoch = ckpt.info["epochs_trained"]
        assert torch.all(ckpt.model.encoder.fc1.bias == epoch), "weights and config.json disagree"
        found.append(epoch)
    return found
