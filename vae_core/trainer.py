"""Training in a background thread that streams events to any number of subscribers.

The loop never waits on a subscriber and never copies a loss to the host per step:
losses go into a small on-device buffer that is read once per `step_every` steps, so
on a GPU the only synchronisation points are those reads and the end of an epoch.
Randomness comes from generators seeded by (seed, epoch), so a resumed run draws
exactly what an uninterrupted one would have.
"""

from __future__ import annotations

import math
import os
import queue
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .checkpoint import load_checkpoint, save_checkpoint
from .data import Dataset, load_dataset
from .evaluate import elbo_metrics
from .images import to_grid
from .losses import kl_weight
from .models import VAE, ModelConfig, build_model, count_parameters

DEVICES = ("auto", "cpu", "cuda", "mps")
FINAL_EVENTS = ("done", "stopped", "error")
DDP_NEEDS_TORCHRUN = "--ddp runs under torchrun: torchrun --nproc_per_node=N -m vae_core train ... --ddp"


@dataclass
class TrainConfig:
    dataset: str = "mnist"
    data_root: str | None = None
    image_size: tuple[int, int] | None = None
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    kl_warmup: float = 0.0
    step_every: int = 20
    out: str | None = None
    resume: str | None = None
    init_from: str | None = None
    ddp: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.epochs <= 10_000:
            problems.append(f"epochs must be between 1 and 10000, not {self.epochs}")
        if not 1 <= self.batch_size <= 65_536:
            problems.append(f"batch size must be between 1 and 65536, not {self.batch_size}")
        if not (math.isfinite(self.lr) and 0 < self.lr <= 100):
            problems.append(f"learning rate must be a number in (0, 100], not {self.lr}")
        if not (math.isfinite(self.kl_warmup) and self.kl_warmup >= 0):
            problems.append(f"KL warm-up must be a number of epochs ≥ 0, not {self.kl_warmup}")
        if self.device not in DEVICES:
            problems.append(f"device must be one of {', '.join(DEVICES)}, not {self.device!r}")
        if self.step_every < 1:
            problems.append("step_every must be ≥ 1")
        if problems:
            raise ValueError("; ".join(problems))


class NonFiniteLoss(Exception):
    pass


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA, then Apple's MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but no CUDA GPU is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' was asked for, but Apple's MPS is not available")
    return torch.device(name)


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


