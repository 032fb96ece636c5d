"""Look up a dataset by name: the one entry point the CLI and the explorer use."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from training.data.base import ImageDataset
from training.errors import LatentExplorerError

DATASETS = ("toyfaces", "celeba", "anime", "fashion-mnist", "folder")


def load_dataset(name: str, image_size: int = 64, num_images: int | None = None, seed: int = 0,
                 path: str | None = None, progress: bool = True, *, attributes: Sequence[str] | None = None,
                 face_margin: float | None = None, split: str | None = None, labels: str | None = None
                 ) -> tuple[ImageDataset, dict]:
    """Return the dataset and a JSON description of where it came from (saved in bundles for rebuilding).

    path is the dataset's folder (--data-root); attributes picks and orders the label columns (None: all);
    face_margin trims that fraction of the shorter side from each edge before resizing (photos only);
    split picks CelebA's (all/train/valid/test) or Fashion-MNIST's (train/test/all) partition; labels is the
    CSV of a `folder` dataset. The real datasets' descriptions carry `load_args`, which rebuild the same
    dataset: load_dataset(**source["load_args"]).
    """
    if attributes is not None and isinstance(attributes, str):
        attributes = [a for a in attributes.split(",") if a.strip()]
    if name == "toyfaces":
        return _toyfaces(image_size, num_images, seed, path, progress, attributes, face_margin, split, labels)
    if name not in DATASETS:
        raise LatentExplorerError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if labels is not None and name != "folder":
        raise LatentExplorerError(f"--labels is for the folder dataset; {name} has its own labels, drop it")
    if split is not None and name not in ("celeba", "fashion-mnist"):
        raise LatentExplorerError(f"{name} has no train/test partition; drop the split")
    if name == "celeba":
        from training.data.celeba import load_celeba

        return load_celeba(path, image_size, attributes, face_margin, num_images, split or "all", progress)
    if name == "anime":
        from training.data.anime import load_anime

        return load_anime(path, image_size, attributes, face_margin, num_images, progress)
    if name == "fashion-mnist":
        if face_margin:
            raise LatentExplorerError("fashion-mnist images are small product photos that fill the frame; "
                                      "--face-margin is for face photos, drop it")
        from training.data.fashion_mnist import load_fashion_mnist

        return load_fashion_mnist(path, image_size, attributes, num_images, split or "train", progress)
    from training.data.folder import load_folder

    return load_folder(path, image_size, attributes, face_margin, num_images, labels, progress)


def _toyfaces(image_size: int, num_images: int | None, seed: int, path: str | None, progress: bool,
              attributes: Sequence[str] | None, face_margin: float | None, split: str | None, labels: str | None
              ) -> tuple[ImageDataset, dict]:
    if path is not None:
        raise LatentExplorerError("toyfaces is generated, not read from disk: drop --data-root")
    if face_margin:
        raise LatentExplorerError("toyfaces faces already fill the frame: drop --face-margin")
    if split is not None or labels is not None:
        raise LatentExplorerError("toyfaces has no split and no labels file: drop them")
    from training.data.sources import select_attributes
    from training.data.toyfaces import ATTRIBUTES, VERSION, load_toyfaces

    # A bad attribute name fails before 30,000 faces are drawn.
    select_attributes("toyfaces", ATTRIBUTES, np.zeros((0, len(ATTRIBUTES)), np.int64), attributes)
    n = num_images or 30000
    dataset = load_toyfaces(n=n, seed=seed, size=image_size, progress=progress)
    source = {"name": "toyfaces", "num_images": n, "seed": seed, "image_size": image_size,
              "generator_version": VERSION}
    if attributes is not None:
        attrs, labels_ = select_attributes("toyfaces", dataset.attributes, dataset.labels, attributes)
        dataset = ImageDataset(dataset.name, dataset.images, labels_, attrs)
        source["attributes"] = [a.name for a in attrs]
    return dataset, source

