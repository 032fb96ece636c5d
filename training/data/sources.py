"""What every file-based dataset source (celeba, anime, folder) shares: the files it found with one label row each,
attribute selection, finding the image folder, and the description of the source a bundle records."""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.attributes import Attribute
from training.data.base import ImageDataset
from training.data.prepare import Preprocessing, prepare_images
from training.errors import LatentExplorerError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
SKIPPED_EXAMPLES = 5  # how many unreadable files the source description names (the count covers all of them)


@dataclass
class FileIndex:
    """What a source found on disk before decoding: image files, one label row each, and what it left out."""

    paths: list[str]
    labels: np.ndarray  # int64 (len(paths), len(attributes))
    attributes: tuple[Attribute, ...]
    left_out: dict[str, int] = field(default_factory=dict)  # e.g. {"missing_image": 3}: counted before decoding
    files: dict[str, str] = field(default_factory=dict)  # label/tag files used, for the record


def select_attributes(dataset_name: str, attributes: tuple[Attribute, ...], labels: np.ndarray,
                      names: Sequence[str] | None) -> tuple[tuple[Attribute, ...], np.ndarray]:
    """Keep the named label columns in the order given (None keeps all). Names match exactly or ignoring case."""
    if names is None:
        return attributes, labels
    by_name = {a.name: i for i, a in enumerate(attributes)}
    by_lower = {a.name.lower(): i for i, a in enumerate(attributes)}
    columns: list[int] = []
    for raw in names:
        name = str(raw).strip()
        index = by_name.get(name, by_lower.get(name.lower()))
        if index is None:
            available = [a.name for a in attributes]
            if not available:
                raise LatentExplorerError(f"{dataset_name} has no attributes, so {name!r} cannot be a label; "
                                          f"drop --attributes (or give the folder a labels.csv)")
            close = difflib.get_close_matches(name, available, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise LatentExplorerError(f"{dataset_name} has no attribute {name!r}.{hint} "
                                      f"Choose from: {', '.join(available)}")
        if index not in columns:
            columns.append(index)
    return tuple(attributes[i] for i in columns), labels[:, columns]


def check_num_images(num_images: int | None) -> None:
    if num_images is not None and int(num_images) <= 0:
        raise LatentExplorerError(f"--num-images must be positive (or left out to use every image), got {num_images}")


def check_folder(path: str | os.PathLike | None, dataset_name: str, expected: str) -> Path:
    """The folder as an absolute Path, or a clear error saying what the folder should hold."""
    if path is None or str(path) == "":
        raise LatentExplorerError(f"{dataset_name} needs --data-root: the folder that holds {expected}")
    root = Path(path).expanduser()
    if not root.exists():
        raise LatentExplorerError(f"{dataset_name}: no such folder {root}; pass --data-root with the folder that "
                                  f"holds {expected}")
    if not root.is_dir():
        raise LatentExplorerError(f"{dataset_name}: {root} is a file, not a folder; pass --data-root with the folder "
                                  f"that holds {expected}")
    return root.resolve()


def images_by_stem(folder: Path) -> dict[str, str]:
    """Image file names in one folder (not recursive), keyed by both full name and stem, for label-row look-ups."""
    found: dict[str, str] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            stem, _, ext = name.rpartition(".")
            if stem and f".{ext.lower()}" in IMAGE_EXTENSIONS and not name.startswith(".") and entry.is_file():
                found[name] = name
                found.setdefault(stem, name)
    return found


def find_image_folder(root: Path, candidates: Sequence[str]) -> tuple[Path | None, dict[str, str]]:
    """The first of root's candidate sub-folders ("" is root itself) that holds images, with its images_by_stem;
    (None, {}) when none does."""
    for rel in candidates:
        folder = root / rel if rel else root
        present = images_by_stem(folder) if folder.is_dir() else {}
        if present:
            return folder, present
    return None, {}

def build_dataset(name: str, root: Path, index: FileIndex, prep: Preprocessing, attributes: Sequence[str] | None,
                  num_images: int | None, progress: bool, load_args: dict, extra: dict | None = None
                  ) -> tuple[ImageDataset, dict]:
    """Decode (or memory-map) the indexed files and describe the result for the bundle's config.json."""
    check_num_images(num_images)
    select_attributes(name, index.attributes, index.labels[:0], attributes)  # a bad name fails before decoding
    paths, labels = index.paths, index.labels
    if num_images is not None:
        paths, labels = paths[:num_images], labels[:num_images]
    if not paths:
        raise LatentExplorerError(f"{name}: found no usable images under {root}")
    prepared = prepare_images(paths, prep, name, progress=progress)
    attrs, selected = select_attributes(name, index.attributes, labels[prepared.kept], attributes)
    dataset = ImageDataset(name, prepared.images, np.ascontiguousarray(selected, dtype=np.int64), attrs)
    skipped = {**index.left_out, "unreadable_image": len(prepared.skipped)}
    source = {
        "name": name,
        "root": str(root),
        "num_images": len(dataset),
        "num_images_requested": num_images,
        "image_size": prep.size,
        "channels": prep.channels,
        "preprocessing": prep.to_json(),
        "attributes": [a.name for a in attrs],
        "skipped": skipped,
        "unreadable_examples": [f"{s['path']}: {s['reason']}" for s in prepared.skipped[:SKIPPED_EXAMPLES]],
        "files": dict(index.files),
        **(extra or {}),
        "cache_file": prepared.cache_file.name if prepared.cache_file else None,
        "load_args": load_args,
    }
    return dataset, source
