"""The app through its API, as a script against a shared link would use it: real server, real models."""

import math
import time

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image


def grid(path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("L"))


def tiles(rows: int, cols: int) -> tuple[int, int]:
    """Size of a make_grid picture of 28-px tiles with 2-px padding, as (height, width)."""
    return rows * 30 + 2, cols * 30 + 2


def test_sample_is_a_native_grid_and_seeded(client):
    a = grid(client.predict(n=64, temperature=1.0, seed=0, api_name="/sample"))
    assert a.shape == tiles(8, 8)
    assert np.array_equal(a, grid(client.predict(n=64, temperature=1.0, seed=0, api_name="/sample")))
    assert not np.array_equal(a, grid(client.predict(n=64, temperature=1.0, seed=1, api_name="/sample")))
    assert grid(client.predict(n=10, api_name="/sample")).shape == tiles(3, 4)  # square-ish: 4 a row
    assert grid(client.predict(n=400, api_name="/sample")).shape == tiles(20, 20)
    cold = grid(client.predict(n=64, temperature=0.0, seed=5, api_name="/sample"))
    assert (cold[2:30, 2:30] == cold[32:60, 32:60]).all()  # T = 0: every draw is the decoded origin


def test_conditional_and_all_digits(client):
    assert grid(client.predict(digit=3, n=16, seed=0, api_name="/conditional")).shape == tiles(4, 4)
    threes = grid(client.predict(digit=3, n=8, seed=2, api_name="/conditional"))
    sevens = grid(client.predict(digit=7, n=8, seed=2, api_name="/conditional"))
    assert np.abs(threes.astype(int) - sevens).mean() > 10
    assert grid(client.predict(styles=5, seed=0, api_name="/all_digits")).shape == tiles(10, 5)


def test_traverse_rows_are_latent_dims(client, digit_png):
    latent = 10  # the pretrained VAE
    out = grid(client.predict(span=3.0, steps=11, seed=0, api_name="/traverse"))
    assert out.shape == tiles(latent, 11)
    centre = out[:, 5 * 30 + 2 : 5 * 30 + 30]  # step 6 of 11 is the base code itself in every row
    assert all((centre[r * 30 + 2 : r * 30 + 30] == centre[2:30]).all() for r in range(latent))
    on_image = grid(client.predict(span=1.0, steps=5, seed=0, base="image", image=handle_file(digit_png[0]),
                                   api_name="/traverse"))
    assert on_image.shape == tiles(latent, 5)


def test_reconstruct_and_interpolate_follow_the_input(client, digit_png):
    pair = grid(client.predict(image=handle_file(digit_png[0]), api_name="/reconstruct")).astype(float)
    assert pair.shape == tiles(1, 2)
    seen, recon = pair[2:30, 2:30], pair[2:30, 32:60]
    assert seen.mean() < 128  # the dark-on-light upload was turned into MNIST's white-on-black
    assert np.corrcoef(seen.ravel(), recon.ravel())[0, 1] > 0.6
    path = grid(client.predict(image_a=handle_file(digit_png[0]), image_b=handle_file(digit_png[1]), steps=6,
                               api_name="/interpolate")).astype(float)
    assert path.shape == tiles(1, 6)
    first, last = path[2:30, 2:30], path[2:30, 152:180]
    assert np.abs(first - recon).mean() < 5  # step 0 decodes A's own code
    assert np.abs(first - last).mean() > 10


def test_latent_map_returns_labelled_points(client):
    points, text = client.predict(model="active VAE", api_name="/latent_map")
    assert len(points) == 500 and set(points[0]) == {"x", "y", "label"}
    assert {p["label"] for p in points} == {str(d) for d in range(10)}
    assert "test images" in text and "principal components" in text  # the seed VAE has 10 dimensions
    points, text = client.predict(model="2-D VAE (pretrained)", api_name="/latent_map")
    assert "z₁, z₂" in text and "weights/vae2d" in text


@pytest.mark.parametrize("kwargs, says", [
    (dict(n=0), "minimum"), (dict(n=401), "maximum"), (dict(n="lots"), "must be a number"),
    (dict(n=2.5), "whole number"), (dict(temperature=-1), "minimum"),
])
def test_bad_sample_input_gets_a_plain_error_and_the_server_carries_on(client, kwargs, says):
    with pytest.raises(Exception, match=says):
        client.predict(**kwargs, api_name="/sample")
    assert grid(client.predict(n=4, api_name="/sample")).shape == tiles(2, 2)


