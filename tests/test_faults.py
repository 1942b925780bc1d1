"""Faults that must never cost a user their model."""

import multiprocessing
import os
import random
import signal
import time

import torch

from vae_core.checkpoint import load_checkpoint, save_checkpoint
from vae_core.models import ModelConfig, build_model


def _rewrite_forever(path: str, ready) -> None:
    """Child: save the same checkpoint again and again; epoch i is stamped into the weights too."""
    torch.set_num_threads(1)
    model = build_model(ModelConfig(hidden=800))  # ~5 MB of tensors: a wide window to be killed in
    optimizer = torch.optim.Adam(model.parameters())
    ready.set()
    i = 1
    while True:
        i += 1
        with torch.no_grad():
            model.encoder.fc1.bias.fill_(i)
        save_checkpoint(path, model, optimizer, {"epochs_trained": i})


def test_sigkill_mid_write_always_leaves_a_whole_consistent_checkpoint(tmp_path):
    path = tmp_path / "ck"
    model = build_model(ModelConfig(hidden=800))
    with torch.no_grad():
        model.encoder.fc1.bias.fill_(1)
    save_checkpoint(path, model, None, {"epochs_trained": 1})
    ctx = multiprocessing.get_context("fork")
    rng = random.Random(0)
    seen = set()
    for _ in range(25):
        ready = ctx.Event()
        child = ctx.Process(target=_rewrite_forever, args=(str(path), ready))
        child.start()
        assert ready.wait(30)
        time.sleep(rng.uniform(0.01, 0.4))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        ckpt = load_checkpoint(path)
        epoch = ckpt.info["epochs_trained"]
        # the tensors and the config.json come from the same save: no torn mix of two writes
        assert torch.all(ckpt.model.encoder.fc1.bias == epoch)
        seen.add(epoch)
    assert len(seen) > 5  # the kills really landed at many different points of the loop
