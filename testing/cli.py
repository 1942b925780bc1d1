"""`python -m vae_core ...` as a user runs it: a real subprocess from the project root."""

from __future__ import annotations

import subprocess
import sys

from . import ROOT


def run_cli(*args, timeout: float = 180, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vae_core", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, **kwargs)
