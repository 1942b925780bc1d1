"""Training in a background thread that streams events to any number of subscribers.

The loop never waits on a subscriber and never copies a loss to the host per step:
losses go into a small on-device buffer that is read once per `step_every` steps, so
on a GPU the only synchronisation points are those reads and the end of an epoch.
Randomness comes from generators seeded by (seed, epoch), so a resumed run draws
exactly what an uninterrupted one would have.

The loop knows nothing of pictures or screens: a caller that wants something drawn
after each epoch passes `on_epoch(model, test_x, test_y) -> dict`, whose entries join
that epoch's event.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from ..checkpoint import PATH_SETTINGS, load_checkpoint, save_checkpoint
from ..config import ModelConfig, TrainConfig
from ..datasets import Dataset, ReadStopped, ZipUpload, load_dataset
from ..evaluate import elbo_parts, stacked, unstacked
from ..losses import kl_weight
from ..models import Model, WarmStartable, build_model, count_parameters, spec
from .augment import random_shift
from .device import resolve_device
from .distributed import DistributedRun
from .events import (
    NO_CHECKPOINT,
    DatasetNote,
    Done,
    Epoch,
    Event,
    EventHub,
    Failed,
    Followed,
    Reading,
    Start,
    Step,
    Stopped,
    is_final,
)
from .graphs import GraphedStep
from .memory import WontFit, check_fits

EpochCallback = Callable[[Model, torch.Tensor, torch.Tensor], dict]
StepFunction = Callable[[torch.Tensor, float | torch.Tensor], torch.Tensor]


class NonFiniteLoss(Exception):
    pass


class _Window:
    """An epoch's losses on the device: the last `size` steps' (loss and terms, batch sums) and images, read
    to the host once a window, and the epoch's running sums (the loss's and each term's, then the images)."""

    def __init__(self, size: int, width: int, device: torch.device):
        self.losses = torch.zeros(size, width, device=device)
        self.sizes = torch.zeros(size, device=device)
        self.totals = torch.zeros(width + 1, device=device)


