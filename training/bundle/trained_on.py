"""Which dataset an imported generator was trained on: the choices, the dataset record its bundle keeps (the one the
dataset's shipped bundles record, so that it is scored like them, on the same real images with the same feature
network), the check that the file's images fit that dataset, and the dataset's shipped model to score it beside."""

from __future__ import annotations

import copy
from pathlib import Path

from training.bundle import CONFIG_FILE, METRICS_FILE, atomic_write_json, find_bundles, read_config
from training.bundle import paths as bundle_paths
from training.data.location import recorded_bundle_path
from training.errors import LatentExplorerError
from training.models import registry

# The datasets a tutorial generator can be marked as trained on: the ones the class ships models of.
TRAINED_ON = ("celeba", "anime", "toyfaces", "fashion-mnist")
# The dataset name of a generator imported without one: it is explored, never scored (no real images to compare).
UNKNOWN = "imported"
# Whose dataset record an import copies: the dataset's own DCGAN (the tutorial's model, trained on the whole
# dataset as the tutorial does), else its feature network, else any other bundle of the dataset.
RECORD_FROM = ("dcgan", "featurenet")
# A student's run trained on a number of images we cannot know: the shipped model's count would be a false record.
NOT_COPIED = ("num_images",)


def check_choice(dataset: str | None) -> None:
    """Refuse a dataset name that is not one of TRAINED_ON (None: not named, always fine)."""
    if dataset is not None and dataset not in TRAINED_ON:
        raise LatentExplorerError(f"--data must be one of {', '.join(TRAINED_ON)}, or left out when the generator was "
                                  f"trained on something else (got {str(dataset)[:60]!r})")


def _root(checkpoints: str | Path | None) -> Path:
    return Path(checkpoints) if checkpoints is not None else bundle_paths.checkpoints_root()


def _readable(path: Path) -> dict | None:
    try:
        return read_config(path)
    except LatentExplorerError:
        return None


def shipped_record(dataset: str, checkpoints: str | Path | None = None) -> tuple[dict, Path]:
    """The dataset record (config["dataset"]) the dataset's shipped bundles keep, and the bundle it comes from."""
    check_choice(dataset)
    folder = _root(checkpoints) / dataset
    preferred = [folder / name for name in RECORD_FROM]
    for path in [*preferred, *(p for p in find_bundles(folder) if p not in preferred)]:
        config = _readable(path)
        if config is not None and config["dataset"].get("name") == dataset:
            return config["dataset"], path
    raise LatentExplorerError(f"no bundle under {folder} says how {dataset} was prepared (its feature network or "
                              f"DCGAN), so a generator cannot be marked as trained on {dataset} here")


def _looks(image_size: int, channels: int) -> str:
    return f"{'grey' if channels == 1 else 'colour'} {image_size}x{image_size}"


def dataset_record(dataset: str, image_size: int, channels: int, label: str,
                   checkpoints: str | Path | None = None) -> dict:
    """The record an imported generator trained on `dataset` keeps: the shipped one, once the generator's image size
    and channels are checked against it (one sentence when they do not fit)."""
    record, source = shipped_record(dataset, checkpoints)
    wanted_size = int(record.get("image_size") or (record.get("source") or {}).get("image_size") or 0)
    wanted_channels = int(record.get("channels") or (record.get("source") or {}).get("channels") or 3)
    if (image_size, channels) != (wanted_size, wanted_channels):
        raise LatentExplorerError(
            f"{label} makes {_looks(image_size, channels)} images and {dataset} images are "
            f"{_looks(wanted_size, wanted_channels)}, so it was not trained on {dataset}: choose the dataset it was "
            "trained on, or none (something else) to explore it without scores")
    kept = {key: copy.deepcopy(value) for key, value in record.items() if key not in NOT_COPIED}
    kept["recorded_as_in"] = recorded_bundle_path(source, bundle_paths.REPO_ROOT)
    return kept


def unknown_record(label: str, image_size: int, channels: int) -> dict:
    """The record of a generator imported without naming its dataset."""
    return {
        "name": UNKNOWN,
        "source": {"name": UNKNOWN, "file": label},
        "image_size": image_size,
        "channels": channels,
        "normalisation": "x / 127.5 - 1 (pixels in [-1, 1]), as in the tutorial",
        "attributes": [],
    }


def record_trained_on(bundle: str | Path, dataset: str | None, checkpoints: str | Path | None = None) -> dict:
    """Mark an imported generator's bundle as trained on `dataset` (None: something else) and return its new config.
    Figures computed against the old dataset (metrics.json) no longer describe it and are removed."""
    check_choice(dataset)
    path = Path(bundle)
    config = read_config(path)
    imported = config.get("imported_from")
    if not isinstance(imported, dict):
        raise LatentExplorerError(f"{path}: only an imported generator's dataset can be chosen; this bundle was "
                                  "trained here and records its own")
    label = str(imported.get("file") or path.name)
    size, channels = int(config["model"]["image_size"]), int(config["model"]["channels"])
    record = (dataset_record(dataset, size, channels, label, checkpoints) if dataset is not None
              else unknown_record(label, size, channels))
    config = {**config, "dataset": record, "imported_from": {**imported, "trained_on": dataset}}
    (path / METRICS_FILE).unlink(missing_ok=True)
    atomic_write_json(path / CONFIG_FILE, config)
    return config


def shipped_generator(dataset: str, checkpoints: str | Path | None = None) -> Path | None:
    """The dataset's own model to score an imported generator beside: its DCGAN (the tutorial's model), else its
    first other generator; None when the checkpoints folder has none."""
    folder = _root(checkpoints) / dataset
    candidates = [folder / "dcgan", *(p for p in find_bundles(folder) if p != folder / "dcgan")]
    for path in candidates:
        config = _readable(path)
        if (config is not None and config["dataset"].get("name") == dataset
                and registry.capabilities(config["family"]).generates and "imported_from" not in config):
            return path
    return None
