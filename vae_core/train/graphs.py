"""One training step captured as a CUDA graph: for a small model on a GPU, where launching the
step's ~60 kernels one by one from Python takes far longer than running them.

The step (loss, backward, Adam) is recorded once per epoch and replayed for every full
batch: a replay is one launch, plus copying the batch's indices in. The recipe is PyTorch's
"whole network capture": a few warm-up steps on a side stream (they create Adam's state),
then the model, Adam's state and the noise generator are put back exactly as they were (in
place: the graph holds their addresses), and the capture. Adam must be `capturable`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (batch indices, KL weight) -> [loss, *terms]
WARMUP_STEPS = 3


class GraphedStep:
    """`step` for batches of exactly `batch` indices, replayed from a CUDA graph."""

    def __init__(self, step: Step, model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: int,
                 generator: torch.Generator, device: torch.device):
        self.batch = batch
        self.idx = torch.zeros(batch, dtype=torch.long, device=device)
        self.weight = torch.zeros((), device=device)
        params = [p.detach().clone() for p in model.parameters()]
        moments = {id(p): {k: v.clone() for k, v in s.items()} for p, s in optimizer.state.items()}
        noise = generator.get_state()
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                step(self.idx, self.weight)
        torch.cuda.current_stream(device).wait_stream(side)
        with torch.no_grad():  # back to the state before the warm-up, in place
            for p, saved in zip(model.parameters(), params, strict=True):
                p.copy_(saved)
            for param, state in optimizer.state.items():
                for key, value in state.items():
                    value.copy_(moments[id(param)][key]) if id(param) in moments else value.zero_()
        generator.set_state(noise)
        self.graph = torch.cuda.CUDAGraph()
        self.graph.register_generator_state(generator)
        optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            self.out = step(self.idx, self.weight)

    def __call__(self, idx: torch.Tensor, weight: float) -> torch.Tensor:
        self.idx.copy_(idx)
        self.weight.fill_(weight)
        self.graph.replay()
        return self.out
