"""A checkpoint's model card: the README.md the Hugging Face Hub shows, written from its config.json.

The front matter is the Hub's model-card metadata (library, tags, datasets, model-index
metrics), so `huggingface_hub.upload_folder` publishes the folder as it is; the body says
what the model is and gives the one command that trains it again.
"""

from __future__ import annotations

import json
import math
import shlex

from .config import options_of
from .datasets import DATASETS, FOLDER_PREFIX, ZIP_PREFIX
from .models import LabelConditioned, PriorSampler, spec

HUB_DATASETS = {"mnist": "ylecun/mnist", "fashion-mnist": "zalando-datasets/fashion_mnist"}
# TrainConfig fields → the `python -m vae_core train` flag that sets them (a model's come from its config class)
TRAIN_FLAGS = ("kl_warmup", "shift", "epochs", "batch_size", "lr", "seed")


def reproduce_command(config: dict, out: str = "my-run") -> str:
    """The CLI command that trains this checkpoint again: same settings, seed and epochs.

    A resumed run continues bit-identically (tests/test_training.py), so training its total
    epochs at once gives the same weights on the same device.
    """
    model, train = config["model"], config.get("train", {})
    dataset = config.get("dataset", "mnist")
    if dataset.startswith(ZIP_PREFIX):
        dataset = FOLDER_PREFIX + "YOUR_PICTURES"  # an upload lives only in the app that read it
    args = ["python", "-m", "vae_core", "train", "--dataset", dataset]
    for key in ("kind", *options_of(spec(model["kind"]).config)):
        args += [f"--{key.replace('_', '-')}", str(model[key])]
    if train.get("image_size") and dataset not in DATASETS:
        args += ["--image-size", "x".join(str(side) for side in train["image_size"])]
    for key in TRAIN_FLAGS:
        value = config.get("epochs_trained") if key == "epochs" else train.get(key)
        if value is not None:
            args += [f"--{key.replace('_', '-')}", f"{value:g}" if isinstance(value, float) else str(value)]
    return shlex.join([*args, "--out", out])


def model_card(config: dict) -> str:
    """The README.md of a checkpoint folder."""
    model = config["model"]
    metrics = {k: v for k, v in (config.get("metrics") or {}).items()
               if isinstance(v, int | float) and math.isfinite(v)}
    dataset = config.get("dataset", "")
    front = {
        "library_name": "pytorch",
        "tags": ["vae-studio", "variational-autoencoder", model["kind"], "safetensors"],
        "datasets": [HUB_DATASETS[dataset]] if dataset in HUB_DATASETS else [],
        "model-index": [{"name": f"vae-studio-{model['kind']}", "results": [{
            "task": {"type": "image-generation", "name": "Image generation"},
            "dataset": {"type": HUB_DATASETS.get(dataset, dataset), "name": dataset},
            "metrics": [{"type": "elbo", "name": "test negative ELBO (nats per image)",
                         "value": round(float(metrics["test_loss"]), 4)}] if "test_loss" in metrics else [],
        }]}],
    }
    # JSON is YAML: each value of the front matter written as JSON is valid YAML and needs no YAML library
    lines = ["---", *(f"{key}: {json.dumps(value)}" for key, value in front.items()), "---", ""]
    loss = f"{metrics['test_loss']:.2f} nats per test image (−ELBO)" if "test_loss" in metrics else "not measured"
    note = f"\n\n> {config['dataset_note']}" if config.get("dataset_note") else ""
    lines += [
        f"# A {spec(model['kind']).description} trained with VAE Studio",
        "",
        f"- architecture: {model['arch']}, hidden width {model['hidden']}, latent size {model['latent']}, "
        f"images {'×'.join(str(v) for v in model['image_shape'])}",
        f"- likelihood: {model['likelihood']}, β = {model['beta']:g}",
        f"- trained {config.get('epochs_trained', '?')} epochs on {dataset or '?'}; test loss {loss}{note}",
        "",
        "Files: `model.safetensors` (weights), `config.json` (everything needed to rebuild the model, and the "
        "run's settings and per-epoch history), `optimizer.safetensors` where present (to continue training). "
        "No pickles: loading runs no code.",
        "",
        "## Train it again",
        "",
        "```bash",
        reproduce_command(config),
        "```",
        "",
        "## Use it",
        "",
        "```bash",
        _use_command(model["kind"]),
        "```",
        "",
        "or upload the zipped folder in VAE Studio's Train tab (“Bring back a checkpoint”).",
        "",
    ]
    return "\n".join(lines)


def _use_command(kind: str) -> str:
    if not spec(kind).can(PriorSampler):  # it has no prior samples to draw (a completion model)
        return "python -m vae_core evaluate THIS_FOLDER"
    return "python -m vae_core sample THIS_FOLDER --png samples.png" + \
        (" --digit 3" if spec(kind).can(LabelConditioned) else "")
