import json
import pickle
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from vae_core.checkpoint import load_checkpoint, save_checkpoint
from vae_core.config import ModelConfig, TrainConfig
from vae_core.evaluate import elbo_metrics, evaluate
from vae_core.explore import epoch_pictures
from vae_core.kinds import REGISTRY
from vae_core.models import build_model, make_config, spec
from vae_core.train import DatasetNote, Done, Epoch, Event, Failed, Reading, Start, Step, Stopped, Trainer
from vae_core.train.events import EventHub


def run(subset, out=None, model=ModelConfig(), on_epoch=None, **train):
    trainer = Trainer(model, TrainConfig(out=str(out) if out else None, **train), dataset=subset,
                      on_epoch=on_epoch).start()
    events = list(trainer.events(timeout=120))
    return trainer, events


def of(events, event_type):
    return [e for e in events if isinstance(e, event_type)]


def round_trips(event: Event, loss_terms=("recon", "kl")) -> bool:
    """Its JSON line reads back as an event of its type that writes the same line (JSON leaves pictures out)."""
    line = event.to_json()
    back = Event.from_dict(json.loads(line), loss_terms)
    return type(back) is type(event) and back.to_json() == line


def test_short_training_lowers_the_loss_and_streams_pictures(subset):
    trainer, events = run(subset, epochs=3, batch_size=64, on_epoch=epoch_pictures)
    epochs = of(events, Epoch)
    assert [e.epoch for e in epochs] == [1, 2, 3]
    assert isinstance(events[-1], Done)
    assert epochs[-1].test_loss < epochs[0].test_loss < 90  # an untrained decoder scores ~180
    assert len(of(events, Step)) >= 3
    assert epochs[0].extras["grid"].dtype == np.uint8 and epochs[0].extras["grid"].shape == (242, 242)
    assert epochs[0].extras["reconstructions"].shape == (62, 242)
    assert of(events, DatasetNote)[0].dataset_note.startswith("MNIST could not be downloaded")
    assert [type(e) for e in events[:2]] == [DatasetNote, Start] and all(map(round_trips, events))
    assert "grid" not in json.loads(epochs[0].to_json())  # pictures are for screens, not logs
    assert trainer.hub.history[-2] == epochs[-1].without_arrays()  # nor kept by the history


def test_test_loss_is_per_image_recon_sum_plus_kl(subset, tmp_path):
    _, events = run(subset, tmp_path / "ck", epochs=1)
    ckpt = load_checkpoint(tmp_path / "ck")
    x, y = subset.tensors("test")
    again = elbo_metrics(ckpt.model, x, y, torch.Generator().manual_seed(0))
    epoch = of(events, Epoch)[0]
    assert again["test_loss"] == pytest.approx(epoch.test_loss, rel=1e-5)
    assert epoch.test_loss == pytest.approx(epoch.terms["recon"] + epoch.terms["kl"])
    assert ckpt.info["history"] == [epoch.history_entry()]  # the checkpoint records the epoch's figures


@pytest.mark.slow
def test_stop_takes_effect_within_a_second_mid_epoch_and_keeps_the_last_epoch(subset, tmp_path):
    trainer = Trainer(ModelConfig(hidden=800), TrainConfig(epochs=50, batch_size=4, out=str(tmp_path / "ck")),
                      dataset=subset).start()
    q = trainer.subscribe()
    while True:
        event = q.get(timeout=60)
        if isinstance(event, Step) and event.epoch == 2:
            break
    asked = time.monotonic()
    trainer.stop()
    while not isinstance(event, Stopped):
        event = q.get(timeout=5)
    assert time.monotonic() - asked < 1.0
    assert trainer.join(2)
    assert event.epoch == 1 and "epoch 1" in event.message and round_trips(event)
    assert load_checkpoint(tmp_path / "ck").info["epochs_trained"] == 1


def test_resume_continues_epochs_and_optimizer_exactly(subset, tmp_path):
    run(subset, tmp_path / "straight", epochs=2, seed=4)
    run(subset, tmp_path / "split", epochs=1, seed=4)
    _, events = run(subset, tmp_path / "split", epochs=2, seed=4, resume=str(tmp_path / "split"))
    assert [e.epoch for e in of(events, Epoch)] == [2]
    a = load_checkpoint(tmp_path / "straight").model.state_dict()
    b = load_checkpoint(tmp_path / "split").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(load_checkpoint(tmp_path / "split").info["history"]) == 2