def test_sample_draws_from_the_model_asked_for_and_says_which_can(client):
    vae, cvae = (grid(client.predict(n=16, seed=0, model=m, api_name="/sample")) for m in ("vae", "cvae"))
    assert vae.shape == cvae.shape == tiles(4, 4) and not np.array_equal(vae, cvae)
    with pytest.raises(Exception, match="scvae model cannot do that; its models that can: vae, cvae"):
        client.predict(n=4, model="scvae", api_name="/sample")  # a completion model has no prior to draw from
    with pytest.raises(Exception, match="model must be one of vae, cvae, not 'gan'"):
        client.predict(n=4, model="gan", api_name="/sample")
    with pytest.raises(Exception, match="Model: a name, such as vae"):
        client.predict(n=4, model=3, api_name="/sample")


def test_bad_digit_steps_and_files_get_plain_errors(client, tmp_path, digit_png):
    with pytest.raises(Exception, match="maximum"):
        client.predict(digit=10, api_name="/conditional")
    with pytest.raises(Exception, match="maximum"):
        client.predict(image_a=handle_file(digit_png[0]), image_b=handle_file(digit_png[1]), steps=51,
                       api_name="/interpolate")
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture")
    with pytest.raises(Exception, match="not an image"):
        client.predict(image=handle_file(text), api_name="/reconstruct")
    huge = tmp_path / "huge.png"
    Image.new("L", (5000, 4000)).save(huge)  # 20 megapixels, a few kB on disk
    with pytest.raises(Exception, match="megapixels"):
        client.predict(image=handle_file(huge), api_name="/reconstruct")
    blank = tmp_path / "blank.png"
    Image.new("L", (50, 50), 255).save(blank)
    with pytest.raises(Exception, match="blank"):
        client.predict(image=handle_file(blank), api_name="/reconstruct")
    assert grid(client.predict(image=handle_file(digit_png[0]), api_name="/reconstruct")).shape == tiles(1, 2)


@pytest.mark.slow
def test_training_streams_then_becomes_the_active_model_and_stop_is_prompt(client):
    before = grid(client.predict(n=16, seed=3, api_name="/sample"))
    job = client.submit(kind="vae", dataset="mnist", epochs=1, latent=3, batch_size=128, lr=1e-3,
                        api_name="/train")
    updates = list(job)
    status, progress, loss, parts, sample_grid, recon, download = updates[-1]
    assert status.startswith("✅ Done") and "offline subset" in status
    assert "1/1 epochs done" in progress
    series = {row[2] for row in loss["data"]}
    assert {"train loss", "test loss"} <= series
    for frame in (loss, parts):  # a NaN among a series' points cuts its line there: none may be
        for name in {row[2] for row in frame["data"]}:
            values = [row[1] for row in frame["data"] if row[2] == name]
            assert all(v is not None and math.isfinite(v) for v in values), (name, values)
    assert min(row[0] for row in loss["data"] if row[2] == "train loss") < 1  # the first epoch is drawn
    assert {"recon (train)", "KL (train)"} <= {row[2] for row in parts["data"]}
    assert any(u[4] for u in updates) and grid(sample_grid).shape == tiles(8, 8)
    assert download.endswith(".zip")
    after = grid(client.predict(n=16, seed=3, api_name="/sample"))
    assert not np.array_equal(before, after)  # the sample tab now draws from the new model
    assert grid(client.predict(span=3.0, steps=4, seed=0, api_name="/traverse")).shape == tiles(3, 4)

    long_run = client.submit(kind="cvae", dataset="mnist", epochs=200, latent=4, batch_size=8, lr=1e-3,
                             api_name="/train")
    deadline = time.monotonic() + 60
    while not long_run.outputs() and time.monotonic() < deadline:
        time.sleep(0.2)
    with pytest.raises(Exception, match="started nothing"):  # refused as busy: told nothing of a run not its own
        client.predict(kind="vae", dataset="mnist", epochs=1, latent=2, batch_size=64, lr=1e-3, api_name="/train")
    assert grid(client.predict(n=4, api_name="/sample")).shape == tiles(2, 2)  # sampling answers meanwhile
    stranger = Client(client.src, verbose=False)  # another visitor's Stop leaves the run alone
    refused = stranger.predict(api_name="/stop")
    assert "started in another page" in refused and "within 60 minutes at the latest" in refused
    time.sleep(1.5)
    assert not long_run.done()
    asked = time.monotonic()
    assert "Stopping" in client.predict(api_name="/stop")
    long_run.result(timeout=10)
    assert time.monotonic() - asked < 2.5
    assert long_run.outputs()[-1][0].startswith("⏹ Stopped")
    assert "No run is in progress" in client.predict(api_name="/stop")


def test_bad_training_settings_are_refused_plainly(client):
    with pytest.raises(Exception, match="less than minimum value 1"):
        client.predict(kind="vae", dataset="mnist", epochs=1, latent=0, batch_size=64, lr=1e-3, api_name="/train")
    with pytest.raises(Exception, match="Dataset must be one of 'mnist'"):
        client.predict(kind="vae", dataset="cifar", epochs=1, latent=2, batch_size=64, lr=1e-3, api_name="/train")


