"""Keeping, comparing and bringing back runs: checkpoint upload, resume, the Runs view, the film, the model card.

Everything goes through the real server (gradio_client), two clients standing for two
browser sessions; the bad checkpoints are real zips, each broken in one way.
"""

import io
import json
import shlex
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from PIL import Image
from safetensors.torch import load, save

from vae_core.checkpoint import MAX_CHECKPOINT_FILES
from vae_core.cli import build_parser
from vae_core.film import Film

ROOT = Path(__file__).resolve().parents[1]


def pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


def zip_of(path: Path, files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, blob in files.items():
            archive.writestr(name, blob)
    return path


def front_matter(card: str) -> dict:
    """The model card's front matter: each line `key: value`, the value written as JSON (which is YAML)."""
    head = card.split("---")[1]
    return {key: json.loads(value) for key, value in (line.split(": ", 1) for line in head.strip().splitlines())}


@pytest.mark.slow
def test_a_downloaded_run_comes_back_in_a_fresh_session_samples_the_same_and_trains_on(server, tmp_path):
    first, fresh = Client(server.url, verbose=False), Client(server.url, verbose=False)
    updates = list(first.submit(kind="vae", dataset="mnist", epochs=2, latent=3, beta=2.0, api_name="/train"))
    download = updates[-1][6]
    original = pixels(first.predict(n=16, seed=3, api_name="/sample"))
    shipped = pixels(fresh.predict(n=16, seed=3, api_name="/sample"))
    assert not np.array_equal(original, shipped)  # the fresh session starts on the pretrained VAE

    models, run = fresh.predict(zip_file=handle_file(download), api_name="/load_checkpoint")
    assert run.startswith("runs/") and "latent 3" in models and "2 epochs" in models
    assert np.array_equal(pixels(fresh.predict(n=16, seed=3, api_name="/sample")), original)

    status, progress, loss = fresh.predict(run=run, epochs=1, api_name="/continue_run")[:3]
    assert status.startswith("✅ Done") and "3/3 epochs done" in progress
    tested = sorted(row[0] for row in loss["data"] if row[2] == "test loss" and row[1] is not None)
    assert tested == [1.0, 2.0, 3.0]  # the live curves start with the checkpoint's epochs
    note, chart, table, gallery, picker = fresh.predict(curve="KL (test)", api_name="/runs")
    continued = picker["value"]
    assert continued != run  # a new run: the brought-back one stays as it was
    assert note.startswith("2 run(s)") and chart.count("<polyline") == 2 and "KL (test)" in chart
    assert table.count("<th>epochs trained</th><td>3</td><td>2</td>") == 1  # newest first, and it differs
    assert len(gallery) == 2  # the continued run's last epoch, and the brought-back one drawn when it came
    with zipfile.ZipFile(fresh.predict(run=continued, api_name="/run_checkpoint")) as archive:
        config = json.loads(archive.read("config.json"))
        assert {"optimizer.safetensors", "README.md"} <= set(archive.namelist())
    assert config["epochs_trained"] == 3 and [h["epoch"] for h in config["history"]] == [1, 2, 3]
    assert config["model"]["beta"] == 2.0 and config["train"]["seed"] == 0

    # the film: one frame per epoch the server trained; a brought-back checkpoint has none
    with Image.open(first.predict(run=first.predict(api_name="/runs")[4]["value"], api_name="/run_film")) as film:
        assert film.format == "GIF" and film.n_frames == 2
    with Image.open(fresh.predict(run=continued, api_name="/run_film")) as film:
        assert film.n_frames == 1
    with pytest.raises(Exception, match="has no film: it was brought back"):
        fresh.predict(run=run, api_name="/run_film")
    # another session's run is not yours to download, continue or use
    for api_name, kwargs in (("/run_checkpoint", {}), ("/continue_run", {"epochs": 1}), ("/make_active", {})):
        with pytest.raises(Exception, match="not one of this session's runs"):
            first.predict(run=run, **kwargs, api_name=api_name)


def test_the_model_card_reproduces_its_run(server, tmp_path):
    client = Client(server.url, verbose=False)
    download = list(client.submit(kind="cvae", dataset="mnist", epochs=1, latent=4, hidden=64, lr=2e-3, seed=7,
                                  api_name="/train"))[-1][6]
    with zipfile.ZipFile(download) as archive:
        card, config = archive.read("README.md").decode(), json.loads(archive.read("config.json"))
    meta = front_matter(card)
    assert meta["library_name"] == "pytorch" and {"vae-studio", "cvae"} <= set(meta["tags"])
    assert meta["datasets"] == ["ylecun/mnist"]
    elbo = meta["model-index"][0]["results"][0]["metrics"][0]
    assert elbo["value"] == pytest.approx(config["metrics"]["test_loss"], abs=1e-3)
    command = card.split("```bash\n")[1].split("\n```")[0]
    args = build_parser().parse_args(shlex.split(command)[3:])
    assert (args.kind, args.latent, args.hidden, args.epochs, args.lr, args.seed, args.dataset) == \
        ("cvae", 4, 64, 1, 2e-3, 7, "mnist")


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict[str, bytes]:
    """A shipped checkpoint's files: each bad zip below is this with one thing wrong."""
    folder = ROOT / "weights" / "vae"
    return {name: (folder / name).read_bytes() for name in ("config.json", "model.safetensors")}


def with_config(good: dict, **change) -> dict:
    config = json.loads(good["config.json"])
    for path, value in change.items():
        *outer, last = path.split("__")
        target = config
        for key in outer:
            target = target[key]
        target[last] = value
    return {**good, "config.json": json.dumps(config).encode()}


def with_tensors(good: dict, edit) -> dict:
    tensors = load(good["model.safetensors"])
    edit(tensors)
    return {**good, "model.safetensors": save(tensors)}


def with_raw_config(good: dict, old: bytes, new: bytes) -> dict:
    return {**good, "config.json": good["config.json"].replace(old, new, 1)}


def with_optimizer(good: dict, edit) -> dict:
    """An Adam state for the shipped VAE (one step taken), edited."""
    from vae_core.checkpoint import load_checkpoint

    model = load_checkpoint(ROOT / "weights" / "vae").model.train()
    optimizer = torch.optim.Adam(model.parameters())
    model.loss_function(torch.rand(4, 1, 28, 28), torch.zeros(4, dtype=torch.long))["loss"].backward()
    optimizer.step()
    groups = optimizer.state_dict()["param_groups"]
    tensors = {f"state.{i}.{slot}": value.clone() for i, slots in optimizer.state_dict()["state"].items()
               for slot, value in slots.items()}
    edit(tensors)
    return {**good, "optimizer.safetensors": save(tensors, metadata={"param_groups": json.dumps(groups)})}


def lying_header(good: dict) -> dict:
    """model.safetensors whose header claims a 65536×8192 float tensor (2 GB) over a few bytes."""
    header = json.dumps({"decoder.out.weight": {"dtype": "F32", "shape": [65536, 8192], "data_offsets": [0, 16]}})
    return {**good, "model.safetensors": len(header).to_bytes(8, "little") + header.encode() + bytes(16)}


BAD = {
    "pickle": (lambda g: {**g, "model.pt": b"\x80\x04K\x01."}, "pickled PyTorch file"),
    "missing tensor": (lambda g: with_tensors(g, lambda t: t.pop(sorted(t)[0])), "missing: "),
    "extra tensor": (lambda g: with_tensors(g, lambda t: t.update(spy=torch.zeros(3))), "unexpected: spy"),
    "lying config": (lambda g: with_config(g, model__hidden=8192, model__image_shape=[1, 256, 256]),
                     "other shapes"),
    "lying header": (lying_header, "claims F32 \\[65536, 8192\\]"),
    "path in dataset": (lambda g: with_config(g, dataset="folder:/etc"), "is a path"),
    "path in train": (lambda g: with_config(g, train__data_root="/etc"), "train.data_root is a path"),
    "unknown kind": (lambda g: with_config(g, model__kind="gan"), "kind must be one of"),
    "unknown field": (lambda g: with_config(g, run_me="rm -rf /"), "unknown field"),
    "stray file": (lambda g: {**g, "notes.txt": b"hello"}, "'notes.txt' is not part of a VAE Studio checkpoint"),
    "no model": (lambda g: {"config.json": g["config.json"]}, "model.safetensors is missing"),
    "escaping path": (lambda g: {**g, "../config.json": g["config.json"]}, "leaves its folder"),
    "too many files": (lambda g: {**g, **{f"x{i}.md": b"" for i in range(MAX_CHECKPOINT_FILES)}}, "over the limit"),
    "zip bomb": (lambda g: {**g, "README.md": bytes(50_000_000)}, "zip bomb"),
    "nested config": (lambda g: {**g, "config.json": b"[" * 100_000 + b"]" * 100_000}, "nested too deeply"),
    "NaN weights": (lambda g: with_tensors(g, lambda t: t[sorted(t)[0]].fill_(float("nan"))), "NaN or infinite"),
    "null metric": (lambda g: with_config(g, metrics__test_loss=None), "must hold finite numbers"),
    "epochless history": (lambda g: with_config(g, history=[{"test_loss": 1.0}]), "each history entry its epoch"),
    "another dataset in train": (lambda g: with_config(g, train__dataset="folder:/usr/share"),
                                 "train.dataset .* is not the checkpoint's dataset"),
    "huge step_every": (lambda g: with_config(g, train__step_every=10**8), "step every must be between"),
    "seed a string": (lambda g: with_config(g, train__seed="abc"), "seed must be a number"),
    "unknown train setting": (lambda g: with_config(g, train__evil=1), "train has unknown setting"),
    "wrong class names": (lambda g: with_config(g, class_names=["a", "b", "c"]), "names 3 classes for a model of 10"),
    "renamed classes": (lambda g: with_config(g, class_names=list("abcdefghij")), "names its classes differently"),
    "fractional side": (lambda g: with_config(g, model__image_shape=[1, 28.7, 28]), "must be whole numbers"),
    "infinite loss": (lambda g: with_raw_config(g, b'"test_loss": ', b'"test_loss": Infinity, "x": '),
                      "finite numbers"),
    "long number": (lambda g: with_raw_config(g, b'"epochs_trained": 100', b'"epochs_trained": ' + b"9" * 5000),
                    "a number too long"),
    "NaN in Adam": (lambda g: with_optimizer(g, lambda state: state["state.0.exp_avg"].fill_(float("nan"))),
                    "a state Adam cannot have"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_every_bad_checkpoint_gets_one_sentence_and_the_server_carries_on(server, client, good, tmp_path, case):
    make, says = BAD[case]
    upload = zip_of(tmp_path / f"{case.replace(' ', '-')}.zip", make(dict(good)))
    with pytest.raises(Exception, match=says) as refused:
        client.predict(zip_file=handle_file(upload), api_name="/load_checkpoint")
    assert "\n" not in str(refused.value) and "Traceback" not in str(refused.value)
    assert pixels(client.predict(n=4, api_name="/sample")).shape == (62, 62)


def test_the_good_zip_is_accepted_and_a_lying_shape_allocates_nothing(server, client, good, tmp_path):
    models, run = client.predict(zip_file=handle_file(zip_of(tmp_path / "vae.zip", good)), api_name="/load_checkpoint")
    assert run.startswith("runs/") and "VAE** from `runs/" in models
    # Peak memory of the server process, reset just before the call (Linux's clear_refs 5):
    # a 2 GB claim, or a config asking for gigabytes of weights, must not move it.
    status = Path(f"/proc/{server.process.pid}/status")
    for case in ("lying header", "lying config"):
        Path(f"/proc/{server.process.pid}/clear_refs").write_text("5")
        before = _kb(status, "VmRSS")
        with pytest.raises(Exception, match=BAD[case][1]):
            client.predict(zip_file=handle_file(zip_of(tmp_path / "lie.zip", BAD[case][0](dict(good)))),
                           api_name="/load_checkpoint")
        assert _kb(status, "VmHWM") - before < 100_000, case


def _kb(status: Path, field: str) -> int:
    line = next(line for line in status.read_text().splitlines() if line.startswith(field))
    return int(line.split()[1])


def test_not_a_zip_and_no_file_are_refused_plainly(client, tmp_path):
    fake = tmp_path / "weights.zip"
    fake.write_bytes(b"not a zip at all")
    with pytest.raises(Exception, match="not a zip archive"):
        client.predict(zip_file=handle_file(fake), api_name="/load_checkpoint")
    with pytest.raises(Exception, match="Upload a checkpoint's .zip first"):
        client.predict(zip_file=None, api_name="/load_checkpoint")
    with pytest.raises(Exception, match="Pick a run to continue first"):
        client.predict(run=None, epochs=1, api_name="/continue_run")


def test_the_film_keeps_every_epoch_up_to_its_bound_and_writes_them_all():
    grid = np.zeros((32, 32), np.uint8)
    film = Film(max_frames=8)
    for epoch in range(1, 6):
        film.add(epoch, 100.0 / epoch, grid + epoch * 40)
    with Image.open(io.BytesIO(film.gif())) as gif:
        assert gif.n_frames == 5
    for epoch in range(6, 40):
        film.add(epoch, 1.0, grid + epoch)
    kept = [epoch for epoch, _, _ in film.frames]
    assert 4 <= len(kept) <= 8 and kept[0] == 1 and len(set(np.diff(kept))) == 1  # evenly spaced
    with pytest.raises(ValueError, match="no finished epoch"):
        Film().gif()


def test_an_uploads_optimizer_settings_are_ignored_and_a_doubled_file_is_refused(client, good, tmp_path):
    """Adam's moments come back; its hyperparameters are the continued run's own (amsgrad or betas of 2 would
    break or diverge the run)."""
    files = with_optimizer(dict(good), lambda state: None)
    header = json.loads(files["optimizer.safetensors"][8:8 + int.from_bytes(files["optimizer.safetensors"][:8],
                                                                            "little")])
    groups = json.loads(header["__metadata__"]["param_groups"])
    for group in groups:
        group.update(amsgrad=True, betas=[2.0, 2.0], eps=-1.0, maximize=True)
    state = load(files["optimizer.safetensors"])
    files["optimizer.safetensors"] = save(state, metadata={"param_groups": json.dumps(groups)})
    _, run = client.predict(zip_file=handle_file(zip_of(tmp_path / "odd-adam.zip", files)), api_name="/load_checkpoint")
    status = client.predict(run=run, epochs=1, api_name="/continue_run")[0]
    assert status.startswith("✅ Done") and "101" in status

    doubled = tmp_path / "doubled.zip"
    with zipfile.ZipFile(doubled, "w") as archive:
        for name, blob in [*good.items(), ("config.json", good["config.json"])]:
            archive.writestr(name, blob)
    with pytest.raises(Exception, match="holds config.json twice"):
        client.predict(zip_file=handle_file(doubled), api_name="/load_checkpoint")
