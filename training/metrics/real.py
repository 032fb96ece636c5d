"""The real images an evaluation compares with: the training set a model saw, and held-out images it did not."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.data.base import ImageDataset
from training.errors import LatentExplorerError

# toyfaces is generated from a seed, so "held-out" means faces drawn with another seed: independent draws from
# the same distribution that no model trained on seed s has seen (face i of seed s comes from rng([s, i])).
HELDOUT_SEED_OFFSET = 1_000_000
# Datasets read from disk without their own test split: this fraction of the images (a seeded choice) is held out.
HELDOUT_FRACTION = 0.1


@dataclass
class RealData:
    train: ImageDataset
    test: ImageDataset
    train_source: dict
    test_source: dict


def load_real(name: str, image_size: int, num_images: int | None = None, seed: int = 0,
              data_root: str | Path | None = None, n_test: int = 5000, progress: bool = False) -> RealData:
    """Training images (as the model or feature network saw them) and up to n_test held-out images."""
    from training.data.registry import load_dataset

    if n_test < 2:
        raise LatentExplorerError(f"need at least 2 held-out images, got {n_test}")
    if name == "toyfaces":
        from training.data.toyfaces import load_toyfaces

        train, source = load_dataset(name, image_size=image_size, num_images=num_images, seed=seed,
                                     progress=progress)
        test_seed = HELDOUT_SEED_OFFSET + int(seed)
        test = load_toyfaces(n=n_test, seed=test_seed, size=image_size, progress=progress)
        test_source = {"name": "toyfaces", "num_images": n_test, "seed": test_seed, "image_size": image_size,
                       "held_out": f"faces drawn with seed {test_seed}, which no model trained on seed {seed} saw"}
        return RealData(train, test, source, test_source)
    if data_root is None:
        raise LatentExplorerError(
            f"the {name!r} images are not shipped with the program: pass --data-root with the local {name} "
            "folder (the one the model was trained on)"
        )
    if not Path(data_root).exists():
        raise LatentExplorerError(f"--data-root {data_root}: no such folder")
    full, source = load_dataset(name, image_size=image_size, num_images=num_images, seed=seed,
                                path=str(data_root), progress=progress)
    order = np.random.default_rng(seed).permutation(len(full))
    n_held = max(2, int(round(len(full) * HELDOUT_FRACTION)))
    if len(full) - n_held < 2:
        raise LatentExplorerError(f"{data_root}: {len(full)} images are too few to hold some out")
    test_index = np.sort(order[:n_held][:n_test])
    train = full.subset(np.sort(order[n_held:]))
    test = full.subset(test_index)
    test_source = {**source, "held_out": f"{len(test_index)} of {len(full)} images chosen with seed {seed}; "
                   "a model trained on the whole folder has seen them"}
    return RealData(train, test, source, test_source)


def load_real_for_bundle(config: dict, data_root: str | Path | None = None, n_test: int = 5000,
                         progress: bool = False) -> RealData:
    """The real images behind a bundle, rebuilt from config["dataset"]["source"]."""
    dataset = config.get("dataset", {})
    source = dataset.get("source") or {}
    name = source.get("name") or dataset.get("name")
    if not name:
        raise LatentExplorerError("the bundle's config.json does not say which dataset it was trained on")
    image_size = int(source.get("image_size") or dataset.get("image_size") or config["model"]["image_size"])
    root = data_root if data_root is not None else source.get("path")
    return load_real(name, image_size=image_size, num_images=source.get("num_images"),
                     seed=int(source.get("seed", 0)), data_root=root, n_test=n_test, progress=progress)
