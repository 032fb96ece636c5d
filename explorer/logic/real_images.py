"""Real training images for a bundle's dataset, for the pages that show them beside generated ones (training replay,
VAE vs GAN, the VAE latent map's originals). No Streamlit here."""

from __future__ import annotations

import numpy as np
import torch

from training.errors import LatentExplorerError

# The explorer's setting for the folder of the user's datasets, and what a page says when it finds no copy.
DATA_ROOT_LABEL = "Folder of your datasets"
APP_ASK = ('the {name} images are not shipped with the app: type the folder that holds your {folder} folder in the '
           f'sidebar box "{DATA_ROOT_LABEL}"')
# Fields of an older bundle's dataset description that load_dataset takes (newer bundles record `load_args`).
_LOOSE_FIELDS = ("num_images", "seed", "attributes", "face_margin", "split")
# The folder each real dataset was last read from on this server (dataset name -> folder as typed), so that a
# reload, or another visitor, finds the dataset again without typing the folder a second time. Only a folder
# that has just given the dataset's images is kept, so a wrong path typed by a visitor never replaces it.
_READ_FROM: dict[str, str] = {}


def remembered_data_root(name: str | None) -> str | None:
    """The folder this server last read the named dataset from, or None."""
    return _READ_FROM.get(str(name)) if name else None


def real_images(dataset: dict, n: int, local_path: str | None = None,
                indices: np.ndarray | None = None) -> torch.Tensor:
    """n real training images (B, C, H, W) in [-1, 1] for the bundle's dataset description: the first n, or the
    ones at `indices` (dataset positions). toyfaces are regenerated from the recorded seed; other datasets are
    read, prepared as in training, from this machine's copy: local_path (the dataset's folder or one that holds
    it), else the environment (training.data.location); else LatentExplorerError saying how to point at one."""
    from training.data.base import images_to_tensor

    name = dataset.get("name", "?")
    source = dataset.get("source") or {}
    size = int(dataset.get("image_size") or source.get("image_size") or 64)
    if name == "toyfaces":
        from training.data.toyfaces import generate_toyfaces

        count = min(n, int(source.get("num_images") or n))
        if indices is not None:
            count = int(np.max(indices)) + 1 if len(indices) else 0
        images, _ = generate_toyfaces(max(count, 1), seed=int(source.get("seed", 0)), size=size, workers=1)
        return images_to_tensor(images if indices is None else images[np.asarray(indices)])
    if name == "imported":
        raise LatentExplorerError("this generator was imported without its training data, so there are no real "
                                  "images to compare with")
    from training.data.location import load_arguments

    typed = local_path.strip() if isinstance(local_path, str) and local_path.strip() else None
    args = load_arguments({**source, "name": name}, typed or remembered_data_root(name), APP_ASK)
    if "load_args" not in source:  # older bundles: the loose fields of the description
        args.update({k: source[k] for k in _LOOSE_FIELDS if source.get(k) is not None})
    data = load_recorded(args, size)
    if len(data) == 0:
        raise LatentExplorerError(f"{args.get('path')}: no images found")
    index = np.arange(min(n, len(data))) if indices is None else np.asarray(indices)
    if len(index) and int(index.max()) >= len(data):
        raise LatentExplorerError(f"the {name} copy at {args.get('path')} has {len(data)} images, fewer than the "
                                  f"training set (position {int(index.max())} is missing): it is not the same dataset")
    real, _ = data.batch(index)
    if typed is not None:
        _READ_FROM[str(name)] = typed
    return real


def load_recorded(args: dict, image_size: int):
    """The dataset a bundle records, at image_size: every argument of load_dataset read by name from the recorded
    call (a config is untrusted, so anything else it holds is ignored)."""
    from training.data.registry import load_dataset

    data, _ = load_dataset(args.get("name"), image_size=image_size, num_images=args.get("num_images"),
                           seed=args.get("seed", 0), path=args.get("path"), progress=False,
                           attributes=args.get("attributes"), face_margin=args.get("face_margin"),
                           split=args.get("split"), labels=args.get("labels"))
    return data
