"""Rebuild a shipped bundle from the recipe its config.json records (`python -m training build-checkpoints`)."""

from __future__ import annotations

import io
import zipfile
from dataclasses import fields
from pathlib import Path

from training.bundle import LATENTS_FILE, find_bundles, read_config
from training.bundle.atomic import atomic_write_bytes
from training.data.location import PROCEDURAL_DATASETS, load_arguments
from training.errors import LatentExplorerError
from training.loops.config import RUNTIME_FIELDS, TrainConfig
from training.models import registry

# PROCEDURAL_DATASETS are drawn by our own code: their images may ship. Every other dataset's images may not be
# redistributed, so a shipped VAE bundle keeps only the codes, labels and dataset positions of its held-out images.


def dataset_arguments(config: dict, data_root: str | None = None) -> dict:
    """load_dataset() keyword arguments that rebuild the training data; a real dataset's folder is found as
    location.find_dataset_folder says: data_root, the environment, or an older bundle's recorded path."""
    source = config["dataset"].get("source") or {}
    name = source.get("name") or config["dataset"]["name"]
    if name == "toyfaces":
        if "load_args" in source:
            return dict(source["load_args"])
        args = {"name": "toyfaces", "image_size": source.get("image_size", config["dataset"]["image_size"]),
                "num_images": source.get("num_images"), "seed": source.get("seed", 0)}
        if source.get("attributes"):
            args["attributes"] = source["attributes"]
        return args
    if "load_args" not in source:
        raise LatentExplorerError(f"the bundle's config does not record how to load its dataset {name!r}")
    return load_arguments({**source, "name": name}, data_root)


def recipe(config: dict) -> tuple[str, object, TrainConfig]:
    """(family, model config, training config) exactly as recorded."""
    family = config["family"]
    if family not in registry.TRAINABLE:
        raise LatentExplorerError(f"bundles of family {family!r} are imported, not trained; nothing to rebuild")
    model_config = registry.model_config(family, config["model"])
    recorded = {k: v for k, v in config.get("training", {}).items() if k not in RUNTIME_FIELDS}
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(recorded) - known)
    if unknown:
        raise LatentExplorerError(f"the recorded training config has fields this version does not know: {unknown}")
    if registry.capabilities(family).conditional:
        # Bundles written before the option existed trained D's classifier on fakes too (the ACGAN paper).
        recorded.setdefault("classify_fakes", True)
    if "snapshot_steps" in recorded:
        recorded["snapshot_steps"] = tuple(recorded["snapshot_steps"])
    return family, model_config, TrainConfig(**recorded)


def select(root: Path, only: list[str] | None) -> list[Path]:
    """Shipped bundles under root, optionally only those named like 'anime/cgan' or 'toyfaces'."""
    bundles = [p for p in find_bundles(root) if read_config(p)["family"] in registry.TRAINABLE]
    if not only:
        return bundles
    chosen = [p for p in bundles if any(str(p.relative_to(root)) == o.strip("/") or
                                        str(p.relative_to(root)).startswith(o.strip("/") + "/") for o in only)]
    if not chosen:
        names = ", ".join(str(p.relative_to(root)) for p in bundles)
        raise LatentExplorerError(f"no shipped bundle matches {only}; the shipped bundles are: {names}")
    return chosen


def strip_dataset_images(bundle: Path, config: dict) -> bool:
    """Drop the held-out images from a shipped bundle's latents.npz unless its dataset is procedural; the
    explorer reads those originals from a local copy of the dataset instead. True when something was dropped."""
    import numpy as np

    file = Path(bundle) / LATENTS_FILE
    if config["dataset"].get("name") in PROCEDURAL_DATASETS or not file.exists():
        return False
    with zipfile.ZipFile(file) as archive:
        if "images.npy" not in archive.namelist():
            return False
    with np.load(file, allow_pickle=False) as data:
        kept = {k: data[k] for k in data.files if k != "images"}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **kept)
    atomic_write_bytes(file, buffer.getvalue())
    return True
