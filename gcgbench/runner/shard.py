"""Sharding over processes with torch.distributed, as `torchrun` starts them.

    torchrun --nproc_per_node 4 -m gcgbench run --model difflmm --task gcg_val ...

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; we join its process group
(gloo on CPU, nccl on CUDA), give rank r the docs r, r+N, r+2N, … (interleaved, so ranks get similar
mixes), gather every rank's predictions on rank 0, which restores doc order and scores once. Multi-node
runs work the same way through torchrun's rendezvous. A single process never imports torch here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """This process's place in the run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def take(self, items: Sequence[T]) -> list[T]:
        """This rank's share: items rank, rank + world_size, ..."""
        return list(items[self.rank::self.world_size])

    def device(self, requested: str) -> str:
        """`cuda` becomes this process's GPU (`cuda:<local_rank>`) when several processes share a node."""
        if requested == "cuda" and self.world_size > 1:
            return f"cuda:{self.local_rank}"
        return requested


def current_shard() -> Shard:
    """The shard torchrun gave this process (rank 0 of 1 when not started by torchrun)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Shard()
    return Shard(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))


def init_process_group(shard: Shard, device: str) -> None:
    """Join torchrun's process group: nccl for CUDA devices, gloo otherwise."""
    if shard.world_size <= 1:
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        if device.startswith("cuda"):
            import torch

            torch.cuda.set_device(shard.local_rank)  # nccl's object collectives use the current device
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")


def gather_to_main(shard: Shard, items: list[Any]) -> list[Any] | None:
    """Every rank's list, concatenated rank by rank, on rank 0; None on the other ranks."""
    if shard.world_size <= 1:
        return list(items)
    import torch.distributed as dist

    gathered: list[list[Any]] | None = [None] * shard.world_size if shard.is_main else None  # type: ignore[list-item]
    dist.gather_object(items, gathered, dst=0)
    if not shard.is_main:
        return None
    return [item for part in gathered or [] for item in part]


def barrier(shard: Shard) -> None:
    if shard.world_size > 1:
        import torch.distributed as dist

        dist.barrier()


def destroy_process_group(shard: Shard) -> None:
    if shard.world_size > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
