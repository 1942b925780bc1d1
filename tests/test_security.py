"""What a stranger's request can and cannot make the server do, tried through raw HTTP."""

import numpy as np
import pytest
from PIL import Image

from testing.rawapi import call
from ui.handler import NOT_AN_UPLOAD


def test_a_payload_naming_a_server_file_is_refused_the_same_whether_or_not_it_exists(server, tmp_path):
    secret = tmp_path / "server-side.png"  # a real picture on the server, outside Gradio's upload folder
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(secret)
    answers = {}
    for path in (str(secret), str(tmp_path / "nothing-here.png"), "weights/README.md", "../../etc/passwd"):
        for endpoint, data in [("reconstruct", [{"path": path}]),
                               ("traverse", [3.0, 11, 0, "image",
                                             {"path": path, "meta": {"_type": "gradio.FileData"}}]),
                               ("train", ["vae", "upload", 1, 10, 128, 1e-3, "mlp", 200, "mse", 1.0, 0, 0,
                                          {"path": path}, 28, 28])]:
            kind, message = call(server.url, endpoint, data)
            assert kind == "error", (endpoint, path, message)
            answers.setdefault(endpoint, set()).add(str(message))
    # one answer per way of asking, whatever the path: nothing about existence, size or the server's folders
    assert all(len(said) == 1 for said in answers.values()), answers
    assert NOT_AN_UPLOAD in answers["reconstruct"].pop()  # the image inputs' own check
    for said in answers.values():  # Gradio's refusals (a File payload without its marker): generic
        assert not any(str(tmp_path) in m or "/work" in m or "Cannot move" in m or "passwd" in m for m in said)


def blank_png(side: int) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("L", (side, side), 255).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.slow
def test_a_small_zip_of_huge_pictures_is_refused_from_headers(client, tmp_path):
    """30 blank 3,000×3,000 PNGs are 270 megapixels decoded but under 1 MB zipped."""
    import zipfile

    import pytest
    from gradio_client import handle_file

    from vae_core.datasets import DataError, load_image_zip

    bomb = tmp_path / "pixels.zip"
    picture = blank_png(3000)
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(30):
            archive.writestr(f"a/{i}.png", picture)
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(DataError, match="megapixels"):
        load_image_zip(bomb)
    with pytest.raises(Exception, match="megapixels"):
        client.predict(kind="vae", dataset="upload", epochs=1, zip_file=handle_file(bomb), api_name="/train")
    assert client.predict(api_name="/stop") == "No run is in progress."  # refused before any run began


def test_an_encrypted_zip_gets_one_plain_sentence(tmp_path):
    import zipfile

    import pytest

    from vae_core.datasets import DataError, load_image_zip

    locked = tmp_path / "locked.zip"
    with zipfile.ZipFile(locked, "w") as archive:
        for i in range(3):
            archive.writestr(f"a/{i}.png", blank_png(28))
    raw = bytearray(locked.read_bytes())  # set the "encrypted" bit, as a zip made with a password has it
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = raw.find(signature)
        while at >= 0:
            raw[at + offset] |= 0x1
            at = raw.find(signature, at + 4)
    locked.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="encrypted; zip it again without a password"):
        load_image_zip(locked)


def test_a_phone_photo_is_seen_upright_and_a_thin_strip_is_refused(tmp_path, subset):
    import pytest

    from vae_core.images import ImageError, load_digit

    upright = Image.fromarray(255 - subset.test_images[3, 0]).resize((112, 112))
    upright.save(tmp_path / "upright.png")
    stored = upright.rotate(90, expand=True)  # a camera's raw pixels, turned; EXIF says how to show them
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    stored.save(tmp_path / "phone.png", exif=exif)
    seen, expected = load_digit(str(tmp_path / "phone.png")), load_digit(str(tmp_path / "upright.png"))
    assert (seen - expected).abs().max() < 1e-6
    assert (load_digit(str(tmp_path / "upright.png")) - expected).abs().max() < 1e-6
    Image.new("L", (5, 300), 0).save(tmp_path / "strip.png")
    with pytest.raises(ImageError, match="too thin"):
        load_digit(str(tmp_path / "strip.png"))


def test_two_uploads_with_the_same_name_are_two_datasets(tmp_path, subset):
    import zipfile

    from ui.data_cache import DataCache

    cache = DataCache()
    names = []
    for n_classes in (2, 3):
        archive = tmp_path / f"set{n_classes}" / "digits.zip"
        archive.parent.mkdir()
        with zipfile.ZipFile(archive, "w") as z:
            for digit in range(n_classes):
                for i in range(4):
                    path = tmp_path / "p.png"
                    Image.fromarray(subset.train_images[digit * 450 + i, 0]).save(path)
                    z.write(path, f"{digit}/{i}.png")
        names.append(cache.upload(str(archive), (28, 28), "digits.zip")[0].load())
    assert names[0].name != names[1].name and (names[0].n_classes, names[1].n_classes) == (2, 3)
    assert all(data.name.startswith("zip:digits.zip") for data in names)


