"""Multi-process training under torchrun: which process this is, the process group, DDP wrapping, and the
few collectives the loops need (mean of the logged numbers, gathering every rank's random streams).

`torchrun --nproc_per_node=N -m training train ...` starts N copies of the CLI with RANK, WORLD_SIZE and
LOCAL_RANK set. Each copy trains on its own disjoint slice of every batch order (see loops.batches.EpochBatches)
with `--batch-size` images, so the global batch is N x --batch-size; DistributedDataParallel averages the
gradients, so all copies hold the same weights after every step. Only rank 0 writes files or shows progress.
Without those variables (or with WORLD_SIZE=1) everything here is a no-op and training is one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from training.errors import LatentExplorerError


@dataclass(frozen=True)
class Processes:
    """This process's place in the run: rank r of world_size, and the process group's backend."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes bundles, snapshots and progress."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


SINGLE = Processes()


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise LatentExplorerError(f"environment variable {name}={value!r} is not a whole number") from None


def setup(device: torch.device) -> tuple[Processes, torch.device]:
    """Join the process group torchrun describes (gloo on the CPU, nccl on CUDA) and pick this rank's GPU.
    Returns SINGLE and the device unchanged when not started by torchrun."""
    world_size = _env_int("WORLD_SIZE") or 1
    if world_size <= 1:
        return SINGLE, device
    rank, local_rank = _env_int("RANK") or 0, _env_int("LOCAL_RANK") or 0
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise LatentExplorerError(
                f"rank {rank} wants GPU {local_rank} but this machine has {torch.cuda.device_count()}; start at "
                "most one process per GPU (torchrun --nproc_per_node) or pass --device cpu"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():  # joined once per process; later runs in the same process reuse the group
        dist.init_process_group(backend=backend, device_id=device if device.type == "cuda" else None)
    return Processes(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank,
                     backend=dist.get_backend()), device


def shutdown() -> None:
    """Leave the process group at the end of the process (safe to call when there is none)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: nn.Module, processes: Processes, device: torch.device) -> nn.Module:
    """DistributedDataParallel around `module` when several processes train, else the module itself.
    Bundles save the inner module, so their tensor names never get DDP's `module.` prefix."""
    if not processes.active:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def mean_values(values: dict[str, float], processes: Processes, device: torch.device) -> dict[str, float]:
    """The mean of each logged number over all ranks (the global batch's), so every rank records the same
    history and makes the same divergence decision."""
    if not processes.active:
        return values
    packed = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    dist.all_reduce(packed)
    return dict(zip(values, (packed / processes.world_size).tolist()))


def gather_tensors(tensor: torch.Tensor, processes: Processes, device: torch.device) -> list[torch.Tensor]:
    """Every rank's copy of a same-shaped tensor, on the CPU, in rank order ([tensor] for one process)."""
    if not processes.active:
        return [tensor]
    local = tensor.to(device)
    gathered = [torch.empty_like(local) for _ in range(processes.world_size)]
    dist.all_gather(gathered, local)
    return [t.cpu() for t in gathered]


def barrier(processes: Processes) -> None:
    if processes.active:
        dist.barrier()
