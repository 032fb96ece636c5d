"""Any folder of images, searched recursively (LFW's name/name_0001.jpg, flat folders), with an optional labels CSV."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.attributes import Attribute
from training.data.base import ImageDataset
from training.data.prepare import Preprocessing
from training.data.sources import IMAGE_EXTENSIONS, FileIndex, build_dataset, check_folder
from training.errors import LatentExplorerError

EXPECTED = "image files (.jpg, .png, ...), in sub-folders or not"
LABELS_FILE = "labels.csv"
YES = frozenset({"1", "yes", "true", "y"})
NO = frozenset({"0", "-1", "no", "false", "n"})


def list_images(root: Path) -> list[str]:
    """Paths of every image under root relative to it (POSIX style), sorted; hidden files and folders are ignored."""
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__MACOSX")
        rel = Path(folder).relative_to(root)
        for name in files:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                found.append((rel / name).as_posix())
    return sorted(found)


def _value_names(values: list[str]) -> tuple[tuple[str, ...], dict[str, int]]:
    """Attribute values of one CSV column: ("no", "yes") for 0/1, -1/1, yes/no, true/false; else the sorted values."""
    distinct = set(values)
    lowered = {v.lower() for v in distinct}
    if lowered <= YES | NO:
        return ("no", "yes"), {v: int(v.lower() in YES) for v in distinct}

    def order(v: str) -> tuple[int, float, str]:
        try:
            return 0, float(v), v
        except ValueError:
            return 1, 0.0, v

    names = tuple(sorted(distinct, key=order))
    return names, {v: i for i, v in enumerate(names)}


def read_labels(path: Path, images: list[str]) -> tuple[tuple[Attribute, ...], dict[str, list[int]], int]:
    """(attributes, image rel path -> value indices, rows whose image is missing) from a CSV with a header row.

    The first column names the image: its path relative to the folder, its file name or its stem.
    """
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            rows = [(n, [c.strip() for c in row]) for n, row in enumerate(csv.reader(f), 1)
                    if any(c.strip() for c in row)]
    except (OSError, csv.Error) as exc:
        raise LatentExplorerError(f"folder: cannot read the labels file {path} ({exc})") from None
    if not rows:
        raise LatentExplorerError(f"folder: the labels file {path} is empty; it needs a header row like "
                                  f"'file,smiling,glasses' and one row per image")
    header = rows[0][1]
    names = header[1:]
    if not names or any(not n for n in names) or len(set(names)) != len(names):
        raise LatentExplorerError(f"folder: the header of {path} should be '<file column>,<attribute>,...' with "
                                  f"distinct, non-empty attribute names; got {','.join(header)[:80]!r}")
    by_rel = {p: p for p in images}
    by_name: dict[str, str | None] = {}
    by_stem: dict[str, str | None] = {}
    for p in images:
        name = p.rsplit("/", 1)[-1]
        by_name[name] = None if name in by_name else p  # None marks a name used twice: ambiguous
        stem = os.path.splitext(name)[0]
        by_stem[stem] = None if stem in by_stem else p
    table: dict[str, list[str]] = {}
    every_row: list[list[str]] = []  # value names come from every row, so they do not change as images come and go
    missing = 0
    for line, fields in rows[1:]:
        if len(fields) != len(header) or any(not c for c in fields):
            raise LatentExplorerError(f"folder: {path} line {line} is {','.join(fields)[:80]!r}; every row needs "
                                      f"{len(header)} non-empty fields like the header. Fix or delete that row")
        key = fields[0].replace("\\", "/")
        key = key[2:] if key.startswith("./") else key
        image = by_rel.get(key) or by_name.get(key) or by_stem.get(key)
        every_row.append(fields[1:])
        if image is None:
            missing += 1
            continue
        if image in table:
            raise LatentExplorerError(f"folder: {path} line {line} labels {image} a second time; keep one row")
        table[image] = fields[1:]
    attributes = []
    coded: dict[str, list[int]] = {image: [] for image in table}
    for k, name in enumerate(names):
        values, mapping = _value_names([row[k] for row in every_row])
        attributes.append(Attribute(name, values))
        for image, row in table.items():
            coded[image].append(mapping[row[k]])
    return tuple(attributes), coded, missing


def index_folder(root: Path, labels: str | os.PathLike | None = None) -> FileIndex:
    """Every image under root; with a labels CSV (given, or root/labels.csv) only the labelled ones, in folder order."""
    images = list_images(root)
    if not images:
        raise LatentExplorerError(f"folder: no images under {root}; it should hold {EXPECTED}")
    labels_path: Path | None = None
    if labels is not None and str(labels) != "":
        labels_path = Path(labels).expanduser()
        if not labels_path.is_absolute() and not labels_path.exists():
            labels_path = root / labels_path
        if not labels_path.is_file():
            raise LatentExplorerError(f"folder: no such labels file {labels_path}; give a CSV with a header row "
                                      f"'file,<attribute>,...' or leave --labels out")
    elif (root / LABELS_FILE).is_file():
        labels_path = root / LABELS_FILE
    if labels_path is None:
        paths = [str(root / p) for p in images]
        return FileIndex(paths, np.zeros((len(paths), 0), dtype=np.int64), (), {})
    attributes, table, missing = read_labels(labels_path, images)
    chosen = [p for p in images if p in table]
    if not chosen:
        raise LatentExplorerError(f"folder: no row of {labels_path} names an image under {root}; the first column "
                                  f"should be the image's path relative to the folder, its file name or its stem")
    matrix = np.array([table[p] for p in chosen], dtype=np.int64).reshape(len(chosen), len(attributes))
    left_out = {"missing_image": missing, "unlabelled_image": len(images) - len(chosen)}
    return FileIndex([str(root / p) for p in chosen], matrix, attributes, left_out, {"labels": str(labels_path)})


def load_folder(root: str | os.PathLike | None, image_size: int = 64, attributes: Sequence[str] | None = None,
                face_margin: float | None = None, num_images: int | None = None,
                labels: str | os.PathLike | None = None, progress: bool = True) -> tuple[ImageDataset, dict]:
    """Every image under root (recursively), labels from a CSV when there is one; returns (dataset, source)."""
    folder = check_folder(root, "folder", EXPECTED)
    prep = Preprocessing(image_size, face_margin or 0.0, "RGB")
    index = index_folder(folder, labels)
    load_args = {"name": "folder", "path": str(folder), "image_size": image_size, "num_images": num_images,
                 "attributes": list(attributes) if attributes is not None else None, "face_margin": face_margin,
                 "labels": index.files.get("labels")}
    return build_dataset("folder", folder, index, prep, attributes, num_images, progress, load_args)