class Trainer:
    """One training run. `start()` launches it; events arrive through `subscribe()` queues.

    Events: `start`, `dataset_note`, `step` (every `step_every` steps), `epoch` (with a
    uint8 `grid` of samples and a `reconstructions` grid: test images above their
    reconstructions), then exactly one of `done`, `stopped`, `error`.
    """

    def __init__(self, model_config: ModelConfig, train_config: TrainConfig, dataset: Dataset | None = None):
        self.model_config = model_config
        self.config = train_config
        self.dataset = dataset
        self.history: list[dict] = []
        self.model: VAE | None = None
        self.checkpoint_path: Path | None = Path(train_config.out) if train_config.out else None
        self._subscribers: list[queue.Queue] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vae-trainer", daemon=True)
        self.ddp = DistributedRun(train_config.ddp)

    # -- control -------------------------------------------------------------------------
    def start(self) -> Trainer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def subscribe(self, maxsize: int = 10_000) -> queue.Queue:
        """A queue that receives every event from now on (and every earlier one, replayed)."""
        q: queue.Queue = queue.Queue(maxsize)
        with self._lock:
            for event in self.history:
                _put_dropping_oldest(q, event)
            self._subscribers.append(q)
        return q

    def events(self, timeout: float | None = None):
        """Iterate over all events until the run ends (a convenience over `subscribe`)."""
        q = self.subscribe()
        while True:
            event = q.get(timeout=timeout)
            yield event
            if event["event"] in FINAL_EVENTS:
                self.join()
                return

    def _emit(self, event: dict) -> None:
        if not self.ddp.is_main and event["event"] not in FINAL_EVENTS:
            return  # other ranks report only how they ended
        event.setdefault("time", time.time())
        with self._lock:
            self.history.append(event)
            for q in self._subscribers:
                _put_dropping_oldest(q, event)

    # -- the run -------------------------------------------------------------------------
    def _run(self) -> None:
        last_saved: int | None = None
        try:
            data = self.dataset or load_dataset(self.config.dataset, self.config.data_root, self.config.image_size)
            if data.note:
                self._emit({"event": "dataset_note", "dataset_note": data.note})
            device = self.ddp.join(resolve_device(self.config.device))
            model, optimizer, first_epoch, past = self._prepare(data, device)
            step_model = self.ddp.wrap(model, device)
            last_saved = first_epoch - 1 if self.config.resume else None
            train_x, train_y = data.tensors("train", device)
            test_x, test_y = data.tensors("test", device)
            self._emit({
                "event": "start", "device": str(device), "dataset": data.name, "dataset_note": data.note,
                "n_train": len(train_x), "n_test": len(test_x), "first_epoch": first_epoch,
                "epochs": self.config.epochs, "model": model.config.to_dict(),
                "parameters": count_parameters(model),
            })
            for epoch in range(first_epoch, self.config.epochs + 1):
                result = self._train_epoch(model, step_model, optimizer, train_x, train_y, epoch, device)
                if not self.ddp.is_main:
                    continue  # rank 0 alone evaluates, saves and reports
                metrics = None if result is None else elbo_metrics(
                    model, test_x, test_y, _generator(device, self.config.seed), should_stop=self._stop.is_set
                )
                if metrics is None:
                    self._emit({"event": "stopped", "epoch": epoch - 1, "checkpoint": self._saved(last_saved),
                                "message": self._stop_message(last_saved)})
                    return
                summary = {"event": "epoch", "epoch": epoch, "epochs": self.config.epochs, **result, **metrics}
                past.append({k: v for k, v in summary.items() if k != "event"})
                if self.checkpoint_path is not None:
                    save_checkpoint(self.checkpoint_path, model, optimizer, self._info(data, epoch, past))
                    last_saved = epoch
                grid, recon = self._pictures(model, test_x, test_y, device)
                self._emit({**summary, "grid": grid, "reconstructions": recon})
            self._emit({"event": "done", "epoch": self.config.epochs, "checkpoint": self._saved(last_saved),
                        "message": f"training finished after epoch {self.config.epochs}"})
        except NonFiniteLoss as exc:
            self._emit({"event": "error", "kind": "nan", "checkpoint": self._saved(last_saved),
                        "message": f"{exc} {self._stop_message(last_saved)}"})
        except Exception as exc:  # noqa: BLE001 - the thread reports every failure as an event
            text = self.ddp.explain(str(exc).strip())
            oom = isinstance(exc, MemoryError | torch.OutOfMemoryError) or "can't allocate memory" in text \
                or "out of memory" in text.lower()
            if oom:
                message = (f"out of memory with batch size {self.config.batch_size}: lower the batch size "
                           "or the hidden width")
            else:
                message = text.splitlines()[0] if text else type(exc).__name__
            self._emit({"event": "error", "kind": "oom" if oom else type(exc).__name__,
                        "checkpoint": self._saved(last_saved), "message": message})
        finally:
            self.ddp.leave()
            with self._lock:
                self._subscribers.clear()

    def _saved(self, epoch: int | None) -> str | None:
        return str(self.checkpoint_path) if epoch is not None and self.checkpoint_path else None

    def _stop_message(self, last_saved: int | None) -> str:
        if last_saved is None:
            return "No epoch had finished, so there is no checkpoint from this run."
        return f"The checkpoint of epoch {last_saved} is intact."

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
            model_config = replace(self.model_config, image_shape=data.image_shape, n_classes=data.n_classes)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(cfg.seed)
                model = build_model(model_config)
            if cfg.init_from:
                _init_generation(model, load_checkpoint(cfg.init_from).model)
        model.to(device).train()
        # The fused kernel updates every parameter in one pass: 1.5× the throughput of the
        # default on a 2-core CPU for the seed-sized models (bench/train_speed.py).
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=device.type in ("cpu", "cuda", "mps"))
        if optimizer_state is not None:
            optimizer.load_state_dict(optimizer_state)
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr
        self.model = model
        return model, optimizer, first_epoch, past

    def _train_epoch(self, model: VAE, step_model: nn.Module, optimizer, x: torch.Tensor, labels: torch.Tensor,
                     epoch: int, device):
        """One pass over the data; None if stopped. Raises NonFiniteLoss naming the step.

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
        window = torch.zeros(cfg.step_every, 3, device=device)
        sizes = torch.zeros(cfg.step_every, device=device)
        totals = torch.zeros(4, device=device)  # loss, recon, KL sums and images seen
        start = time.perf_counter()
        for step in range(steps):
            if self._stop.is_set():
                return None
            idx = perm[step * bs : (step + 1) * bs][rank::world]
            weight = kl_weight(model.config.beta, cfg.kl_warmup, epoch - 1 + step / steps)
            losses = step_model(x[idx], labels[idx], weight, noise_gen)
            optimizer.zero_grad(set_to_none=True)
            # DDP averages gradients over ranks; ×world makes that the gradient of the global batch's sum
            (losses["loss"] * world).backward()
            optimizer.step()
            slot = step % cfg.step_every
            window[slot] = torch.stack([losses["loss"], losses["recon"], losses["kl"]]).detach()
            sizes[slot] = len(idx)
            if slot == cfg.step_every - 1 or step == steps - 1:
                used = slot + 1
                values = window[:used].cpu()
                bad = (~torch.isfinite(values).all(dim=1)).nonzero()
                if len(bad):
                    global_step = (epoch - 1) * steps + step - slot + int(bad[0]) + 1
                    raise NonFiniteLoss(
                        f"The loss became {values[int(bad[0]), 0].item()} at step {global_step} (epoch {epoch}). "
                        f"The learning rate ({cfg.lr:g}) is probably too high: try it 10× lower."
                    )
                totals[:3] += window[:used].sum(0)
                totals[3] += sizes[:used].sum()
                per_image = (values.sum(0) / sizes[:used].sum().cpu()).tolist()
                self._emit({"event": "step", "epoch": epoch, "step": (epoch - 1) * steps + step + 1,
                            "progress": epoch - 1 + (step + 1) / steps, "loss": per_image[0],
                            "recon": per_image[1], "kl": per_image[2], "kl_weight": weight})
        self.ddp.sum(totals)
        seconds = time.perf_counter() - start
        seen = totals[3].item()
        mean = (totals[:3] / seen).tolist()
        return {"train_loss": mean[0], "train_recon": mean[1], "train_kl": mean[2], "images_seen": int(seen),
                "samples_per_s": seen / seconds, "seconds": seconds}

    def _pictures(self, model: VAE, test_x: torch.Tensor, test_y: torch.Tensor, device):
        model.eval()
        with torch.no_grad():
            originals, labels = test_x[:8], test_y[:8]
            grid = to_grid(model.preview(_generator(device, self.config.seed), originals, labels))
            recon = to_grid(torch.cat([originals, model.generate(originals, labels)]))
        model.train()
        return grid, recon

    def _info(self, data: Dataset, epoch: int, past: list[dict]) -> dict:
        train = {k: v for k, v in asdict(self.config).items()
                 if k not in ("out", "resume", "data_root", "init_from")}
        return {"dataset": data.name, "dataset_note": data.note, "class_names": list(data.class_names),
                "epochs_trained": epoch, "metrics": past[-1], "history": past, "train": train}


def _init_generation(model: nn.Module, baseline: nn.Module) -> None:
    """Start a structured-output CVAE's generation network from a trained baseline's, as Sohn et al. do."""
    if model.config.kind != "scvae" or baseline.config.kind != "scvae":
        raise ValueError("--init-from copies a structured-output baseline's generation network into an scvae")
    try:
        model.generation.load_state_dict(baseline.generation.state_dict())
    except RuntimeError:
        raise ValueError("the --init-from checkpoint has a different architecture, hidden width or latent size") \
            from None


class _Loss(nn.Module):
    """The model's loss as a forward pass: DDP synchronises gradients only for what runs through its forward."""

    def __init__(self, model: VAE):
        super().__init__()
        self.model = model

    def forward(self, x, labels, kl_weight, generator):
        return self.model.loss_function(x, labels, kl_weight, generator)


