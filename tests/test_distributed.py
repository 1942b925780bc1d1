"""DistributedDataParallel under torchrun: two CPU processes (gloo) against one, and a rank that dies."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from testing import ROOT
from testing.cli import run_cli as cli

pytestmark = pytest.mark.slow  # each test starts torchrun jobs

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    args = ["-m", "vae_core", "train", "--epochs", "2", "--batch-size", "128", "--json"]
    ddp = subprocess.run([*TORCHRUN, *args, "--ddp", "--out", tmp_path / "ddp"], capture_output=True,
                         text=True, cwd=ROOT, timeout=240, start_new_session=True)
    assert ddp.returncode == 0, ddp.stderr[:3000]
    single = cli(*args[2:], "--out", tmp_path / "single")
    assert single.returncode == 0, single.stderr
    ddp_events, single_events = events(ddp.stdout), events(single.stdout)
    assert [e["event"] for e in ddp_events].count("done") == 1  # rank 0 alone reports
    ddp_epochs = [e for e in ddp_events if e["event"] == "epoch"]
    single_epochs = [e for e in single_events if e["event"] == "epoch"]
    assert [e["images_seen"] for e in ddp_epochs] == [e["images_seen"] for e in single_epochs] == [4500, 4500]
    assert ddp_epochs[-1]["test_loss"] == pytest.approx(single_epochs[-1]["test_loss"], rel=0.01)
    assert ddp_epochs[-1]["test_loss"] < ddp_epochs[0]["test_loss"]
    assert (tmp_path / "ddp" / "model.safetensors").is_file()


def test_a_rank_that_dies_ends_the_job_with_a_clear_message(tmp_path):
    job = subprocess.Popen([*TORCHRUN, "-m", "vae_core", "train", "--ddp", "--epochs", "500", "--json", "--out",
                            tmp_path / "ddp"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                           start_new_session=True)
    try:
        for line in job.stdout:
            if json.loads(line)["event"] == "epoch":
                break
        workers = subprocess.run(["pgrep", "-P", str(job.pid)], capture_output=True, text=True).stdout.split()
        rank1 = [pid for pid in map(int, workers)
                 if b"RANK=1" in open(f"/proc/{pid}/environ", "rb").read().split(b"\0")]
        assert len(rank1) == 1
        os.kill(rank1[0], signal.SIGKILL)
        killed = time.monotonic()
        rest, stderr = job.communicate(timeout=120)
        assert time.monotonic() - killed < 60
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.pid, signal.SIGKILL)  # torchrun and any worker left behind
    assert job.returncode != 0
    final = events(rest)[-1]
    assert final["event"] == "error" and "another process of the job failed or was killed" in final["message"]
    assert final["checkpoint"]  # the last finished epoch's checkpoint is kept
    assert "rank      : 1" in stderr and "SIGKILL" in stderr  # torchrun names the rank that died


def test_ddp_outside_torchrun_is_a_usage_error(tmp_path):
    result = cli("train", "--ddp", "--epochs", "1", "--out", tmp_path / "x")
    assert result.returncode == 2 and "runs under torchrun" in result.stderr
