"""Look up a dataset by name: the one entry point the CLI and the explorer use."""

from __future__ import annotations

from training.data.base import ImageDataset
from training.errors import LatentExplorerError

DATASETS = ("toyfaces",)


def load_dataset(name: str, image_size: int = 64, num_images: int | None = None, seed: int = 0,
                 path: str | None = None, progress: bool = True) -> tuple[ImageDataset, dict]:
    """Return the dataset and a JSON description of where it came from (saved in bundles for rebuilding)."""
    if name == "toyfaces":
        if path is not None:
            raise LatentExplorerError("toyfaces is generated, not read from disk: drop --data-path")
        from training.data.toyfaces import VERSION, load_toyfaces

        n = num_images or 30000
        dataset = load_toyfaces(n=n, seed=seed, size=image_size, progress=progress)
        return dataset, {"name": "toyfaces", "num_images": n, "seed": seed, "image_size": image_size,
                         "generator_version": VERSION}
    raise LatentExplorerError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