class Trainer(Followed):
    """One training run. `start()` launches it; events arrive through `subscribe()` queues (see `events`)."""

    def __init__(self, model_config: ModelConfig, train_config: TrainConfig,
                 dataset: Dataset | ZipUpload | None = None, on_epoch: EpochCallback | None = None,
                 on_window: Callable[[], None] | None = None):
        """`on_window()` is called from the training thread after every `step_every` steps (the app's
        worker uses it to share the cores with its server: `threads.CoreShare`)."""
        self.model_config = model_config
        self.config = train_config
        self.dataset = dataset
        self.on_epoch = on_epoch
        self.on_window = on_window
        self.model: Model | None = None
        self.checkpoint_path: Path | None = Path(train_config.out) if train_config.out else None
        self.hub = EventHub()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vae-trainer", daemon=True)
        self.ddp = DistributedRun(train_config.ddp)
        # the last epoch whose checkpoint is intact where this run writes (one it resumed in place, or wrote)
        self._last_saved: int | None = None

    # -- control -------------------------------------------------------------------------
    def start(self) -> Trainer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _emit(self, event: Event) -> None:
        if self.ddp.is_main or is_final(event):
            self.hub.publish(event)  # other ranks report only how they ended

    # -- the run -------------------------------------------------------------------------
    def _run(self) -> None:
        """The thread: train, and end with exactly one final event, however the run ends."""
        try:
            self._emit(self._train())
        except ReadStopped:
            self._emit(Stopped(epoch=0, checkpoint=None, message=self._stop_message()))
        except NonFiniteLoss as exc:
            self._emit(Failed(kind="nan", checkpoint=self._saved(), message=f"{exc} {self._stop_message()}"))
        except Exception as exc:  # noqa: BLE001 - the thread reports every failure as an event
            self._emit(self._failure(exc))
        finally:
            self.ddp.leave()
            self.hub.close()

    def _train(self) -> Done | Stopped:
        """Read the data, prepare the model, train every epoch; how the run ended, unless it failed."""
        data = self._data()
        if data.note:
            self._emit(DatasetNote(dataset_note=data.note))
        device = self.ddp.join(resolve_device(self.config.device))
        model, optimizer, first_epoch, past = self._prepare(data, device)
        step_model: Any = self.ddp.wrap(model, device)  # a module, or torch.compile's callable of one
        if self.config.compile:
            step_model = torch.compile(step_model, mode="reduce-overhead" if device.type == "cuda" else "default")
        # a checkpoint is intact only where this run writes: resuming into another --out has none yet
        if self.config.resume and self.checkpoint_path is not None and \
                Path(self.config.resume).resolve() == self.checkpoint_path.resolve():
            self._last_saved = first_epoch - 1
        train_x, train_y = data.tensors("train", device)
        test_x, test_y = data.tensors("test", device)
        self._emit(Start(device=str(device), dataset=data.name, dataset_note=data.note, n_train=len(train_x),
                         n_test=len(test_x), first_epoch=first_epoch, epochs=self.config.epochs,
                         model=model.config.to_dict(), parameters=count_parameters(model)))
        for epoch in range(first_epoch, self.config.epochs + 1):
            trained = self._train_epoch(model, step_model, optimizer, train_x, train_y, epoch, device)
            if not self.ddp.is_main:
                continue  # rank 0 alone evaluates, saves and reports
            summary = None if trained is None else self._evaluate(model, trained, test_x, test_y, epoch, device)
            if summary is None:
                return Stopped(epoch=epoch - 1, checkpoint=self._saved(), message=self._stop_message())
            past.append(summary.history_entry())
            if self.checkpoint_path is not None:
                save_checkpoint(self.checkpoint_path, model, optimizer, self._info(data, epoch, past))
                self._last_saved = epoch
            self._emit(replace(summary, extras=self._epoch_extras(model, test_x, test_y)))
        return Done(epoch=self.config.epochs, checkpoint=self._saved(),
                    message=f"training finished after epoch {self.config.epochs}")

    def _evaluate(self, model: Model, trained: dict, test_x: torch.Tensor, test_y: torch.Tensor, epoch: int,
                  device: torch.device) -> Epoch | None:
        """The epoch's event: its training figures and the test set's; None if a stop came first."""
        tested = elbo_parts(model, test_x, test_y, _generator(device, self.config.seed), should_stop=self._stop.is_set)
        if tested is None:
            return None
        test_loss, terms = tested
        return Epoch(epoch=epoch, epochs=self.config.epochs, **trained, test_loss=test_loss, terms=terms)

    def _failure(self, exc: Exception) -> Failed:
        """An unexpected exception as the run's final event: out of memory said so, with what to lower."""
        text = self.ddp.explain(str(exc).strip())
        oom = isinstance(exc, MemoryError | torch.OutOfMemoryError) or "can't allocate memory" in text \
            or "out of memory" in text.lower()
        if isinstance(exc, WontFit):
            message = text  # refused before allocating: the estimate says how much it needs
        elif oom:
            message = (f"out of memory with batch size {self.config.batch_size}: lower the batch size "
                       "or the hidden width")
        else:
            message = text.splitlines()[0] if text else type(exc).__name__
        return Failed(kind="oom" if oom else type(exc).__name__, checkpoint=self._saved(), message=message)

    def _data(self) -> Dataset:
        """The dataset given, or read now: an upload's pictures are decoded here, with progress, until a stop."""
        if isinstance(self.dataset, Dataset):
            return self.dataset
        if self.dataset is not None:
            def progress(done: int, total: int) -> None:
                self._emit(Reading(done=done, total=total))

            return self.dataset.load(progress, self._stop.is_set)
        return load_dataset(self.config.dataset, self.config.data_root, self.config.image_size)

    def _saved(self) -> str | None:
        """The checkpoint folder, once this run has one there."""
        return str(self.checkpoint_path) if self._last_saved is not None and self.checkpoint_path else None

    def _stop_message(self) -> str:
        if self._last_saved is None:
            return NO_CHECKPOINT
        return f"The checkpoint of epoch {self._last_saved} is intact."

    def _prepare(self, data: Dataset, device: torch.device):
        cfg = self.config
        past: list[dict] = []
        first_epoch = 1
        optimizer_state = None
        if cfg.resume:
            ckpt = load_checkpoint(cfg.resume, device, with_optimizer=True)
            model_config = ckpt.model.config
            if model_config.image_shape != data.image_shape:
                raise ValueError(f"the checkpoint was trained on {model_config.image_shape} images, "
                                 f"this dataset has {data.image_shape}")
            model, optimizer_state = ckpt.model, ckpt.optimizer_state
            first_epoch = int(ckpt.info.get("epochs_trained", 0)) + 1
            past = list(ckpt.info.get("history", []))
            if first_epoch > cfg.epochs:
                raise ValueError(f"the checkpoint already has {first_epoch - 1} epochs; ask for more than that")
        else:
            model_config = data.fit(self.model_config)
            check_fits(model_config, cfg.batch_size, len(data.train_images) + len(data.test_images), device)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(cfg.seed)
                model = build_model(model_config)
            if cfg.init_from:
                if not isinstance(model, WarmStartable):
                    raise ValueError(f"--init-from does not apply to a {model_config.kind}: its models start afresh")
                model.warm_start(load_checkpoint(cfg.init_from).model)
        model.to(device).train()
        # The fused kernel updates every parameter in one pass: 1.5× the throughput of the
        # default on a 2-core CPU for the seed-sized models (bench/train_speed.py).
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=device.type in ("cpu", "cuda", "mps"),
                                     capturable=cfg.cuda_graphs and device.type == "cuda")
        if optimizer_state is not None:  # the checkpoint's moments under this run's own hyperparameters
            own_groups = optimizer.state_dict()["param_groups"]
            optimizer.load_state_dict({"state": optimizer_state, "param_groups": own_groups})
        self.model = model
        return model, optimizer, first_epoch, past

    def _train_epoch(self, model: Model, step_model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                     labels: torch.Tensor, epoch: int, device: torch.device) -> dict | None:
        """One pass over the data: the epoch event's training fields; None if stopped. Raises NonFiniteLoss
        naming the step.

        Under DDP every rank draws the same permutation and takes every world-th image of
        each global batch, so the ranks together see each image once per epoch.
        """
        cfg = self.config
        n, bs = len(x), cfg.batch_size
        rank, world = self.ddp.rank, self.ddp.world
        steps = math.ceil(n / bs)
        order_gen = _generator(device, cfg.seed * 100_003 + epoch)
        noise_gen = _generator(device, cfg.seed * 100_003 + epoch + 50_000 + 7_919 * rank)
        perm = torch.randperm(n, generator=order_gen, device=device)
        terms = spec(model.config.kind).loss_terms
        window = _Window(cfg.step_every, 1 + len(terms), device)
        one_step = self._step_function(step_model, optimizer, x, labels, noise_gen, terms)
        start = time.perf_counter()
        graphed = GraphedStep(one_step, cast(torch.nn.Module, model), optimizer, bs, noise_gen, device) \
            if cfg.cuda_graphs and device.type == "cuda" and world == 1 and n >= bs else None
        for step in range(steps):
            if self._stop.is_set():
                return None
            idx = perm[step * bs : (step + 1) * bs][rank::world]
            weight = kl_weight(model.config.beta, cfg.kl_warmup, epoch - 1 + step / steps)
            slot = step % cfg.step_every
            # the last, smaller batch runs as it is: a graph replays one shape
            window.losses[slot] = graphed(idx, weight) if graphed and len(idx) == bs else one_step(idx, weight)
            window.sizes[slot] = len(idx)
            if slot == cfg.step_every - 1 or step == steps - 1:
                self._report(window, slot + 1, epoch, step + 1, steps, weight, model, terms)
        self.ddp.sum(window.totals)
        seconds = time.perf_counter() - start
        seen = window.totals[-1].item()
        train_loss, train_terms = unstacked((window.totals[:-1] / seen).tolist(), terms)
        return {"train_loss": train_loss, "train_terms": train_terms, "images_seen": int(seen),
                "samples_per_s": seen / seconds, "seconds": seconds}

    def _step_function(self, step_model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                       labels: torch.Tensor, noise_gen: torch.Generator, terms: tuple[str, ...]) -> StepFunction:
        """One training step on the images `idx` at KL weight `weight`: its loss and terms, as batch sums, on the
        device (a CUDA graph records this function once and replays it)."""
        cfg, world = self.config, self.ddp.world

        def one_step(idx: torch.Tensor, weight: float | torch.Tensor) -> torch.Tensor:
            batch = x.index_select(0, idx)  # on the CPU a quarter of `x[idx]`'s time (13 vs 54 µs a batch)
            batch = random_shift(batch, cfg.shift, noise_gen) if cfg.shift else batch
            losses = step_model(batch, labels.index_select(0, idx), weight, noise_gen)
            optimizer.zero_grad(set_to_none=True)
            # DDP averages gradients over ranks; ×world makes that the gradient of the global batch's sum
            (losses["loss"] * world if world > 1 else losses["loss"]).backward()
            optimizer.step()
            with torch.no_grad():
                return stacked(losses, terms)

        return one_step

    def _report(self, window: _Window, used: int, epoch: int, done: int, steps: int, weight: float, model: Model,
                terms: tuple[str, ...]) -> None:
        """The window's first `used` steps, the last of them the epoch's `done`-th of `steps`, read once: checked
        finite, added to the epoch's sums and published as a Step event. Raises NonFiniteLoss naming the first
        bad step."""
        step = (epoch - 1) * steps + done  # counted over the run
        if self.on_window is not None:
            self.on_window()
        values = window.losses[:used].cpu()
        bad = (~torch.isfinite(values).all(dim=1)).nonzero()
        if len(bad):
            raise NonFiniteLoss(
                f"The loss became {values[int(bad[0]), 0].item()} at step {step - used + int(bad[0]) + 1} "
                f"(epoch {epoch}). {nan_hint(self.config.lr, model.config.beta, model.config.likelihood)}"
            )
        window.totals[:-1] += window.losses[:used].sum(0)
        window.totals[-1] += window.sizes[:used].sum()
        loss, per_image = unstacked((values.sum(0) / window.sizes[:used].sum().cpu()).tolist(), terms)
        self._emit(Step(epoch=epoch, step=step, progress=epoch - 1 + done / steps, loss=loss, terms=per_image,
                        kl_weight=weight))

    def _epoch_extras(self, model: Model, test_x: torch.Tensor, test_y: torch.Tensor) -> dict:
        """What the caller's `on_epoch` adds to the epoch event (the app's pictures), drawn in eval mode."""
        if self.on_epoch is None:
            return {}
        model.eval()
        try:
            with torch.no_grad():
                return self.on_epoch(model, test_x, test_y)
        finally:
            model.train()

    def _info(self, data: Dataset, epoch: int, past: list[dict]) -> dict:
        train = {k: v for k, v in asdict(self.config).items()
                 if k not in PATH_SETTINGS}
        return {"dataset": data.name, "dataset_note": data.note, "class_names": list(data.class_names),
                "epochs_trained": epoch, "metrics": past[-1], "history": past, "train": train}


def nan_hint(lr: float, beta: float, likelihood: str) -> str:
    """The likeliest cause of a NaN loss, read from the run's settings, and what to try."""
    if lr > 1e-2:
        return f"The learning rate ({lr:g}) is probably too high: try it 10× lower."
    if beta > 10:
        return f"β = {beta:g} weighs the KL very heavily: try a smaller β, or a KL warm-up."
    if likelihood == "gaussian":
        return "The gaussian likelihood's learned variance can collapse: try mse or bernoulli, or a lower learning " \
            "rate."
    return f"Try a lower learning rate (now {lr:g})."


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)
