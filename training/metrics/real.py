"""The real images an evaluation compares with: the training set a model saw, and held-out images it did not."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.data.base import ImageDataset
from training.data.location import load_arguments
from training.errors import LatentExplorerError

# toyfaces is generated from a seed, so "held-out" means faces drawn with another seed: independent draws from
# the same distribution that no model trained on seed s has seen (face i of seed s comes from rng([s, i])).
HELDOUT_SEED_OFFSET = 1_000_000
# Datasets with an official test partition (load_dataset(..., split="test")).
SPLIT_DATASETS = ("celeba", "fashion-mnist")
# Datasets without a partition: this fraction of the images (a seeded choice) is held out.
HELDOUT_FRACTION = 0.1


@dataclass
class RealData:
    train: ImageDataset
    test: ImageDataset
    train_source: dict
    test_source: dict


def _toyfaces(image_size: int, num_images: int | None, seed: int, n_test: int, progress: bool,
              attributes: list[str] | None) -> RealData:
    from training.data.registry import load_dataset

    extra = {"attributes": attributes} if attributes else {}
    train, source = load_dataset("toyfaces", image_size=image_size, num_images=num_images, seed=seed,
                                 progress=progress, **extra)
    test_seed = HELDOUT_SEED_OFFSET + int(seed)
    test, test_source = load_dataset("toyfaces", image_size=image_size, num_images=n_test, seed=test_seed,
                                     progress=progress, **extra)
    test_source = {**test_source, "held_out": f"faces drawn with seed {test_seed}, which no model trained on "
                                              f"seed {seed} saw"}
    return RealData(train, test, source, test_source)


def load_real(name: str, image_size: int, num_images: int | None = None, seed: int = 0,
              data_root: str | Path | None = None, n_test: int = 5000, progress: bool = False,
              load_args: dict | None = None) -> RealData:
    """Training images (as the model or feature network saw them) and up to n_test held-out images.

    load_args (from location.load_arguments: a bundle's recorded call with this machine's folder) rebuild a real
    dataset exactly as it was trained on; without them the folder is data_root, else the one the environment
    names (location.find_dataset_folder).
    """
    from training.data.registry import load_dataset

    if n_test < 2:
        raise LatentExplorerError(f"need at least 2 held-out images, got {n_test}")
    if name == "toyfaces":
        return _toyfaces(image_size, num_images, seed, n_test, progress, (load_args or {}).get("attributes"))
    args = dict(load_args) if load_args is not None else load_arguments({"name": name}, data_root)
    args.setdefault("image_size", image_size)
    args.setdefault("num_images", num_images)
    if name in SPLIT_DATASETS and "split" not in args:
        args["split"] = "train"
    train, source = load_dataset(**args, progress=progress)
    if name in SPLIT_DATASETS:
        try:
            test, test_source = load_dataset(**{**args, "split": "test", "num_images": n_test}, progress=progress)
        except LatentExplorerError:  # a partial copy (the first 10,000 CelebA faces are all in the train partition)
            test = None
        if test is not None and len(test) >= 2:
            seen = args["split"] != "train"
            note = "the dataset's official test partition" + (
                f"; the model was trained on split {args['split']!r}, which includes it" if seen else "")
            return RealData(train, test, source, {**test_source, "held_out": note})
    order = np.random.default_rng(seed).permutation(len(train))
    n_held = max(2, int(round(len(train) * HELDOUT_FRACTION)))
    if len(train) - n_held < 2:
        raise LatentExplorerError(f"{name}: {len(train)} images are too few to hold some out")
    test = train.subset(np.sort(order[:n_held][:n_test]))
    kept = train.subset(np.sort(order[n_held:]))
    test_source = {**source, "held_out": f"{len(test)} of {len(train)} images chosen with seed {seed}; this {name} "
                   "copy has no test partition, so a model trained on the whole folder has seen them"}
    return RealData(kept, test, source, test_source)


def load_real_for_bundle(config: dict, data_root: str | Path | None = None, n_test: int = 5000,
                         progress: bool = False) -> RealData:
    """The real images behind a bundle, rebuilt from config["dataset"]["source"]."""
    dataset = config.get("dataset", {})
    source = dataset.get("source") or {}
    name = source.get("name") or dataset.get("name")
    if not name:
        raise LatentExplorerError("the bundle's config.json does not say which dataset it was trained on")
    image_size = int(source.get("image_size") or dataset.get("image_size") or config["model"]["image_size"])
    if name == "toyfaces":
        load_args = {"attributes": source["attributes"]} if source.get("attributes") else None
    else:
        load_args = load_arguments({**source, "name": name}, data_root)
    return load_real(name, image_size=image_size, num_images=source.get("num_images"),
                     seed=int(source.get("seed", 0)), n_test=n_test, progress=progress,
                     load_args=load_args)