@pytest.mark.slow
def test_a_closed_browser_does_not_end_the_run_and_an_early_stop_keeps_the_old_model(client):
    # long enough (seconds) that the follower below surely finds it still running
    job = client.submit(kind="vae", dataset="mnist", epochs=6, latent=5, batch_size=32, lr=1e-3, api_name="/train")
    deadline = time.monotonic() + 60
    while not job.outputs() and time.monotonic() < deadline:
        time.sleep(0.1)
    job.cancel()  # what closing the tab does to its stream
    with pytest.raises(Exception, match="started nothing"):  # still running without its page
        client.predict(kind="vae", dataset="mnist", epochs=1, latent=2, batch_size=64, lr=1e-3, api_name="/train")
    while time.monotonic() < deadline + 60:  # /adopt_run answers once the run has left a model
        try:
            client.predict(api_name="/adopt_run")
            break
        except Exception:  # noqa: BLE001 - "The last run left no model" while it trains
            time.sleep(0.5)
    # the abandoned run went on to the end: its latent-5 model is this session's
    assert grid(client.predict(span=1.0, steps=2, seed=0, api_name="/traverse")).shape == tiles(5, 2)

    before = grid(client.predict(n=8, seed=1, api_name="/sample"))
    early = client.submit(kind="vae", dataset="mnist", epochs=5, latent=7, batch_size=1, lr=1e-3,
                          api_name="/train")
    while not early.outputs() and time.monotonic() < deadline + 60:
        time.sleep(0.1)
    client.predict(api_name="/stop")
    client.predict(api_name="/stop")  # twice is harmless
    early.result(timeout=30)
    assert "No epoch had finished" in early.outputs()[-1][0]
    assert np.array_equal(before, grid(client.predict(n=8, seed=1, api_name="/sample")))  # nothing replaced


@pytest.mark.slow
def test_share_without_network_says_so_in_one_line_and_serves_locally(tmp_path):
    from testing.appserver import Server

    server = Server(tmp_path / "runs", tmp_path / "share.log", args=("--share",))
    try:
        time.sleep(1)
        lines = (tmp_path / "share.log").read_text().splitlines()
        share_lines = [line for line in lines if "share" in line.lower()]
        assert share_lines == [
            "Share link unavailable: Gradio's share server cannot be reached (no network); serving locally only."]
        assert grid(Client(server.url, verbose=False).predict(n=4, api_name="/sample")).shape == tiles(2, 2)
    finally:
        server.close()


def test_an_empty_upload_or_drawing_asks_for_a_digit(client, digit_png):
    with pytest.raises(Exception, match="Upload or draw a picture first"):
        client.predict(image=None, api_name="/reconstruct")
    with pytest.raises(Exception, match="image B is empty"):
        client.predict(image_a=handle_file(digit_png[0]), image_b=None, api_name="/interpolate")
    with pytest.raises(Exception, match="base digit|Upload or draw"):
        client.predict(base="image", image=None, api_name="/traverse")


def test_complete_keeps_the_given_quadrant_and_varies_by_seed(client, digit_png):
    image = handle_file(digit_png[0])
    a = grid(client.predict(image=image, given="top-left", n=16, seed=0, api_name="/complete"))
    b = grid(client.predict(image=image, given="top-left", n=16, seed=1, api_name="/complete"))
    assert a.shape == tiles(2, 10)  # the given part, the baseline's answer, 16 completions; 10 a row

    def tile(g, i):
        top, left = 2 + 30 * (i // 10), 2 + 30 * (i % 10)
        return g[top : top + 28, left : left + 28]

    given = tile(a, 0)[:14, :14]
    assert set(np.unique(given)) <= {0, 255} and given.max() == 255  # binarized ink, as the model sees it
    for g in (a, b):
        assert all(np.array_equal(tile(g, i)[:14, :14], given) for i in range(1, 18))  # the given part is kept
    assert np.array_equal(tile(a, 1), tile(b, 1))  # the baseline: one answer whatever the seed
    assert np.abs(tile(a, 2).astype(int) - tile(b, 2)).sum() > 0  # another seed, another completion
    completions = np.stack([tile(a, i)[14:, :].astype(float) for i in range(2, 18)])
    assert completions.std(0).mean() > 2  # completions of one input differ from each other
    two = grid(client.predict(image=image, given="top-left+bottom-left", n=4, seed=0, api_name="/complete"))
    assert two.shape == tiles(1, 6)


def test_complete_refuses_bad_quadrants(client, digit_png):
    for given in ("middle", "top-left+top-right+bottom-left+bottom-right", ""):
        with pytest.raises(Exception, match="given must name 1 to 3 of the quadrants"):
            client.predict(image=handle_file(digit_png[0]), given=given, api_name="/complete")
    with pytest.raises(Exception, match="Upload or draw a picture first"):
        client.predict(image=None, given="top-left", api_name="/complete")
