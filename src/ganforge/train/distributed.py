"""PyTorch DDP through ``torchrun`` (never a home-made launcher).

``torchrun --nproc_per_node N -m ganforge train ...`` sets RANK/WORLD_SIZE/LOCAL_RANK; we then join the process group
(NCCL on CUDA, gloo on CPU), split each global batch across ranks, average gradients with all-reduce after every
phase, and let only rank 0 write. Parameters are broadcast from rank 0 at start so every rank begins identical.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_from_env(device: torch.device) -> DistInfo:
    """Join the process group if launched by torchrun (WORLD_SIZE > 1); otherwise a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return DistInfo(rank, world, local)


def broadcast_module(module: nn.Module, info: DistInfo) -> None:
    """Make every rank hold rank 0's parameters and buffers."""
    if not info.enabled:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


def all_reduce_grads(module: nn.Module, info: DistInfo) -> None:
    """Average gradients over ranks (one flat all-reduce per call; params without grads count as zero)."""
    if not info.enabled:
        return
    # Only parameters that received a gradient (the same set on every rank): a zero-filled gradient would make Adam
    # step parameters this phase never used (e.g. ProGAN blocks not grown yet).
    params = [p for p in module.parameters() if p.requires_grad and p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    dist.all_reduce(flat)
    flat /= info.world_size
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p))  # in place: the gradient keeps its memory format
        offset += n


def all_reduce_mean(value: float, info: DistInfo, device: torch.device) -> float:
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item() / info.world_size)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
