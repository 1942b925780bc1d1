import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def _empty_data_cache(tmp_path_factory, monkeypatch):
    """Keep tests off any MNIST a developer has cached, so the offline path is what runs here."""
    monkeypatch.setenv("VAE_STUDIO_DATA", str(tmp_path_factory.mktemp("data-cache")))


@pytest.fixture(scope="session")
def subset():
    from vae_core.data import load_offline_subset

    return load_offline_subset()


def subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    return env


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python app.py` as a user runs it, on a free port, with its runs in a temp folder."""

    def __init__(self, runs_dir: Path, log_path: Path):
        import subprocess
        import time
        import urllib.request

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.runs_dir = runs_dir
        env = subprocess_env() | {"GRADIO_SERVER_PORT": str(self.port), "VAE_STUDIO_RUNS": str(runs_dir),
                                  "GRADIO_ANALYTICS_ENABLED": "False"}
        self.log = open(log_path, "w")
        self.process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.process.returncode}: {log_path.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.url, timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        self.close()
        raise RuntimeError("app.py did not answer within 90 s")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except Exception:
            self.process.kill()
        self.log.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("server")
    srv = Server(folder / "runs", folder / "app.log")
    yield srv
    srv.close()


@pytest.fixture(scope="session")
def client(server):
    from gradio_client import Client

    return Client(server.url, verbose=False)


@pytest.fixture(scope="session")
def digit_png(tmp_path_factory, subset):
    """A real test digit saved as a dark-on-light 112×112 PNG, as someone might photograph or draw it."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("digits")
    paths = []
    for index in (0, 7):
        path = folder / f"digit{index}.png"
        Image.fromarray(255 - subset.test_images[index, 0]).resize((112, 112)).save(path)
        paths.append(path)
    return paths
