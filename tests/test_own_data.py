"""Your own pictures (a folder, an uploaded zip), Frey Face, and the How-it-works numbers."""

import json
import os
import zipfile

import numpy as np
import pytest
import torch
from gradio_client import handle_file
from PIL import Image

from testing import ROOT
from testing.cli import run_cli as cli
from vae_core.checkpoint import load_checkpoint
from vae_core.datasets import DataError, load_dataset, split_deterministic
from vae_core.datasets.folders import MAX_IMAGES, load_image_folder, load_image_zip
from vae_core.images import load_digit
from vae_core.losses import term_balance


@pytest.fixture(scope="module")
def picture_folder(tmp_path_factory, subset):
    """Three classes of real digits as dark-on-light 40×56 PNGs (portrait), plus two files that are not pictures."""
    root = tmp_path_factory.mktemp("pictures") / "digits"
    for digit in range(3):
        folder = root / f"class-{digit}"
        folder.mkdir(parents=True)
        for i in np.flatnonzero(subset.train_labels == digit)[:40]:
            Image.fromarray(255 - subset.train_images[i, 0]).resize((40, 56)).save(folder / f"{i}.png")
    (root / "class-0" / "notes.txt").write_text("not a picture")
    (root / "class-1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return root


def zip_folder(folder, path):
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(folder.parent).as_posix())  # wrapped in one top folder
    return path


def test_folder_labels_split_and_skips(picture_folder):
    data = load_image_folder(picture_folder, (28, 20))
    assert data.class_names == ("class-0", "class-1", "class-2")
    assert data.image_shape == (1, 28, 20)
    assert len(data.train_images) + len(data.test_images) == 120
    assert sorted(np.bincount(data.test_labels)) == [4, 4, 4]  # stratified tenth of each class
    assert "skipped 2 file(s)" in data.note and "notes.txt" in data.note and "broken.png" in data.note
    # the light background pads the sides, so the borders stay background-coloured (light), not black
    assert data.train_images[:, 0, :, 0].mean() > 200
    again = load_image_folder(picture_folder, (28, 20))
    assert np.array_equal(again.test_images, data.test_images)  # deterministic split