def test_seeded_runs_are_reproducible_and_seeds_matter(subset):
    finals = [run(subset, epochs=1, seed=s)[0].model.state_dict()["encoder.fc1.weight"] for s in (7, 7, 8)]
    assert torch.equal(finals[0], finals[1])
    assert not torch.equal(finals[0], finals[2])


def test_nan_loss_stops_with_a_hint_and_keeps_the_good_checkpoint(subset, tmp_path):
    out = tmp_path / "ck"
    run(subset, out, epochs=1)
    before = load_checkpoint(out).model.state_dict()
    _, events = run(subset, out, epochs=3, lr=100.0, resume=str(out))
    error = events[-1]
    assert isinstance(error, Failed) and error.kind == "nan" and round_trips(error)
    assert "at step" in error.message and "learning rate" in error.message
    assert "epoch 1" in error.message
    after = load_checkpoint(out)
    assert after.info["epochs_trained"] == 1
    assert all(torch.equal(before[k], after.model.state_dict()[k]) for k in before)


def test_cvae_trains_and_previews_one_row_per_digit(subset):
    _, events = run(subset, model=make_config("cvae"), epochs=1, on_epoch=epoch_pictures)
    assert of(events, Epoch)[0].extras["grid"].shape == (10 * 30 + 2, 242)


def test_conv_and_bernoulli_and_gaussian_variants_train(subset):
    for model in (ModelConfig(arch="conv", hidden=64), ModelConfig(likelihood="bernoulli"),
                  ModelConfig(likelihood="gaussian", gaussian_variance="pixel")):
        _, events = run(subset, model=model, epochs=1, batch_size=256, kl_warmup=0.5)
        assert isinstance(events[-1], Done), events[-1]
        assert np.isfinite(of(events, Epoch)[0].test_loss)


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = build_model(make_config("cvae", arch="conv", hidden=32, latent=3, likelihood="gaussian")).eval()
    optimizer = torch.optim.Adam(model.parameters())
    model.loss_function(torch.rand(4, 1, 28, 28), torch.arange(4))["loss"].backward()
    optimizer.step()
    save_checkpoint(tmp_path / "ck", model, optimizer, {"epochs_trained": 1})
    loaded = load_checkpoint(tmp_path / "ck", with_optimizer=True)
    z, labels = torch.randn(6, 3), torch.arange(6)
    assert torch.equal(model.decode(z, labels), loaded.model.decode(z, labels))
    restored = torch.optim.Adam(loaded.model.parameters())
    restored.load_state_dict({"state": loaded.optimizer_state, "param_groups": restored.state_dict()["param_groups"]})
    assert torch.equal(restored.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])


def test_iwae_bound_is_tighter_than_the_elbo(subset, tmp_path):
    run(subset, tmp_path / "ck", epochs=2, model=ModelConfig(likelihood="bernoulli"))
    model = load_checkpoint(tmp_path / "ck").model
    x, y = subset.tensors("test")
    metrics = evaluate(model, x[:200], y[:200], samples=50)
    elbo = np.mean([elbo_metrics(model, x[:200], y[:200], torch.Generator().manual_seed(s))["test_loss"]
                    for s in range(5)])
    assert metrics["iwae_nll"] < elbo
    assert metrics["iwae_nll"] > elbo - 30  # a bound, not a free lunch
    assert 1 <= metrics["active_units"] <= 10


def test_a_nan_names_the_likely_setting_and_no_checkpoint_that_was_not_written(subset, tmp_path):
    from vae_core.train.loop import nan_hint

    assert "learning rate (100)" in nan_hint(100.0, 1.0, "mse")
    assert "β = 50" in nan_hint(1e-3, 50.0, "mse") and "learning rate" not in nan_hint(1e-3, 50.0, "mse")
    assert "variance" in nan_hint(1e-3, 1.0, "gaussian")
    run(subset, tmp_path / "a", epochs=1)
    _, events = run(subset, tmp_path / "b", epochs=3, lr=100.0, resume=str(tmp_path / "a"))
    error = events[-1]
    assert isinstance(error, Failed) and error.checkpoint is None  # b was never written
    assert "No epoch had finished" in error.message and not (tmp_path / "b").exists()


def test_a_run_that_shares_its_cores_steps_down_to_one_thread_while_another_process_is_busy():
    """CoreShare reads real CPU time: another process spinning makes it train on one thread, until it stops."""
    import os
    import subprocess
    import sys

    from vae_core.train.threads import CoreShare

    full = torch.get_num_threads()
    if full < 2 or not os.path.exists("/proc/stat"):
        pytest.skip("needs Linux and at least two threads")

    def settles(share: CoreShare, threads: int) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.35)
            share.adjust()
            if torch.get_num_threads() == threads:
                return True
        return False

    share = CoreShare(every_s=0.3)
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        assert settles(share, 1)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    try:
        assert settles(share, full)
    finally:
        torch.set_num_threads(full)


