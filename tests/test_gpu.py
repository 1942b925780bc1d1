"""The CUDA path, on a real GPU (skipped without one): `bench/gpu_check.sh` runs these on a lent GPU."""

import json
import os
import subprocess
import sys

import pytest
import torch

from testing import ROOT
from testing.cli import run_cli
from vae_core.checkpoint import load_checkpoint
from vae_core.config import ModelConfig, TrainConfig
from vae_core.models import make_config
from vae_core.train import Trainer

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def train(subset, model: ModelConfig, out=None, **settings) -> list[dict]:
    config = TrainConfig(device="cuda", out=str(out) if out else None, **settings)
    return list(Trainer(model, config, dataset=subset).start().events(timeout=300))


@pytest.mark.parametrize("model", [
    ModelConfig(), make_config("cvae"), ModelConfig(arch="conv", hidden=64),
    make_config("scvae", hidden=128, latent=8),
], ids=["vae", "cvae", "conv", "scvae"])
def test_every_model_trains_on_cuda(subset, model, tmp_path):
    events = train(subset, model, tmp_path / "ck", epochs=2)
    assert events[-1]["event"] == "done", events[-1]
    start = next(e for e in events if e["event"] == "start")
    assert start["device"].startswith("cuda")
    epochs = [e for e in events if e["event"] == "epoch"]
    assert epochs[-1]["test_loss"] < epochs[0]["test_loss"]
    assert load_checkpoint(tmp_path / "ck").model.config == load_checkpoint(tmp_path / "ck").model.config


def test_resume_on_cuda_continues_the_epochs(subset, tmp_path):
    train(subset, ModelConfig(), tmp_path / "ck", epochs=1)
    events = train(subset, ModelConfig(), tmp_path / "ck", epochs=2, resume=str(tmp_path / "ck"))
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [2]
    assert load_checkpoint(tmp_path / "ck").info["epochs_trained"] == 2


def test_a_cuda_out_of_memory_batch_gets_the_plain_message(subset):
    torch.cuda.set_per_process_memory_fraction(0.002)  # 160–290 MB of an 80–140 GB card: less than this run needs
    try:
        events = train(subset, ModelConfig(hidden=8192), epochs=1, batch_size=65_536)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    assert events[-1]["event"] == "error" and events[-1]["kind"] == "oom"
    assert events[-1]["message"].startswith("out of memory with batch size 65536: lower the batch size")


def test_ddp_with_nccl_on_one_process(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "-m", "vae_core",
         "train", "--ddp", "--device", "cuda", "--epochs", "1", "--out", str(tmp_path / "ddp"), "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert events[-1]["event"] == "done"
    assert next(e for e in events if e["event"] == "start")["device"] == "cuda:0"


def test_compiled_training_on_cuda_matches_eager(subset):
    eager = train(subset, ModelConfig(), epochs=1, seed=3)
    compiled = train(subset, ModelConfig(), epochs=1, seed=3, compile=True)
    assert compiled[-1]["event"] == "done", compiled[-1]
    loss = [next(e for e in run if e["event"] == "epoch")["test_loss"] for run in (eager, compiled)]
    assert loss[1] == pytest.approx(loss[0], rel=0.01)


@pytest.mark.parametrize("kind", ["vae", "cvae"])
def test_training_replayed_from_a_cuda_graph_matches_eager(subset, kind):
    model = make_config(kind)
    eager = train(subset, model, epochs=2, seed=5)
    graphed = train(subset, model, epochs=2, seed=5, cuda_graphs=True)
    assert graphed[-1]["event"] == "done", graphed[-1]
    loss = [[e["test_loss"] for e in run if e["event"] == "epoch"] for run in (eager, graphed)]
    assert loss[1] == pytest.approx(loss[0], rel=0.01)  # the same batches and updates, one launch a step


def test_the_apps_endpoints_serve_a_cuda_trained_model(tmp_path):
    pytest.importorskip("gradio")
    from gradio_client import Client

    from testing.appserver import Server

    server = Server(tmp_path / "runs", tmp_path / "app.log", dict(os.environ))
    try:
        client = Client(server.url, verbose=False)
        status, progress = client.predict(kind="cvae", dataset="mnist", epochs=1, latent=4, api_name="/train")[:2]
        assert status.startswith("✅ Done"), status
        assert "· cuda ·" in progress  # where it trained
        trained = client.predict(digit=3, n=8, seed=0, api_name="/conditional")
        other = Client(server.url, verbose=False).predict(digit=3, n=8, seed=0, api_name="/conditional")
        with open(trained, "rb") as mine, open(other, "rb") as theirs:
            assert mine.read() != theirs.read()  # this session's tabs answer from the CUDA-trained CVAE
    finally:
        server.close()


def test_run_cli_reports_cuda_in_its_start_event(tmp_path):
    result = run_cli("train", "--device", "cuda", "--epochs", "1", "--out", tmp_path / "c", "--json")
    assert result.returncode == 0, result.stderr
    start = next(json.loads(line) for line in result.stdout.splitlines() if '"start"' in line)
    assert start["device"] == "cuda"
