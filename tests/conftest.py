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
