"""A new model kind is one module: installed as a plugin, the CLI and the app offer it with no other file changed."""

import json
import os
import urllib.request

import pytest
from gradio_client import Client

from testing import ROOT
from testing.appserver import Server
from testing.cli import run_cli

TOY = '''
from dataclasses import dataclass

from vae_core.config import ModelConfig, option
from vae_core.kinds import KindSpec, register
from vae_core.models import VAE


@dataclass
class ToyConfig(ModelConfig):
    kind: str = "toy"
    wobble: float = option(0.25, "how far the toy wobbles", limit="alpha")


class Toy(VAE):
    """A VAE under a name of its own."""


register(KindSpec("toy", Toy, ToyConfig, title="Toy VAE", description="toy autoencoder",
                  help="a toy kind from a plugin", app_trains=True))
'''


@pytest.fixture
def plugin_env(tmp_path):
    """An environment in which a distribution `toy-kind` is installed: its module and its entry point, nothing else."""
    site = tmp_path / "site"
    (site / "toy_kind-0.1.dist-info").mkdir(parents=True)
    (site / "toy_kind.py").write_text(TOY)
    (site / "toy_kind-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-kind\nVersion: 0.1\n")
    (site / "toy_kind-0.1.dist-info" / "entry_points.txt").write_text("[vae_studio.kinds]\ntoy = toy_kind\n")
    return os.environ | {"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}


@pytest.mark.slow
def test_a_plugin_kind_is_in_the_cli_help_and_trains_with_its_own_option(plugin_env, tmp_path):
    shown = run_cli("train", "--help", env=plugin_env)
    assert shown.returncode == 0, shown.stderr
    help_text = " ".join(shown.stdout.split())
    assert "{vae,cvae,scvae,toy}" in help_text and "toy: a toy kind from a plugin" in help_text
    assert "Toy VAE (--kind toy):" in help_text
    assert "--wobble WOBBLE how far the toy wobbles (default: 0.25)" in help_text
    assert "toy" not in " ".join(run_cli("train", "--help").stdout.split())  # without the plugin, no such kind

    out = tmp_path / "toy"
    done = run_cli("train", "--kind", "toy", "--wobble", "0.5", "--epochs", "1", "--latent", "3", "--out", out,
                   env=plugin_env)
    assert done.returncode == 0, done.stderr
    model = json.loads((out / "config.json").read_text())["model"]
    assert (model["kind"], model["wobble"], model["latent"]) == ("toy", 0.5, 3)
    assert "# A toy autoencoder trained with VAE Studio" in (out / "README.md").read_text()
    refused = run_cli("train", "--kind", "toy", "--wobble", "2", "--out", tmp_path / "no", env=plugin_env)
    assert refused.returncode == 2 and "wobble must be between 0 and 1" in refused.stderr


@pytest.mark.slow
def test_a_plugin_kind_is_offered_and_trained_by_the_app(plugin_env, tmp_path):
    server = Server(tmp_path / "runs", tmp_path / "app.log", env=plugin_env)
    try:
        config = json.load(urllib.request.urlopen(f"{server.url}/config", timeout=10))
        kind = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "train-kind")
        assert ["Toy VAE", "toy"] in kind["props"]["choices"]
        client = Client(server.url, verbose=False)
        job = client.submit(kind="toy", dataset="mnist", epochs=1, latent=3, batch_size=128, lr=1e-3,
                            api_name="/train")
        last = job.result(timeout=240)
        assert "Done" in last[0] and "The new Toy VAE is now the active model" in last[0], last[0]
        grid = client.predict(n=4, temperature=1.0, seed=0, model="toy", api_name="/sample")
        assert os.path.getsize(grid) > 0
    finally:
        server.close()
