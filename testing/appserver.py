"""`python app.py` as a user runs it, on a free port: shared by the tests and the benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from . import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python app.py` as a user runs it, on a free port, with its runs in a temp folder."""

    def __init__(self, runs_dir: Path, log_path: Path, env: dict | None = None, args: tuple[str, ...] = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.runs_dir = runs_dir
        started = time.monotonic()
        env = (env or dict(os.environ)) | {
            "GRADIO_SERVER_PORT": str(self.port), "VAE_STUDIO_RUNS": str(runs_dir), "GRADIO_ANALYTICS_ENABLED": "False"}
        self.log = open(log_path, "w")
        self.process = subprocess.Popen([sys.executable, "app.py", *args], cwd=ROOT, env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.process.returncode}: {log_path.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{self.url}/config", timeout=2)
                self.ready_s = time.monotonic() - started
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
