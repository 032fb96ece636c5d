"""What a bundle's config.json says about the data a run read and the software that ran it."""

from __future__ import annotations

import torch

from training.data.base import ImageDataset
from training.data.location import portable_source


def dataset_summary(dataset: ImageDataset, source: dict) -> dict:
    """The bundle's dataset section: what the images are, and where they came from by a path relative to a data
    root (never a path of this machine)."""
    return {
        "name": dataset.name,
        "source": portable_source(source),
        "num_images": len(dataset),
        "image_size": dataset.image_size,
        "channels": dataset.channels,
        "normalisation": "x / 127.5 - 1 (pixels in [-1, 1])",
        "attributes": [a.to_json() for a in dataset.attributes],
    }


def versions() -> dict:
    import torchvision

    return {"torch": torch.__version__, "torchvision": torchvision.__version__}
