"""Data-parallel training under torchrun: each process's place in the job, and DDP's wrapper."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..models import Model

DDP_NEEDS_TORCHRUN = "--ddp runs under torchrun: torchrun --nproc_per_node=N -m vae_core train ... --ddp"


class _Loss(nn.Module):
    """The model's loss as a forward pass: DDP synchronises gradients only for what runs through its forward."""

    def __init__(self, model: Model):
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

    def wrap(self, model: Model, device: torch.device) -> nn.Module:
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
