"""What the server holds for everyone: the active models and the one training run.

Module-level state is shared by every browser on purpose here — the active models
and the run are the server's — while per-browser choices live in gr.State.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from vae_core.checkpoint import load_checkpoint
from vae_core.data import ZIP_PREFIX, Dataset, load_dataset
from vae_core.folders import load_image_zip
from vae_core.models import VAE, ModelConfig
from vae_core.trainer import TrainConfig, Trainer

from .live_run import LiveRun

# role → folder in weights/; "baseline" is the completion tab's deterministic network
WEIGHTS = {"vae": "vae", "cvae": "cvae", "scvae": "scvae", "baseline": "scvae-baseline"}


@dataclass
class ActiveModel:
    model: VAE
    source: str
    info: dict

    def describe(self) -> str:
        cfg = self.model.config
        metrics = self.info.get("metrics") or {}
        if cfg.kind == "scvae":
            return (f"**Completion** ({cfg.objective}) from `{self.source}`: {cfg.arch}, latent {cfg.latent}, "
                    f"hidden {cfg.hidden}, {self.info.get('epochs_trained', '?')} epochs on "
                    f"{self.info.get('dataset', '?')}, any 1–3 given quadrants")
        loss = f", test loss {metrics['test_loss']:.2f}" if "test_loss" in metrics else ""
        note = " (offline 5k subset)" if self.info.get("dataset_note") else ""
        return (f"**{cfg.kind.upper()}** from `{self.source}`: {cfg.arch}, latent {cfg.latent}, hidden {cfg.hidden}, "
                f"{cfg.likelihood} likelihood, {self.info.get('epochs_trained', '?')} epochs on "
                f"{self.info.get('dataset', '?')}{note}{loss}")


class Studio:
    def __init__(self, weights_dir: Path, runs_dir: Path):
        self.runs_dir = runs_dir
        self.models: dict[str, ActiveModel] = {}
        for kind, folder in WEIGHTS.items():
            ckpt = load_checkpoint(weights_dir / folder)
            self.models[kind] = ActiveModel(ckpt.model, f"weights/{folder}", ckpt.info)
        self.run: LiveRun | None = None
        self._lock = threading.Lock()
        self._datasets: dict[str, Dataset] = {}

    def active(self, kind: str) -> ActiveModel:
        return self.models[kind]

    def test_data(self, active: ActiveModel) -> Dataset:
        """The data the model was trained on (an uploaded zip stays cached from its upload)."""
        name = active.info.get("dataset", "mnist")
        if name not in self._datasets:
            self._datasets[name] = load_dataset(name, image_size=active.model.config.image_shape[1:])
        return self._datasets[name]

    def read_upload(self, path: str, size: tuple[int, int], filename: str) -> Dataset:
        """Read an uploaded zip of pictures; kept by name so its run and later tabs can use it."""
        data = load_image_zip(path, size, name=filename)
        with self._lock:
            in_use = {m.info.get("dataset") for m in self.models.values()}
            for name in [n for n in self._datasets if n.startswith(ZIP_PREFIX) and n not in in_use]:
                del self._datasets[name]  # uploads kept in memory: those the active models need, and this one
            self._datasets[data.name] = data
        return data

    def start_run(self, model: ModelConfig, train: TrainConfig, dataset: Dataset | None = None) -> tuple[LiveRun, bool]:
        """Start a run unless one is going; either way return the run to watch and whether it is new.

        `dataset` is an upload already read; the trainer loads any other dataset itself.
        """
        with self._lock:
            if self.run is not None and self.run.running:
                return self.run, False
            # unique even for two runs started within one second (one that failed at once, say)
            run_dir = self.runs_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{model.kind}-{uuid.uuid4().hex[:6]}"
            train.out = str(run_dir)
            trainer = Trainer(model, train, dataset or self._datasets.get(train.dataset))
            self.run = LiveRun(trainer, model.kind, run_dir, self._activate)
            trainer.start()
            return self.run, True

    def stop(self) -> bool:
        run = self.run
        if run is None or not run.running:
            return False
        run.trainer.stop()
        return True

    def _activate(self, run: LiveRun) -> None:
        ckpt = load_checkpoint(run.run_dir)
        if run.trainer.dataset is not None:  # an upload: later tabs draw test pictures from it
            with self._lock:
                self._datasets[run.trainer.dataset.name] = run.trainer.dataset
        self.models[run.kind] = ActiveModel(ckpt.model, f"runs/{run.run_dir.name}", ckpt.info)