class DistributedRun:
    """This process's place in a torchrun job, or a job of one when DDP is off.

    torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; the process group uses NCCL on CUDA
    and gloo on the CPU. Only rank 0 evaluates, writes checkpoints and emits events.
    """

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.rank, self.world = 0, 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def join(self, device: torch.device) -> torch.device:
        """Join the torchrun job (DDP on); returns the device this process trains on."""
        if not self.enabled:
            return device
        if "RANK" not in os.environ:
            raise ValueError(DDP_NEEDS_TORCHRUN)
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
        elif device.type != "cpu":
            raise ValueError(f"--ddp supports CUDA (nccl) and the CPU (gloo), not {device.type}")
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        return device

    def wrap(self, model: VAE, device: torch.device) -> nn.Module:
        if not self.enabled:
            return _Loss(model)
        return DistributedDataParallel(_Loss(model), device_ids=[device] if device.type == "cuda" else None)

    def sum(self, tensor: torch.Tensor) -> None:
        if self.enabled:
            dist.all_reduce(tensor)

    def explain(self, text: str) -> str:
        """A collective that fails because a peer died says so in torch's words; say it in ours."""
        if self.enabled and self.world > 1 and any(
                s in text for s in ("Connection closed", "Connection reset", "NCCL", "Socket Timeout", "timed out")):
            first = text.splitlines()[0].split("] ", 1)[-1].split(". ")[0]  # "Connection closed by peer [host]:port"
            return f"rank {self.rank}: another process of the job failed or was killed ({first})"
        return f"rank {self.rank}: {text}" if self.enabled and self.world > 1 else text

    def leave(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def _put_dropping_oldest(q: queue.Queue, event: dict) -> None:
    """A slow subscriber loses its oldest events rather than ever blocking training."""
    while True:
        try:
            q.put_nowait(event)
            return
        except queue.Full:
            try:
                q.get_nowait()
            except queue.Empty:
                pass
