"""One process or one rank of torchrun: the device, DistributedDataParallel, and the seeded
per-epoch sampling that makes `--resume` exact (see overfeat.train, "Mechanics").

Under `torchrun --nproc_per_node=N` the same code runs DistributedDataParallel (gloo on CPU,
nccl on CUDA), each rank on its DistributedSampler share; only rank 0 writes and prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def setup_distributed(device: str) -> Dist:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; without them this is a single process."""
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but CUDA is not available")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        import torch.distributed as dist

        local = int(os.environ.get("LOCAL_RANK", "0"))
        if use_cuda:
            torch.cuda.set_device(local)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
        return Dist(rank=dist.get_rank(), world=dist.get_world_size(), device=dev)
    return Dist(device=torch.device("cuda") if use_cuda else torch.device("cpu"))


def _wrap(module: nn.Module, d: Dist) -> nn.Module:
    """DistributedDataParallel around the module being trained (its trainable parameters)."""
    if not d.active:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [d.device.index] if d.device.type == "cuda" else None
    return DDP(module, device_ids=ids)


def _epoch_indices(n: int, d: Dist, seed: int, stage: int, epoch: int) -> list[int]:
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(range(n), num_replicas=d.world, rank=d.rank, shuffle=True,
                                 seed=seed)
    sampler.set_epoch(stage * 100_003 + epoch)
    return list(sampler)


def _generator(seed: int, stage: int, epoch: int, rank: int) -> torch.Generator:
    return torch.Generator().manual_seed(((seed * 1_000_003 + stage) * 10_007 + epoch) * 101 + rank)