def test_unlabelled_folder_offers_only_the_vae(picture_folder, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i, file in enumerate(sorted(picture_folder.rglob("*.png"))[:10]):
        (flat / f"{i}.png").write_bytes(file.read_bytes())
    data = load_image_folder(flat)
    assert data.n_classes == 0 and "no classes" in data.note
    result = cli("train", "--kind", "cvae", "--dataset", f"folder:{flat}", "--epochs", "1", "--out", tmp_path / "o")
    assert result.returncode == 2 and "a cvae needs labelled data" in result.stderr


def test_split_is_stratified_and_needs_a_test_image():
    labels = np.repeat([0, 1, 2], [20, 5, 1])
    train, test = split_deterministic(labels)
    assert sorted(np.concatenate([train, test])) == list(range(26))
    assert list(np.bincount(labels[test], minlength=3)) == [2, 1, 0]
    with pytest.raises(DataError, match="too few images"):
        split_deterministic(np.array([0, 1]))


@pytest.mark.slow
def test_cli_trains_a_cvae_on_a_folder_at_its_own_size(picture_folder, tmp_path):
    out = tmp_path / "ckpt"
    result = cli("train", "--kind", "cvae", "--dataset", f"folder:{picture_folder}", "--image-size", "28x20",
                 "--epochs", "3", "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    epochs = [e for e in map(json.loads, result.stdout.splitlines()) if e["event"] == "epoch"]
    assert epochs[-1]["test_loss"] < epochs[0]["test_loss"]
    ckpt = load_checkpoint(out)
    assert ckpt.model.config.image_shape == (1, 28, 20) and ckpt.model.config.n_classes == 3
    assert ckpt.info["class_names"] == ["class-0", "class-1", "class-2"]
    npy = tmp_path / "s.npy"
    assert cli("sample", out, "--digit", "2", "--n", "5", "--npy", npy).returncode == 0
    assert np.load(npy).shape == (5, 28, 20)
    evaluated = cli("evaluate", out, "--iwae-k", "5", "--json", "--dataset", f"folder:{picture_folder}")
    assert evaluated.returncode == 0, evaluated.stderr
    assert np.isfinite(json.loads(evaluated.stdout)["iwae_nll"])
    unnamed = cli("evaluate", out, "--iwae-k", "5")  # config.json alone never picks a folder to read
    assert unnamed.returncode == 2 and "name them with --dataset folder:PATH" in unnamed.stderr


@pytest.mark.slow
def test_conv_trains_on_32x32(picture_folder, tmp_path):
    result = cli("train", "--arch", "conv", "--dataset", f"folder:{picture_folder}", "--image-size", "32",
                 "--epochs", "1", "--out", tmp_path / "c")
    assert result.returncode == 0, result.stderr
    assert load_checkpoint(tmp_path / "c").model.config.image_shape == (1, 32, 32)


@pytest.mark.slow
def test_dangerous_archives_are_refused(tmp_path, picture_folder):
    escaping = tmp_path / "escape.zip"
    with zipfile.ZipFile(escaping, "w") as archive:
        archive.writestr("ok/a.png", (picture_folder / "class-0" / os.listdir(picture_folder / "class-0")[0])
                         .read_bytes())
        archive.writestr("../../etc/evil.png", b"x")
    with pytest.raises(DataError, match="leaves its folder"):
        load_image_zip(escaping)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a/huge.png", bytes(200_000_000))
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(DataError, match="zip bomb"):
        load_image_zip(bomb)
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as archive:
        for i in range(MAX_IMAGES + 1):
            archive.writestr(f"{i}.png", b"")
    with pytest.raises(DataError, match="over the limit"):
        load_image_zip(many)
    fake = tmp_path / "fake.zip"
    fake.write_text("just text")
    with pytest.raises(DataError, match="not a zip archive"):
        load_image_zip(fake)


def test_folder_link_outside_is_refused(tmp_path, picture_folder):
    folder = tmp_path / "linked"
    folder.mkdir()
    (folder / "outside.png").symlink_to(next(picture_folder.rglob("*.png")))
    with pytest.raises(DataError, match="links outside"):
        load_image_folder(folder)


@pytest.mark.slow
def test_frey_face_offline_message_and_local_file(tmp_path):
    from scipy.io import savemat

    with pytest.raises(DataError, match="could not be downloaded .no network.*--data-root"):
        load_dataset("frey-face")
    # The real file's layout: `ff`, one 28×20 face per column, uint8. Its pixels here are random.
    faces = np.random.default_rng(0).integers(0, 256, (560, 1965)).astype(np.uint8)
    savemat(tmp_path / "frey_rawface.mat", {"ff": faces})
    data = load_dataset("frey-face", tmp_path)
    assert data.image_shape == (1, 28, 20) and len(data.train_images) + len(data.test_images) == 1965
    assert np.array_equal(data.train_images[0, 0], faces[:, 0].reshape(28, 20))
    result = cli("train", "--dataset", "frey-face", "--data-root", tmp_path, "--epochs", "1", "--out", tmp_path / "f")
    assert result.returncode == 0, result.stderr
    assert load_checkpoint(tmp_path / "f").model.config.likelihood == "gaussian"  # the paper's choice
    savemat(tmp_path / "frey_rawface.mat", {"ff": faces[:, ::-1].copy()})  # a changed file is noticed
    with pytest.raises(DataError, match="no longer matches"):
        load_dataset("frey-face", tmp_path)


# -- through the app ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    """A server of its own: training on uploads replaces the active models, which other tests rely on."""
    from gradio_client import Client

    from testing.appserver import Server

    folder = tmp_path_factory.mktemp("own-server")
    srv = Server(folder / "runs", folder / "app.log")
    yield srv, Client(srv.url, verbose=False)
    srv.close()


@pytest.mark.slow
def test_uploaded_zip_trains_a_cvae_that_samples_at_its_size(own_server, picture_folder, tmp_path):
    _, client = own_server
    archive = zip_folder(picture_folder, tmp_path / "digits.zip")
    status = client.predict(kind="cvae", dataset="upload", epochs=2, batch_size=32, zip_file=handle_file(archive),
                            height=28, width=20, api_name="/train")[0]
    assert "Done" in status and "3 classes from subfolder names" in status and "skipped 2" in status
    with Image.open(client.predict(digit=2, n=8, seed=0, api_name="/conditional")) as im:
        assert im.size == (3 * 22 + 2, 3 * 30 + 2)  # 8 as a square-ish 3×3; tiles 20 wide × 28 high, 2-px padding
    with Image.open(client.predict(styles=4, seed=0, api_name="/all_digits")) as im:
        assert im.size == (4 * 22 + 2, 3 * 30 + 2)  # one row per uploaded class
    # a VAE on the same upload: the latent map encodes that upload's test pictures, by class name
    client.predict(kind="vae", dataset="upload", epochs=1, zip_file=handle_file(archive), height=28, width=20,
                   api_name="/train")
    points, text = client.predict(model="active VAE", api_name="/latent_map")
    assert "12 of 12 test images" in text
    assert {p["label"] for p in points} == {"class-0", "class-1", "class-2"}


def test_bad_uploads_get_plain_messages(own_server, tmp_path, picture_folder):
    from gradio_client.exceptions import AppError

    _, client = own_server
    escaping = tmp_path / "escape.zip"
    with zipfile.ZipFile(escaping, "w") as archive:
        archive.writestr("../evil.png", b"x")
    empty = tmp_path / "text.zip"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("readme.txt", "hello")
    flat = tmp_path / "flat.zip"
    with zipfile.ZipFile(flat, "w") as archive:
        for i, file in enumerate(sorted(picture_folder.rglob("*.png"))[:5]):
            archive.write(file, f"{i}.png")
    for path, model, message in [(escaping, "vae", "leaves its folder"), (empty, "vae", "found 0 readable"),
                                 (flat, "cvae", "0 class subfolders, and a CVAE needs 2")]:
        with pytest.raises(AppError, match=message):
            client.predict(kind=model, dataset="upload", epochs=1, zip_file=handle_file(path), api_name="/train")
    with pytest.raises(AppError, match="Upload a .zip"):
        client.predict(dataset="upload", epochs=1, api_name="/train")
    with pytest.raises(AppError, match="less than minimum value 8"):
        client.predict(dataset="upload", zip_file=handle_file(flat), height=4, api_name="/train")


@pytest.mark.slow
def test_how_it_works_numbers_are_the_training_loss(tmp_path, digit_png):
    """The tab's terms equal VAE.loss_function's for the same picture and the same ε (seed)."""
    from gradio_client import Client

    from testing.appserver import Server

    # a fresh server, whose VAE is the pretrained one (other tests' servers train and activate their own)
    server = Server(tmp_path / "runs", tmp_path / "app.log")
    try:
        check_explain(Client(server.url, verbose=False), digit_png)
    finally:
        server.close()


def check_explain(client, digit_png):
    from ui.catalogue import PRETRAINED

    model = load_checkpoint(ROOT / "weights" / PRETRAINED["vae"]).model
    x = load_digit(str(digit_png[0]))
    for seed in (0, 7):
        picture, table, _, terms, text = client.predict(image=handle_file(digit_png[0]), kind="vae", beta=1.0,
                                                        reduction="sum", seed=seed, api_name="/explain")
        expected = model.loss_function(x, generator=torch.Generator().manual_seed(seed))
        assert terms["reconstruction_nats"] == pytest.approx(expected["recon"].item(), rel=1e-5)
        assert terms["kl_nats"] == pytest.approx(expected["kl"].item(), rel=1e-5)
        assert terms["loss"] == pytest.approx(expected["loss"].item(), rel=1e-5)
        kl_column = [row[-1] for row in table["data"]]
        assert sum(kl_column) == pytest.approx(terms["kl_nats"], abs=1e-3)
    mean = client.predict(image=handle_file(digit_png[0]), kind="vae", beta=2.0, reduction="mean", seed=7,
                          api_name="/explain")[3]
    assert mean["reconstruction_term"] == pytest.approx(terms["reconstruction_nats"] / 784, rel=1e-6)
    assert mean["kl_term"] == pytest.approx(2 * terms["kl_nats"], rel=1e-6)
    assert mean["effective_beta"] == 2 * 784 and mean["kl_share"] > terms["kl_share"]


def test_term_balance():
    summed = term_balance(30.0, 10.0, 1.0, "sum", 784)
    assert summed["loss"] == 40.0 and summed["kl_share"] == 0.25
    averaged = term_balance(784.0, 1.0, 1.0, "mean", 784)
    assert averaged["loss"] == 2.0 and averaged["kl_share"] == 0.5
    with pytest.raises(ValueError, match="reduction"):
        term_balance(1.0, 1.0, 1.0, "median", 784)


def test_a_model_trained_on_28x28_pictures_sees_uploads_as_pictures_not_digits(own_server, picture_folder, tmp_path):
    """The preparation comes from the model's config, not from its image size happening to be MNIST's."""
    from vae_core.images import load_picture

    _, client = own_server
    archive = zip_folder(picture_folder, tmp_path / "digits28.zip")
    status = client.predict(kind="vae", dataset="upload", epochs=1, zip_file=handle_file(archive), height=28,
                            width=28, api_name="/train")[0]
    assert "Done" in status
    upload = next(picture_folder.rglob("*.png"))  # 40×56, dark ink on a light background
    with Image.open(client.predict(image=handle_file(upload), api_name="/reconstruct")) as im:
        seen = np.asarray(im.convert("L"))[2:30, 2:30].astype(float)
    padded = load_picture(str(upload), (28, 28))[0, 0].numpy() * 255
    digit = load_digit(str(upload))[0, 0].numpy() * 255
    assert np.abs(seen - padded).max() <= 1  # exactly as its training pictures were prepared
    assert np.abs(seen - digit).mean() > 50  # not inverted, cropped and centred like an MNIST digit
    assert load_checkpoint(max((p for p in own_server[0].runs_dir.glob("*-vae-*") if p.is_dir()),
                               key=lambda p: p.stat().st_mtime)) \
        .model.config.preparation == "padded-picture"


def test_a_cvae_on_twelve_classes_reaches_and_names_every_class(own_server, subset, tmp_path):
    _, client = own_server
    archive = tmp_path / "twelve.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for k in range(12):
            for i in range(4):
                path = tmp_path / "p.png"
                Image.fromarray(subset.train_images[(k % 10) * 450 + i, 0]).save(path)
                z.write(path, f"shape-{k:02d}/{i}.png")
    status = client.predict(kind="cvae", dataset="upload", epochs=1, zip_file=handle_file(archive), api_name="/train")
    assert "Done" in status[0]
    assert client.predict(api_name="/classes") == [f"shape-{k:02d}" for k in range(12)]
    with Image.open(client.predict(digit=11, n=4, seed=0, api_name="/conditional")) as im:
        assert im.size == (2 * 30 + 2, 2 * 30 + 2)  # class 11 exists for this model (4 as a square 2×2)
    with pytest.raises(Exception, match="maximum"):
        client.predict(digit=12, n=4, api_name="/conditional")
