"""Each session's models are its own, and every widget's range is the range its handler accepts."""

import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from ui.catalogue import ActiveModel, model_bytes
from ui.owners import SessionModels
from ui.tabs.train import SETTINGS, configs
from vae_core.config import LIMITS
from vae_core.models import build_model, make_config


def grid(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


def limited_inputs(server) -> dict[str, dict[str, str]]:
    """endpoint → {API parameter name: limit name}, read from the served page's own config."""
    with urllib.request.urlopen(f"{server.url}/config") as response:
        config = json.load(response)
    limit_of = {c["id"]: c["props"]["elem_classes"][0][len("limit-"):] for c in config["components"]
                if any(k.startswith("limit-") for k in c["props"].get("elem_classes") or [])}
    widgets = {c["id"]: c["props"] for c in config["components"]}
    for cid, name in limit_of.items():  # every widget's own range is its limit's
        assert (widgets[cid]["minimum"], widgets[cid]["maximum"]) == (LIMITS[name].lo, LIMITS[name].hi), name
    api = Client(server.url, verbose=False).view_api(return_format="dict", print_info=False)["named_endpoints"]
    found = {}
    for dep in config["dependencies"]:
        if not dep.get("api_name") or f"/{dep['api_name']}" not in api:
            continue
        names = [p["parameter_name"] for p in api[f"/{dep['api_name']}"]["parameters"]]
        found[dep["api_name"]] = {names[i]: limit_of[cid] for i, cid in enumerate(dep["inputs"]) if cid in limit_of}
    return found


def just_over(name: str) -> float:
    limit = LIMITS[name]
    return limit.hi + (1 if limit.whole else limit.hi * 0.01 + 1e-3)


@pytest.mark.slow
def test_every_widget_range_is_its_handlers_range(server, digit_png):
    endpoints = limited_inputs(server)
    assert {"sample", "conditional", "all_digits", "traverse", "interpolate", "complete", "explain", "train"} \
        <= set(endpoints)
    assert sum(len(params) for params in endpoints.values()) >= 25
    image = {"traverse": {}, "interpolate": {"image_a": handle_file(digit_png[0]),
                                             "image_b": handle_file(digit_png[1])},
             "complete": {"image": handle_file(digit_png[0])}, "explain": {"image": handle_file(digit_png[0])}}
    client = Client(server.url, verbose=False)
    for endpoint, params in endpoints.items():
        if endpoint == "train":  # at its maximum a run would start: its checks are called in-process below
            continue
        if endpoint == "continue_run":  # its maximum passes the check, and then the run it names is looked for
            for param, name in params.items():
                with pytest.raises(Exception, match="not one of this session's runs"):
                    client.predict(run="runs/none", **{param: LIMITS[name].hi}, api_name="/continue_run")
                with pytest.raises(Exception, match="maximum"):
                    client.predict(run="runs/none", **{param: just_over(name)}, api_name="/continue_run")
            continue
        for param, name in params.items():
            at_edge = {**image.get(endpoint, {}), param: LIMITS[name].hi}
            answer = client.predict(**at_edge, api_name=f"/{endpoint}")  # the widget's maximum is accepted
            grid(answer[0] if isinstance(answer, tuple) else answer)
            with pytest.raises(Exception, match="maximum"):
                client.predict(**{**at_edge, param: just_over(name)}, api_name=f"/{endpoint}")
    train = endpoints["train"]
    assert set(train) <= set(SETTINGS) and {"epochs", "batch_size", "latent", "hidden", "lr", "beta"} <= set(train)
    defaults = {"kind": "vae", "dataset": "mnist", "arch": "mlp", "likelihood": "mse", "zip_file": None}
    for edge in ("lo", "hi"):
        settings = defaults | {param: getattr(LIMITS[name], edge) for param, name in train.items()}
        configs(settings, "cpu")  # every widget's end is accepted by the server-side check
    for param, name in train.items():
        settings = defaults | {p: LIMITS[n].lo for p, n in train.items()} | {param: just_over(name)}
        with pytest.raises(ValueError, match="maximum"):
            configs(settings, "cpu")


def test_a_run_is_its_owners_and_others_can_adopt_it(server):
    owner, other = Client(server.url, verbose=False), Client(server.url, verbose=False)
    before = grid(other.predict(n=16, seed=3, api_name="/sample"))
    status = owner.predict(kind="vae", dataset="mnist", epochs=1, latent=3, batch_size=128, api_name="/train")[0]
    assert status.startswith("✅ Done")
    owners = grid(owner.predict(n=16, seed=3, api_name="/sample"))
    assert not np.array_equal(before, owners)  # the owner's tabs use the new model
    assert np.array_equal(before, grid(other.predict(n=16, seed=3, api_name="/sample")))  # the other's do not
    answer = other.predict(api_name="/adopt_run")
    models = answer[0] if isinstance(answer, tuple) else answer
    assert "runs/" in models.split("CVAE")[0]
    assert np.array_equal(owners, grid(other.predict(n=16, seed=3, api_name="/sample")))  # adopted: the same model


def real_model(hidden: int = 16) -> ActiveModel:
    return ActiveModel(build_model(make_config("vae", latent=2, hidden=hidden)), "runs/x", {})


def test_sessions_beyond_the_capacity_lose_their_models_oldest_first_and_are_told_once():
    store = SessionModels(capacity=2, max_bytes=10**9)
    model = real_model()
    for session in ("a", "b", "c"):
        store.set(session, "vae", model, trained=True)
    assert store.get("a") == {} and store.get("b") == store.get("c") == {"vae": model}
    assert store.take_dropped("a") and not store.take_dropped("a")  # said once
    assert not store.take_dropped("b") and not store.take_dropped("never-seen")
    store.get("b")  # b is now the most recent: c goes next
    store.set("d", "vae", model, trained=True)
    assert store.get("c") == {} and store.get("b") != {}


def test_a_crowd_of_adopters_cannot_push_out_a_session_that_trained():
    store = SessionModels(capacity=2, max_bytes=10**9, adopters=5)
    mine, run = real_model(), real_model()
    store.set("trainer", "vae", mine, trained=True)
    for i in range(50):  # 50 anonymous /adopt_run calls of someone else's run
        store.set(f"stranger-{i}", "vae", run, trained=False)
    assert store.get("trainer") == {"vae": mine}
    assert store.get("stranger-49") == {"vae": run} and store.get("stranger-0") == {}


def test_the_models_held_stay_within_their_memory_bound():
    one = model_bytes(real_model(hidden=64))
    store = SessionModels(capacity=10, max_bytes=int(2.5 * one))
    for session in ("a", "b", "c"):  # three distinct models of `one` bytes: the oldest goes
        store.set(session, "vae", real_model(hidden=64), trained=True)
    assert store.get("a") == {} and store.get("b") and store.get("c")
    shared = store.get("c")["vae"]
    for session in ("d", "e"):  # adopting a held model costs no memory: nobody is dropped
        store.set(session, "vae", shared, trained=False)
    assert store.get("b") and store.get("d") and store.get("e")


@pytest.mark.slow
def test_each_session_keeps_its_newest_runs_on_disk(server):
    from ui.settings import Settings

    client = Client(server.url, verbose=False)
    names = []
    for _ in range(Settings().runs_per_session + 1):
        download = client.predict(kind="vae", dataset="mnist", epochs=1, latent=2, api_name="/train")[-1]
        names.append(Path(download).stem)
    on_disk = {p.name.split(".")[0] for p in server.runs_dir.iterdir()}
    assert names[0] not in on_disk  # the oldest went: folder, zip, film and grid
    assert set(names[1:]) <= on_disk
    assert all((server.runs_dir / f"{names[-1]}{suffix}").is_file() for suffix in (".zip", ".gif", ".png"))
    runs = client.predict(api_name="/runs")
    assert f"{len(names) - 1} run(s)" in runs[0] and f"newest {len(names) - 1} runs" in runs[0]


@pytest.mark.slow
def test_a_second_train_call_is_refused_as_busy_and_never_told_about_a_run_it_did_not_start(server):
    owner, stranger = Client(server.url, verbose=False), Client(server.url, verbose=False)
    run = owner.submit(kind="vae", dataset="mnist", epochs=3, latent=2, batch_size=16, api_name="/train")
    while not run.outputs():
        pass
    for caller in (stranger, owner):  # another session, and the same one calling again
        with pytest.raises(Exception, match="started nothing"):
            caller.predict(kind="cvae", dataset="mnist", epochs=1, api_name="/train")
    run.result(timeout=120)
    assert run.outputs()[-1][0].startswith("✅ Done")


@pytest.mark.slow
def test_a_run_stops_itself_at_the_servers_time_limit_and_a_hung_one_is_ended(tmp_path):
    """The limit is what frees the one trainer when a visitor leaves a long run (no one else may stop it)."""
    import os
    import signal
    import time

    from testing.appserver import Server

    server = Server(tmp_path / "runs", tmp_path / "app.log", dict(os.environ) | {"VAE_STUDIO_MAX_RUN_MINUTES": "0.15"})
    long_run = dict(kind="vae", dataset="mnist", epochs=500, latent=2, batch_size=64, lr=1e-3, api_name="/train")
    try:
        client = Client(server.url, verbose=False)
        began = time.monotonic()
        status = client.submit(**long_run).result(timeout=120)[0]
        assert status.startswith("⏹ Stopped. This server stops a run after 9 s.") and "epoch" in status, status
        assert 9 <= time.monotonic() - began < 40
        assert "It is now the active model" in status  # its last finished epoch was kept and is in use

        # a worker that no longer answers (stopped by a signal, as a hang would leave it) is ended a grace later
        job = client.submit(**long_run)
        while not any("images/s" in update[1] for update in job.outputs()):  # training, not still starting
            time.sleep(0.2)
        workers = [pid for pid in os.listdir("/proc") if pid.isdigit() and _parent(pid) == server.process.pid
                   and b"vae_core.train.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(workers) == 1, workers  # the run's own (the next spare starts when a run ends)
        os.kill(int(workers[0]), signal.SIGSTOP)
        status = job.result(timeout=120)[0]
        assert status.startswith("⚠️ Training failed: This server stops a run after 9 s, and this one did not "
                                 "stop, so its process was ended"), status
        assert not Path(f"/proc/{workers[0]}").exists() or _state(workers[0]) == "Z"
        assert client.predict(api_name="/stop") == "No run is in progress."  # the trainer is free again
    finally:
        server.close()


def _parent(pid: str) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _state(pid: str) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "1e12", "an hour"])
def test_a_nonsense_time_limit_stops_the_server_from_starting_with_a_sentence(value):
    from ui.settings import Settings

    with pytest.raises(ValueError, match="VAE_STUDIO_MAX_RUN_MINUTES must be minutes from 0"):
        Settings.from_env({"VAE_STUDIO_MAX_RUN_MINUTES": value})
    assert Settings.from_env({"VAE_STUDIO_MAX_RUN_MINUTES": "0"}).max_run_minutes == 0  # no limit


@pytest.mark.slow
def test_the_app_refuses_a_nonsense_setting_in_one_line():
    import os
    import subprocess
    import sys

    from testing import ROOT

    done = subprocess.run([sys.executable, "app.py"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ) | {"VAE_STUDIO_RUNS_KEPT": "many"})
    assert done.returncode == 1  # as for unreadable weights
    assert done.stderr.strip() == "error: VAE_STUDIO_RUNS_KEPT must be a whole number of at least 1, not 'many'"
