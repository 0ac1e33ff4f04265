"""Training in several processes launched by torchrun (DistributedDataParallel: nccl on
GPUs, gloo on CPUs). Every rank draws the same global batch and trains on its slice, so a
run in N processes follows the one-process run; rank 0 alone writes files."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def world() -> tuple[int, int]:
    """(rank, number of processes); (0, 1) outside torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """True in the process that writes checkpoints, the cache and the output."""
    return world()[0] == 0


def init_from_env(device: str = "auto") -> None:
    """Join the process group torchrun describes in the environment (no-op without it)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return
    gpu = device != "cpu" and torch.cuda.is_available()
    if gpu:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if gpu else "gloo")


def barrier() -> None:
    """Wait for every rank (no-op in one process)."""
    if world()[1] > 1:
        dist.barrier()


def mean(values: list[float], device: torch.device) -> list[float]:
    """Each value averaged over the ranks (unchanged in one process)."""
    size = world()[1]
    if size == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return (t / size).tolist()


class Scores(nn.Module):
    """A flow's `scores` as `forward`, so DistributedDataParallel sees the training pass."""

    def __init__(self, flow: nn.Module):
        super().__init__()
        self.flow = flow

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.flow.scores(x)


def wrap(flow: nn.Module, device: torch.device) -> nn.Module:
    """The training pass of `flow`, wrapped in DistributedDataParallel when there are ranks."""
    scores = Scores(flow)
    if world()[1] == 1:
        return scores
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(scores, device_ids=ids)
