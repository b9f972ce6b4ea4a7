"""DDP helpers: joining the process group, rank 0 first, each rank's share of an epoch, one decision for all.

Under ``torchrun`` / ``accelerate launch --multi_gpu`` (WORLD_SIZE > 1) the run joins an nccl (GPU) or gloo
(CPU) group; every rank builds the same batch order and takes its share, and only rank 0 writes files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

log = logging.getLogger(__name__)


def setup_distributed(device: torch.device) -> tuple[int, int]:
    """(rank, world size). Under torchrun / accelerate launch (WORLD_SIZE > 1) joins an nccl (GPU) or gloo
    (CPU) process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        if "ACCELERATE_MIXED_PRECISION" in os.environ and "WORLD_SIZE" not in os.environ:
            # accelerate launch's single-process mode sets its own variables but no WORLD_SIZE; it is also what
            # `--num_processes N` without `--multi_gpu` silently starts, even on a CPU-only machine
            log.warning(
                "accelerate launch started one process; for N processes use "
                "`accelerate launch --multi_gpu --num_processes N` (also on a CPU-only machine)"
            )
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


@contextmanager
def rank_zero_first(rank: int, world: int, needed: bool = True) -> Iterator[None]:
    """Rank 0 runs the block before the other ranks do (it downloads and saves a Hub dataset once; they find it
    saved). It reaches the barrier even when the block fails, so the others do not wait forever."""
    import torch.distributed as dist

    wait = needed and world > 1
    if wait and rank != 0:
        dist.barrier()
    try:
        yield
    finally:
        if wait and rank == 0:
            dist.barrier()


def rank_share(batches: list[list[int]], rank: int, world: int) -> list[list[int]]:
    """This rank's batches of an epoch. DDP ranks step in lockstep, so each gets the same count: the first
    ``len // world * world`` batches dealt round-robin (the rest wait for another epoch's shuffle); with fewer
    batches than ranks every rank takes them all."""
    if len(batches) < world:
        return list(batches)
    return batches[: len(batches) // world * world][rank::world]


def same_on_every_rank(flag: bool, world: int, device: torch.device) -> bool:
    """Rank 0's ``flag`` on every rank (a broadcast; the flag itself with one process)."""
    if world <= 1:
        return flag
    import torch.distributed as dist

    value = torch.tensor([int(flag)], device=device)
    dist.broadcast(value, src=0)
    return bool(value.item())
