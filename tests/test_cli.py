import json
import math
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from testing import ROOT
from testing.cli import run_cli as cli
from vae_core.cli import main
from vae_core.kinds import REGISTRY
from vae_core.models import spec


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "cvae"
    result = cli("train", "--kind", "cvae", "--epochs", "2", "--latent", "4", "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    return out, result


def test_train_json_streams_events_and_says_it_uses_the_subset(trained):
    out, result = trained
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "dataset_note" and kinds[-1] == "done" and kinds.count("epoch") == 2
    epoch = next(e for e in events if e["event"] == "epoch")
    assert {"epoch", "train_loss", "test_loss", "recon", "kl", "samples_per_s"} <= set(epoch)
    assert "offline subset" in result.stderr
    assert (out / "model.safetensors").is_file() and (out / "optimizer.safetensors").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["kind"] == "cvae" and config["epochs_trained"] == 2
    assert "offline subset" in config["dataset_note"] and config["version"]


def test_train_prints_each_epoch_with_the_loss_terms_its_kind_reports(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(REGISTRY, "recon-only", replace(spec("vae"), name="recon-only", loss_terms=("recon",)))
    assert main(["train", "--kind", "recon-only", "--epochs", "1", "--latent", "4", "--out", str(tmp_path / "ck")]) == 0
    shown = capsys.readouterr()
    line = next(line for line in shown.out.splitlines() if line.startswith("epoch 1:"))  # tqdm.write's stdout
    assert "(recon " in line and "kl" not in line.lower()
    assert shown.err.splitlines()[-1] == f"training finished after epoch 1 Checkpoint: {tmp_path / 'ck'}"


@pytest.mark.slow
def test_evaluate_json_reports_the_metrics(trained):
    out, _ = trained
    result = cli("evaluate", out, "--iwae-k", "10", "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert {"test_loss", "recon", "kl", "iwae_nll", "iwae_k", "active_units"} <= set(metrics)
    assert metrics["iwae_k"] == 10 and 0 <= metrics["active_units"] <= 4


@pytest.mark.slow
def test_sample_writes_npy_and_png_and_needs_a_digit_for_a_cvae(trained, tmp_path):
    out, _ = trained
    result = cli("sample", out, "--n", "12", "--digit", "7", "--npy", tmp_path / "s.npy", "--png", tmp_path / "g.png")
    assert result.returncode == 0, result.stderr
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (12, 28, 28) and samples.dtype == np.float32
    assert 0 <= samples.min() and samples.max() <= 1
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = cli("sample", out, "--npy", tmp_path / "x.npy")
    assert missing.returncode == 2 and "--digit" in missing.stderr


@pytest.mark.parametrize("args, says", [
    (["train", "--latent", "0", "--out", "x"], "--latent"),
    (["train", "--batch-size", "0", "--out", "x"], "--batch-size"),
    (["train", "--dataset", "cifar10", "--out", "x"], "--dataset"),
    (["train", "--lr", "nan", "--out", "x"], "--lr"),
    (["train", "--epochs", "many", "--out", "x"], "--epochs"),
    (["evaluate", "/definitely/not/here"], "no checkpoint folder"),
    (["sample", "tests", "--png", "x.png"], "not a complete checkpoint"),
])
def test_bad_arguments_get_one_line_and_status_2(args, says, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert says in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_bad_argument_in_a_real_process_prints_no_traceback():
    result = cli("train", "--latent", "99", "--out", "x")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: argument --latent: latent must be between 1 and 64: 99 is above the maximum"


def test_a_pickle_checkpoint_is_refused(tmp_path, capsys):
    (tmp_path / "model.pt").write_bytes(b"\x80\x04K\x01.")
    assert main(["evaluate", str(tmp_path / "model.pt")]) == 2
    assert "pickled" in capsys.readouterr().err


@pytest.mark.slow
def test_digit_is_refused_for_a_vae(tmp_path):
    out = tmp_path / "vae"
    assert cli("train", "--epochs", "1", "--out", out).returncode == 0
    result = cli("sample", out, "--digit", "3", "--png", tmp_path / "g.png")
    assert result.returncode == 2 and "only applies to a CVAE" in result.stderr


@pytest.mark.slow
def test_out_of_memory_is_a_clear_error_not_a_crash(tmp_path):
    import resource

    from vae_core.datasets import DEBIAN_FASHION

    if not DEBIAN_FASHION.is_dir():
        pytest.skip("needs Debian's Fashion-MNIST for batches big enough to run out of memory")

    def six_gigabytes():
        resource.setrlimit(resource.RLIMIT_AS, (6 * 10**9, 6 * 10**9))

    result = subprocess.run(
        [sys.executable, "-m", "vae_core", "train", "--dataset", "fashion-mnist", "--hidden", "8192",
         "--batch-size", "65536", "--epochs", "1", "--out", str(tmp_path / "ck")],
        capture_output=True, text=True, cwd=ROOT, timeout=180, preexec_fn=six_gigabytes)
    assert result.returncode == 1
    assert "out of memory with batch size 65536: lower the batch size" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_structured_cvae_trains_evaluates_and_refuses_to_sample(tmp_path):
    baseline = tmp_path / "baseline"
    result = cli("train", "--kind", "scvae", "--objective", "baseline", "--given-quadrants", "2", "--hidden", "64",
                 "--latent", "4", "--epochs", "1", "--out", baseline)
    assert result.returncode == 0, result.stderr
    hybrid = tmp_path / "hybrid"
    result = cli("train", "--kind", "scvae", "--objective", "hybrid", "--alpha", "0.3", "--given-quadrants", "2",
                 "--hidden", "64", "--latent", "4", "--epochs", "1", "--init-from", baseline, "--out", hybrid)
    assert result.returncode == 0, result.stderr
    config = json.loads((hybrid / "config.json").read_text())["model"]
    assert (config["kind"], config["objective"], config["alpha"], config["likelihood"]) == \
        ("scvae", "hybrid", 0.3, "bernoulli")
    metrics = json.loads(cli("evaluate", hybrid, "--samples", "10", "--json").stdout)
    assert metrics["given"] == ["top-left", "top-right"] and metrics["samples"] == 10
    assert 0 < metrics["ncll"] < 392 * math.log(2)  # better than coin flips on the 392 hidden pixels
    other = json.loads(cli("evaluate", hybrid, "--samples", "10", "--given", "bottom-right", "--json").stdout)
    assert other["given"] == ["bottom-right"] and other["ncll"] != metrics["ncll"]
    refused = cli("sample", hybrid, "--png", tmp_path / "x.png")
    assert refused.returncode == 2 and "completes given quadrants" in refused.stderr
    missing = cli("train", "--kind", "scvae", "--init-from", tmp_path / "none", "--out", tmp_path / "v")
    assert missing.returncode == 2 and "no checkpoint folder" in missing.stderr


@pytest.mark.slow
def test_an_output_that_is_not_our_checkpoint_is_never_touched(tmp_path):
    """--out on a folder of the user's files, or on a file, is refused before any training; nothing changes."""
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.tex").write_text("months of work")
    result = cli("train", "--epochs", "1", "--out", folder)
    assert result.returncode == 2 and "other files in it" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert (folder / "chapter1.tex").read_text() == "months of work" and len(list(folder.iterdir())) == 1
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    result = cli("train", "--epochs", "1", "--out", notes)
    assert result.returncode == 2 and "not a checkpoint folder" in result.stderr
    assert notes.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "thesis"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("train", "--epochs", "1", "--out", empty).returncode == 0  # empty and new folders are fine


@pytest.mark.slow
def test_bad_sample_targets_are_refused_before_sampling(trained, tmp_path):
    out, _ = trained
    missing = tmp_path / "missing" / "s.npy"
    for args, says in [(["--png", tmp_path], "is a folder"), (["--npy", missing], "cannot write")]:
        result = cli("sample", out, "--digit", "1", *args)
        assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr
    for args, says in [(["--seed", str(2**70)], "--seed"), (["--temperature", "1e30"], "--temperature")]:
        result = cli("sample", out, "--digit", "1", "--npy", tmp_path / "s.npy", *args)
        assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_run_that_cannot_fit_in_memory_is_refused_before_it_allocates(tmp_path, subset):
    """A conv model at 256×256 with hidden 8192 would need tens of GB; it is refused with its numbers."""
    from PIL import Image

    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(subset.train_images[i, 0]).save(folder / f"{i}.png")
    result = cli("train", "--arch", "conv", "--hidden", "8192", "--dataset", f"folder:{folder}", "--image-size",
                 "256", "--epochs", "1", "--out", tmp_path / "big", timeout=120)
    assert result.returncode == 1 and "this run needs about" in result.stderr and "GB are free" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "big").exists()


@pytest.mark.slow
def test_resume_and_evaluate_check_a_folder_as_an_upload_is_checked(trained, tmp_path):
    """The CLI reads folders through the same checks: a lying header or a stray tensor is one line, exit 2."""
    import shutil

    out, _ = trained
    lying = tmp_path / "lying"
    shutil.copytree(out, lying)
    header = json.dumps({"decoder.out.weight": {"dtype": "F32", "shape": [65536, 8192], "data_offsets": [0, 16]}})
    (lying / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header.encode() + bytes(16))
    for args in (("evaluate", lying), ("train", "--resume", lying, "--epochs", "3", "--out", tmp_path / "next")):
        result = cli(*args)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert "claims F32 [65536, 8192]" in result.stderr


@pytest.mark.slow
def test_push_without_a_token_or_a_network_says_so_in_one_line(trained, tmp_path):
    import os

    out, _ = trained
    env = {**os.environ, "HF_HOME": str(tmp_path), "HF_TOKEN": ""}
    result = cli("push", out, "--repo", "someone/a-vae", env=env)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "error: no Hugging Face token: set HF_TOKEN or run `hf auth login`, then push again"]
    unreachable = {**env, "HF_TOKEN": "hf_not_a_real_token", "HF_ENDPOINT": "http://127.0.0.1:9"}
    result = cli("push", out, "--repo", "someone/a-vae", env=unreachable)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "error: cannot reach 127.0.0.1 (no network?); nothing was published"]
    assert (out / "README.md").read_text().startswith("---\nlibrary_name: ")
