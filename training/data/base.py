"""The in-memory dataset every training loop and explorer page reads: uint8 images plus named labels."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from training.errors import LatentExplorerError

if TYPE_CHECKING:
    from training.attributes import Attribute


@dataclass
class ImageDataset:
    """Images as uint8 (N, H, W, C), possibly memory-mapped; labels as int64 (N, A), one column per attribute."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    attributes: tuple[Attribute, ...]

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise LatentExplorerError(
                f"dataset {self.name!r}: images must be uint8 (N, H, W, C), got {self.images.dtype} {self.images.shape}"
            )
        if self.labels.shape != (len(self.images), len(self.attributes)):
            raise LatentExplorerError(
                f"dataset {self.name!r}: labels shape {self.labels.shape} does not match "
                f"{len(self.images)} images x {len(self.attributes)} attributes"
            )

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    @property
    def channels(self) -> int:
        return int(self.images.shape[3])

    def attribute_names(self) -> list[str]:
        return [a.name for a in self.attributes]

    def batch(self, index: np.ndarray | slice) -> tuple[torch.Tensor, torch.Tensor]:
        """Images as float (B, C, H, W) in [-1, 1] and their label rows."""
        return images_to_tensor(self.images[index]), torch.from_numpy(np.asarray(self.labels[index]))

    def subset(self, index: np.ndarray) -> ImageDataset:
        return ImageDataset(self.name, self.images[index], self.labels[index], self.attributes)


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (B, H, W, C) -> float32 (B, C, H, W) in [-1, 1], the DCGAN tutorial's normalisation."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return x.div_(127.5).sub_(1.0)


def cache_dir() -> Path:
    """Where prepared datasets live: $LATENT_EXPLORER_CACHE, else ~/.cache/latent-explorer (never the repo)."""
    root = os.environ.get("LATENT_EXPLORER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "latent-explorer")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
