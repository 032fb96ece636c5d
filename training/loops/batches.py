"""Which dataset positions each training step reads (reproducible, resumable) and the seeds of the random streams."""

from __future__ import annotations

import numpy as np
import torch

from training.errors import LatentExplorerError


class EpochBatches:
    """Endless shuffled batches of positions 0..n-1 (drop_last, like the tutorial's DataLoader), reproducible
    from the generator and resumable: `state()` is the generator's state when the current epoch's order was
    drawn and how many batches of it were taken, which is all `restore()` needs to continue the same sequence.

    With several processes (torchrun) every rank draws the same order and takes its own disjoint slice of each
    global batch of world_size x batch_size positions: rank r gets the r-th batch_size of them.
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, rank: int = 0, world_size: int = 1):
        if n < batch_size * world_size:
            raise LatentExplorerError(
                f"the dataset has {n} images, fewer than one batch of {batch_size}"
                + (f" for each of {world_size} processes" if world_size > 1 else "")
            )
        self.n, self.batch_size, self.generator = n, batch_size, generator
        self.rank, self.world_size = rank, world_size
        self.per_epoch = n // (batch_size * world_size)
        self.epoch_start = generator.get_state()
        self.order: np.ndarray | None = None
        self.taken = 0

    def __iter__(self) -> EpochBatches:
        return self

    def __next__(self) -> np.ndarray:
        if self.order is None or self.taken == self.per_epoch:
            self.epoch_start = self.generator.get_state()
            self.order = torch.randperm(self.n, generator=self.generator).numpy()
            self.taken = 0
        start = (self.taken * self.world_size + self.rank) * self.batch_size
        self.taken += 1
        return np.sort(self.order[start:start + self.batch_size])  # sorted reads are kinder to memory-mapped files

    def state(self) -> tuple[torch.Tensor, int]:
        """(generator state at the start of this epoch, batches taken in it; -1 before the first epoch)."""
        return self.epoch_start, self.taken if self.order is not None else -1

    def restore(self, epoch_start: torch.Tensor, taken: int) -> None:
        self.generator.set_state(epoch_start)
        self.epoch_start = epoch_start
        if taken < 0:
            self.order, self.taken = None, 0
        else:  # drawing the order again leaves the generator exactly where it was
            self.order = torch.randperm(self.n, generator=self.generator).numpy()
            self.taken = taken


def stream_seed(seed: int, stream: int, rank: int) -> int:
    """The seed of one random stream: data order (0, shared by all ranks), noise (1), label flips (2),
    InfoGAN codes (3). Rank 0 of a torchrun run uses the same seeds as a one-process run."""
    return seed + stream + 1_000_003 * rank
