"""Anime faces: a folder of images plus a tags CSV (`id,<hair> hair <eye> eyes`) giving hair and eye colour."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.attributes import Attribute
from training.data.base import ImageDataset
from training.data.prepare import Preprocessing
from training.data.sources import FileIndex, build_dataset, check_folder, find_image_folder
from training.errors import LatentExplorerError

EXPECTED = "images/<id>.jpg and tags.csv with rows like '0,aqua hair aqua eyes'"
IMAGE_DIRS = ("images", "faces", "")
TAG = re.compile(r"^\s*(?P<hair>[a-z][a-z -]*?)\s+hair\s+(?P<eye>[a-z][a-z -]*?)\s+eyes\s*$", re.IGNORECASE)


def find_tags(root: Path) -> Path:
    """root/tags.csv, else the only .csv file in root."""
    if (root / "tags.csv").is_file():
        return root / "tags.csv"
    csvs = sorted(p for p in root.glob("*.csv") if p.is_file())
    if len(csvs) == 1:
        return csvs[0]
    if not csvs:
        raise LatentExplorerError(f"anime: no tags.csv in {root}; the folder should hold {EXPECTED}")
    raise LatentExplorerError(f"anime: several CSV files in {root} ({', '.join(p.name for p in csvs)}) and none is "
                              f"called tags.csv; rename the tags file to tags.csv")


def read_tags(path: Path) -> tuple[list[str], list[str], list[str]]:
    """(ids, hair colours, eye colours), one per row, lower-cased; any malformed row is an error naming its line."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise LatentExplorerError(f"anime: cannot read {path} ({exc})") from None
    ids: list[str] = []
    hair: list[str] = []
    eyes: list[str] = []
    seen: set[str] = set()
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        ident, sep, tags = line.partition(",")
        ident = ident.strip()
        match = TAG.match(tags) if sep else None
        if not ident or match is None:
            hint = " (the file has no header line: remove it)" if line_no == 1 else ""
            raise LatentExplorerError(
                f"anime: {path} line {line_no} is {line[:80]!r}; every row must be "
                f"'<id>,<colour> hair <colour> eyes' like '0,aqua hair aqua eyes'{hint}. Fix or delete that row")
        if ident in seen:
            raise LatentExplorerError(f"anime: {path} line {line_no}: id {ident!r} is tagged twice; keep one row")
        seen.add(ident)
        ids.append(ident)
        hair.append(" ".join(match["hair"].lower().split()))
        eyes.append(" ".join(match["eye"].lower().split()))
    if not ids:
        raise LatentExplorerError(f"anime: {path} has no tag rows; expected rows like '0,aqua hair aqua eyes'")
    return ids, hair, eyes


def index_anime(root: Path) -> FileIndex:
    """Every tagged image that exists, in tags-file order; hair and eye colour value names come from the file."""
    tags = find_tags(root)
    ids, hair, eyes = read_tags(tags)
    images, present = find_image_folder(root, IMAGE_DIRS)
    if images is None:
        raise LatentExplorerError(f"anime: no images in {root} or its images/ folder; it should hold {EXPECTED}")
    hair_values = tuple(sorted(set(hair)))
    eye_values = tuple(sorted(set(eyes)))
    hair_index = {v: i for i, v in enumerate(hair_values)}
    eye_index = {v: i for i, v in enumerate(eye_values)}
    paths: list[str] = []
    rows: list[tuple[int, int]] = []
    missing = 0
    base = str(images)
    for ident, h, e in zip(ids, hair, eyes):
        found = present.get(ident) or present.get(os.path.splitext(ident)[0])
        if found is None:
            missing += 1
            continue
        paths.append(os.path.join(base, found))
        rows.append((hair_index[h], eye_index[e]))
    if not paths:
        raise LatentExplorerError(f"anime: none of the {len(ids)} ids in {tags} has an image in {images} "
                                  f"(expected files like {images / (ids[0] + '.jpg')})")
    untagged = len(set(present.values())) - len(paths)
    attributes = (Attribute("hair_colour", hair_values), Attribute("eye_colour", eye_values))
    labels = np.array(rows, dtype=np.int64).reshape(len(rows), 2)
    return FileIndex(paths, labels, attributes, {"missing_image": missing, "untagged_image": untagged},
                     {"tags": str(tags), "images": str(images)})


def load_anime(root: str | os.PathLike | None, image_size: int = 64, attributes: Sequence[str] | None = None,
               face_margin: float | None = None, num_images: int | None = None, progress: bool = True
               ) -> tuple[ImageDataset, dict]:
    """Anime faces with hair_colour and eye_colour labels (or the ones named); returns (dataset, source)."""
    folder = check_folder(root, "anime", EXPECTED)
    prep = Preprocessing(image_size, face_margin or 0.0, "RGB")
    index = index_anime(folder)
    load_args = {"name": "anime", "path": str(folder), "image_size": image_size, "num_images": num_images,
                 "attributes": list(attributes) if attributes is not None else None, "face_margin": face_margin}
    return build_dataset("anime", folder, index, prep, attributes, num_images, progress, load_args)
