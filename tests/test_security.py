"""What a stranger's request can and cannot make the server do, tried through raw HTTP."""

import numpy as np
from PIL import Image

from testing.rawapi import call
from ui.handler import NOT_AN_UPLOAD


def test_a_payload_naming_a_server_file_is_refused_the_same_whether_or_not_it_exists(server, tmp_path):
    secret = tmp_path / "server-side.png"  # a real picture on the server, outside Gradio's upload folder
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(secret)
    answers = {}
    for path in (str(secret), str(tmp_path / "nothing-here.png"), "weights/README.md", "../../etc/passwd"):
        for endpoint, data in [("reconstruct", [{"path": path}]),
                               ("traverse", [3.0, 11, 0, "image", {"path": path, "meta": {"_type": "gradio.FileData"}}]),
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
