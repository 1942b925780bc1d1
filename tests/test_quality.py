"""What makes the shipped models sharper, and how a learner sees their own run's digits judged."""

import pytest
import torch
from gradio_client import Client

from testing import ROOT
from ui.catalogue import PRETRAINED
from vae_core.checkpoint import load_checkpoint
from vae_core.config import TrainConfig
from vae_core.models import make_config
from vae_core.recognize import describe, load_judge, recognized
from vae_core.train.augment import random_shift

JUDGE = ROOT / "weights" / "digit_judge.safetensors"


def test_random_shift_moves_each_picture_by_its_own_offset_within_the_bound():
    x = torch.zeros(64, 1, 9, 9)
    x[:, 0, 4, 4] = 1.0  # one lit pixel in the middle of each picture
    moved = random_shift(x, 2, torch.Generator().manual_seed(0))
    where = torch.stack([(m[0] == 1).nonzero()[0] for m in moved]) - 4
    assert moved.sum() == 64 and where.abs().max() == 2  # nothing lost, at most 2 px each way
    assert len({tuple(w.tolist()) for w in where}) > 10  # offsets differ picture by picture
    assert torch.equal(random_shift(x, 2, torch.Generator().manual_seed(0)), moved)  # seeded


def test_shift_and_cuda_graphs_are_refused_together():
    import pytest

    with pytest.raises(ValueError, match="shift"):
        TrainConfig(shift=1, cuda_graphs=True)
    with pytest.raises(ValueError, match="shift"):
        TrainConfig(shift=5)


def test_the_judge_reads_real_digits_and_tells_a_trained_cvae_from_an_untrained_one(subset):
    judge = load_judge(JUDGE)
    x, y = subset.tensors("test")
    with torch.no_grad():
        assert (judge(x).argmax(1) == y).float().mean() > 0.97
    shipped = recognized(load_checkpoint(ROOT / "weights" / "cvae").model, judge)
    assert shipped["overall"] > 0.9 and len(shipped["per_digit"]) == 10
    from vae_core.models import build_model

    untrained = recognized(build_model(make_config("cvae")).eval(), judge)
    assert untrained["overall"] < 0.5


@pytest.mark.slow
def test_a_cvae_runs_last_word_compares_its_digits_with_the_shipped_cvaes(server):
    client = Client(server.url, verbose=False)
    status = client.predict(kind="cvae", dataset="mnist", epochs=1, latent=4, api_name="/train")[0]
    shipped = describe(recognized(load_checkpoint(ROOT / "weights" / PRETRAINED["cvae"]).model, load_judge(JUDGE)))
    assert "An independent CNN reads" in status and f"the shipped CVAE: {shipped}" in status
    own = status.split("An independent CNN reads ")[1].split(" of this CVAE")[0]
    assert own != shipped  # one epoch's digits are judged on their own
    vae_status = client.predict(kind="vae", dataset="mnist", epochs=1, latent=2, api_name="/train")[0]
    assert "independent CNN" not in vae_status  # a VAE is not asked for a digit