def test_an_uploads_pictures_are_read_inside_the_run_with_progress_and_stop_works_then(client, tmp_path):
    import io
    import time
    import zipfile

    from gradio_client import handle_file

    gradient = np.tile(np.linspace(0, 255, 600, dtype=np.uint8), (600, 1))
    buffer = io.BytesIO()
    Image.fromarray(gradient).save(buffer, format="PNG")
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as z:  # 600 pictures of 600×600: seconds of decoding, 216 megapixels
        for i in range(600):
            z.writestr(f"{i % 2}/{i}.png", buffer.getvalue())
    job = client.submit(kind="vae", dataset="upload", epochs=1, zip_file=handle_file(archive), api_name="/train")
    deadline = time.monotonic() + 60
    while not any("Reading your pictures" in out[0] for out in job.outputs()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any("Reading your pictures" in out[0] for out in job.outputs())  # the read is part of the run
    asked = time.monotonic()
    assert "Stopping" in client.predict(api_name="/stop")  # a run exists while its pictures are read
    job.result(timeout=30)
    assert time.monotonic() - asked < 3
    assert job.outputs()[-1][0].startswith("⏹ Stopped. No epoch had finished")


def test_wrong_typed_payloads_get_sentences_without_objects_or_paths(server):
    for endpoint, data in [("sample", [{"x": 1}, 1.0, 0]), ("sample", [[1, 2], 1.0, 0]),
                           ("conditional", ["three", 8, 0]), ("complete", [None, 5, 16, 0])]:
        kind, message = call(server.url, endpoint, data)
        assert kind == "error", (endpoint, message)
        text = str(message)
        assert "0x" not in text and "object at" not in text and "/tmp" not in text and "/work" not in text, text


@pytest.mark.slow
def test_a_tiny_unlabelled_upload_still_maps_its_latent_space(client, tmp_path, subset):
    import zipfile

    from gradio_client import handle_file

    archive = tmp_path / "three.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for i in range(3):
            path = tmp_path / "p.png"
            Image.fromarray(subset.train_images[i, 0]).save(path)
            z.write(path, f"{i}.png")
    assert "Done" in client.predict(kind="vae", dataset="upload", epochs=1, zip_file=handle_file(archive),
                                    api_name="/train")[0]
    points, text = client.predict(model="active VAE", api_name="/latent_map")
    assert len(points) == 1 and "1 of 1 test images" in text


def test_refused_input_leaves_no_traceback_in_the_server_log(server, client, tmp_path):
    import zipfile

    import pytest
    from gradio_client import handle_file

    log = server.log.name
    before = len(open(log).read())
    Image.new("L", (5, 300)).save(tmp_path / "thin.png")
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("readme.txt", "no pictures")
    for kwargs in [dict(n=0, api_name="/sample"), dict(digit=99, api_name="/conditional"),
                   dict(image=handle_file(tmp_path / "thin.png"), api_name="/reconstruct"),
                   dict(kind="vae", dataset="upload", epochs=1, zip_file=handle_file(empty), api_name="/train")]:
        with pytest.raises(Exception):  # noqa: B017 - each is refused; what matters here is the log
            client.predict(**kwargs)
    client.predict(n=4, api_name="/sample")
    assert "Traceback" not in open(log).read()[before:]  # bad input is no fault of the server's


def test_a_damaged_zip_gets_one_plain_sentence(tmp_path):
    import zipfile

    import pytest

    from vae_core.datasets import DataError, load_image_zip

    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(damaged, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(3):
            archive.writestr(f"a/{i}.png", blank_png(28))
    raw = bytearray(damaged.read_bytes())
    header = raw.find(b"PK\x03\x04")
    raw[header + 30 + len("a/0.png") + 5] ^= 0xFF  # a byte inside the first member's compressed data
    damaged.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="damaged"):
        load_image_zip(damaged)


@pytest.mark.slow
def test_the_zip_survey_unpacks_only_headers(tmp_path):
    """990 members of 1 MB of zeros each (a 1 MB zip) are surveyed without unpacking a gigabyte."""
    import zipfile

    from vae_core.datasets import ZipUpload

    archive = tmp_path / "zeros.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(990):
            z.writestr(f"a/{i}.png", bytes(1_000_000))
        for i in range(2):
            z.writestr(f"a/real{i}.png", blank_png(28))
    unpacked = []
    original = zipfile.ZipExtFile.read

    def counting(self, n=-1):  # counts what zipfile itself hands out; nothing of ours is replaced
        data = original(self, n)
        unpacked.append(len(data))
        return data

    zipfile.ZipExtFile.read = counting
    try:
        assert ZipUpload(str(archive), (28, 28), "zeros.zip").survey() == 0
    finally:
        zipfile.ZipExtFile.read = original
    assert sum(unpacked) < 100_000_000  # under 100 MB of the 990 MB the members hold


def test_a_drawings_picture_is_size_checked_before_it_is_decoded(server, tmp_path):
    """The drawing pad's private event is reachable through the queue: its picture is checked like any upload."""
    from testing.rawapi import fn_index, join, upload

    huge = tmp_path / "huge.png"  # 144 megapixels in 170 kB: decoding it would take seconds and 4.5 GB
    Image.new("L", (12000, 12000), 255).save(huge)
    event = fn_index(server.url, "sketch_to_image")
    answers = []
    for composite in ({"path": upload(server.url, str(huge)), "meta": {"_type": "gradio.FileData"}},
                      {"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}}):
        message = join(server.url, event, [{"background": None, "layers": [], "composite": composite}])
        assert message["success"] is False
        answers.append(message["output"]["error"])
    assert "megapixels" in answers[0] and answers[1] == NOT_AN_UPLOAD


def test_gradios_own_refusals_become_sentences_without_tracebacks(server, tmp_path):
    """Payloads that Gradio itself refuses before any handler runs: a wrong choice, a picture that is
    not a file, a file marked as Gradio's naming a server path (the same sentence whether it exists)."""
    log = server.log.name
    before = len(open(log).read())
    existing = tmp_path / "there.png"
    Image.new("L", (28, 28)).save(existing)
    cases = {("explain", "reduction"): [None, "vae", 0, 1.0, "median", 0],
             ("train", "kind"): ["nokind", "mnist", 1, 10, 128, 1e-3, "mlp", 200, "mse", 1.0, 0, 0, None, 28, 28],
             ("reconstruct", "text"): ["abc"], ("reconstruct", "number"): [5],
             ("reconstruct", "exists"): [{"path": str(existing), "meta": {"_type": "gradio.FileData"}}],
             ("reconstruct", "missing"): [{"path": str(tmp_path / "no.png"), "meta": {"_type": "gradio.FileData"}}]}
    said = {}
    for (endpoint, case), data in cases.items():
        kind, message = call(server.url, endpoint, data)
        assert kind == "error" and isinstance(message, dict) and message.get("error"), (case, message)
        said[case] = message["error"]
        assert "<class" not in said[case] and "object at" not in said[case] and str(tmp_path) not in said[case]
    assert "'sum'" in said["reduction"] and "'median'" in said["reduction"] and "'vae'" in said["kind"]
    assert said["exists"] == said["missing"] == NOT_AN_UPLOAD
    assert "Traceback" not in open(log).read()[before:]


def test_tiny_pictures_trained_large_are_charged_at_their_training_size(tmp_path):
    """4,000 8×8 PNGs are 0.3 megapixels decoded, but 262 megapixels once resized to 256×256."""
    import zipfile

    import pytest

    from vae_core.datasets import DataError
    from vae_core.datasets.folders import ZipUpload

    archive = tmp_path / "tiny.zip"
    buffer = __import__("io").BytesIO()
    Image.new("L", (8, 8), 128).save(buffer, format="PNG")
    with zipfile.ZipFile(archive, "w") as z:
        for i in range(4000):
            z.writestr(f"{i % 2}/{i}.png", buffer.getvalue())
    assert ZipUpload(str(archive), (28, 28), "tiny").survey() == 2  # fine at 28×28
    with pytest.raises(DataError, match="megapixels"):
        ZipUpload(str(archive), (256, 256), "tiny").survey()


def test_decoded_datasets_kept_in_memory_are_bounded_by_bytes(subset):
    from ui.data_cache import trim_to

    kept = {name: subset for name in ("a", "b", "c")}
    trim_to(kept, 2 * subset.nbytes)
    assert list(kept) == ["b", "c"]
    trim_to(kept, 0)
    assert list(kept) == ["c"]  # the newest stays, whatever the bound


def test_a_drawings_blobs_are_bounded_in_layers_and_bytes():
    """Gradio's blob store would grow a list to any layer index it is sent, and keep every blob."""
    import gradio as gr
    import pytest
    from gradio.components.image_editor import AcceptBlobs

    from ui.components import Sketch
    from ui.handler import Refusal

    with gr.Blocks():
        sketch = Sketch(layers=False)
    with pytest.raises(Refusal, match="one layer"):
        sketch.accept_blobs(AcceptBlobs(data={"type": "layer", "index": 200000000, "id": "a", "file": b"x"},
                                        files=[("f", b"x")]))
    assert sketch.blob_storage == {}  # nothing was grown
    picture = b"\0" * 9_000_000
    for i in range(20):  # 180 MB of "drawings" never used
        sketch.accept_blobs(AcceptBlobs(data={"type": "composite", "index": None, "id": f"d{i}", "file": b""},
                                        files=[("f", picture)]))
    assert sum(len(b.composite) for b in sketch.blob_storage.values()) <= Sketch.BLOB_BYTES_KEPT
    assert "d19" in sketch.blob_storage and "d0" not in sketch.blob_storage  # the newest kept, the oldest gone