def test_each_event_type_has_its_json_line_of_old_and_reads_back_from_it():
    """The dict form is the flat one the logs and checkpoints always had: loss terms spread under their names,
    "time" last once a hub has published it; the JSON line reads back as the same event, and a pickle (the
    worker process's pipe) carries pictures too."""
    grid = np.zeros((4, 4), np.uint8)
    events = [
        Reading(done=3, total=10), DatasetNote(dataset_note="the offline subset"),
        Start(device="cpu", dataset="mnist", dataset_note="", n_train=4500, n_test=500, first_epoch=1, epochs=2,
              model={"kind": "vae", "latent": 4}, parameters=1234),
        Step(epoch=1, step=20, progress=0.5, loss=3.0, terms={"recon": 2.0, "kl": 1.0}, kl_weight=1.0),
        Epoch(epoch=1, epochs=2, train_loss=3.0, train_terms={"recon": 2.0, "kl": 1.0}, images_seen=4500,
              samples_per_s=1e4, seconds=0.45, test_loss=2.5, terms={"recon": 2.0, "kl": 0.5},
              extras={"grid": grid, "note": "drawn"}),
        Done(epoch=2, checkpoint="ck", message="training finished after epoch 2"),
        Stopped(epoch=1, checkpoint=None, message="stopped"),
        Failed(kind="nan", checkpoint="ck", message="The loss became nan"),
    ]
    hub = EventHub()
    q = hub.subscribe()
    for event in events:
        hub.publish(event)
    published = [q.get(timeout=1) for _ in events]
    assert [e.name for e in published] == ["reading", "dataset_note", "start", "step", "epoch", "done", "stopped",
                                           "error"]
    assert all(isinstance(e.time, float) for e in published) and all(map(round_trips, published))
    assert [Event.from_dict(json.loads(e.to_json())) for e in published] == [e.without_arrays() for e in published]
    step, epoch = published[3], published[4]
    assert list(json.loads(step.to_json())) == ["event", "epoch", "step", "progress", "loss", "recon", "kl",
                                                "kl_weight", "time"]
    assert list(json.loads(epoch.to_json())) == [
        "event", "epoch", "epochs", "train_loss", "train_recon", "train_kl", "images_seen", "samples_per_s",
        "seconds", "test_loss", "recon", "kl", "note", "time"]  # the pictures are left out
    assert epoch["train_kl"] == 1.0 and epoch.get("grid") is grid  # read by key too, as scripts do
    assert "time" not in events[5].to_json()  # stamped when published, not before
    carried = pickle.loads(pickle.dumps(epoch))
    assert carried.to_json() == epoch.to_json() and np.array_equal(carried.extras["grid"], grid)


def test_a_kind_with_other_loss_terms_reports_and_plots_those_terms(subset, monkeypatch, tmp_path):
    """A kind that reports only its reconstruction term: its events, JSON, history and the app's parts plot name
    that term alone."""
    from ui.live_run import LiveRun

    monkeypatch.setitem(REGISTRY, "recon-only", replace(spec("vae"), name="recon-only", loss_terms=("recon",)))
    trainer = Trainer(make_config("recon-only", latent=4), TrainConfig(epochs=1), dataset=subset,
                      on_epoch=epoch_pictures)
    watched = LiveRun(trainer, "recon-only", tmp_path / "run", "me", on_finish=lambda run: None)
    watched.start()
    assert watched.wait(120)
    events = trainer.hub.history
    assert list(watched.snapshot().parts_frame["series"].unique()) == ["recon (train)", "recon (test)"]
    step, epoch = of(events, Step)[0], of(events, Epoch)[0]
    assert list(step.terms) == ["recon"] and list(epoch.terms) == list(epoch.train_terms) == ["recon"]
    line = json.loads(epoch.to_json())
    assert "recon" in line and "train_recon" in line and "kl" not in line and "train_kl" not in line
    assert epoch.test_loss > epoch.terms["recon"]  # the loss still has its KL: the kind just does not report it
    assert round_trips(epoch, ("recon",)) and round_trips(step, ("recon",))
    assert "kl" not in epoch.history_entry() and isinstance(events[-1], Done)
