"""CelebA from a local folder in the official layout, including partial copies (only the images present are used)."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.attributes import Attribute
from training.data.base import ImageDataset
from training.data.prepare import Preprocessing
from training.data.sources import FileIndex, build_dataset, check_folder, find_image_folder
from training.errors import LatentExplorerError

EXPECTED = "img_align_celeba/ and list_attr_celeba.txt (the official CelebA layout)"
SPLITS = {"all": None, "train": 0, "valid": 1, "test": 2}
# Where the files sit in the official distribution (Img/ Anno/ Eval/), in a flat copy, and in the Kaggle copy
# (img_align_celeba/img_align_celeba/ with .csv label files). First match wins.
IMAGE_DIRS = ("img_align_celeba/img_align_celeba", "img_align_celeba", "Img/img_align_celeba", "")
ATTR_FILES = ("list_attr_celeba.txt", "Anno/list_attr_celeba.txt", "list_attr_celeba.csv", "Anno/list_attr_celeba.csv")
PARTITION_FILES = ("list_eval_partition.txt", "Eval/list_eval_partition.txt", "Anno/list_eval_partition.txt",
                   "list_eval_partition.csv", "Eval/list_eval_partition.csv")


@dataclass(frozen=True)
class CelebALayout:
    images: Path
    attributes: Path
    partition: Path | None
    present: dict[str, str]  # image file names (and stems) found in `images`


def find_layout(root: Path) -> CelebALayout:
    """Locate the image folder and the label files under root, or say exactly what is missing."""
    attr = next((root / p for p in ATTR_FILES if (root / p).is_file()), None)
    if attr is None:
        raise LatentExplorerError(
            f"celeba: no list_attr_celeba.txt in {root} (looked for {', '.join(ATTR_FILES)}); point --data-root at "
            f"the folder that holds {EXPECTED}")
    images, present = find_image_folder(root, IMAGE_DIRS)
    if images is None:
        zipped = [root / z for z in ("img_align_celeba.zip", "Img/img_align_celeba.zip") if (root / z).is_file()]
        if zipped:
            raise LatentExplorerError(f"celeba: the images in {root} are still zipped ({zipped[0]}); unzip it so that "
                                      f"{zipped[0].with_suffix('')}/ holds the .jpg files")
        raise LatentExplorerError(
            f"celeba: no images in {root} (looked in {', '.join(r or '.' for r in IMAGE_DIRS)}); point --data-root "
            f"at the folder that holds {EXPECTED}")
    partition = next((root / p for p in PARTITION_FILES if (root / p).is_file()), None)
    return CelebALayout(images, attr, partition, present)


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, fields) of a whitespace- or comma-separated label file, blank lines dropped."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise LatentExplorerError(f"celeba: cannot read {path} ({exc})") from None
    if path.suffix.lower() == ".csv":
        reader = csv.reader(text.splitlines())
        return [(n, [f.strip() for f in row]) for n, row in enumerate(reader, 1) if any(f.strip() for f in row)]
    return [(n, line.split()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_attribute_file(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(attribute names, image file names, 0/1 int64 labels) from list_attr_celeba.txt (or the Kaggle .csv)."""
    rows = _rows(path)
    # Official: a count line, a names line, then "000001.jpg -1 1 ...". Kaggle: "image_id,5_o_Clock_Shadow,...".
    if rows and len(rows[0][1]) == 1 and rows[0][1][0].isdigit():
        rows = rows[1:]
    if not rows:
        raise LatentExplorerError(f"celeba: {path} has no attribute names; it should be CelebA's list_attr_celeba.txt")
    names = rows[0][1]
    if names and names[0].lower() in ("image_id", "image", "filename", "file"):
        names = names[1:]
    if not names or len(set(names)) != len(names):
        raise LatentExplorerError(f"celeba: {path} line {rows[0][0]} should list the attribute names "
                                  f"(40 in CelebA), once each")
    files: list[str] = []
    values: list[list[str]] = []
    for line, fields in rows[1:]:
        if len(fields) != len(names) + 1:
            raise LatentExplorerError(
                f"celeba: {path} line {line} has {len(fields) - 1} values for {len(names)} attributes "
                f"({' '.join(fields)[:80]!r}); fix or delete that row")
        files.append(fields[0])
        values.append(fields[1:])
    if not files:
        raise LatentExplorerError(f"celeba: {path} lists no images")
    table = np.array(values, dtype=str)
    yes = table == "1"
    no = (table == "-1") | (table == "0")
    bad = ~(yes | no)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        raise LatentExplorerError(
            f"celeba: {path} line {rows[row + 1][0]}: attribute {names[col]} is {str(table[row, col])!r}, "
            f"expected -1 or 1; fix or delete that row")
    if len(set(files)) != len(files):
        raise LatentExplorerError(f"celeba: {path} lists some images twice; keep one row per image")
    return names, files, yes.astype(np.int64)


def read_partition_file(path: Path) -> dict[str, int]:
    """image file name -> 0 (train), 1 (valid) or 2 (test)."""
    parts: dict[str, int] = {}
    for line, fields in _rows(path):
        if len(fields) == 2 and fields[1] in ("0", "1", "2"):
            parts[fields[0]] = int(fields[1])
        elif not (line == 1 and fields and fields[0].lower() in ("image_id", "image", "filename")):
            raise LatentExplorerError(f"celeba: {path} line {line} should be '<image> <0|1|2>', got "
                                      f"{' '.join(fields)[:80]!r}; fix or delete that row")
    return parts


def index_celeba(root: Path, split: str = "all") -> FileIndex:
    """Every row of the attribute file whose image exists (in file order), with all 40 attributes as labels."""
    if split not in SPLITS:
        raise LatentExplorerError(f"celeba split must be one of {', '.join(SPLITS)}, got {split!r}")
    layout = find_layout(root)
    names, files, labels = read_attribute_file(layout.attributes)
    keep = np.ones(len(files), dtype=bool)
    left_out = {"missing_image": 0}
    record = {"attributes": str(layout.attributes), "images": str(layout.images)}
    if layout.partition is not None:
        record["partition"] = str(layout.partition)
    if SPLITS[split] is not None:
        if layout.partition is None:
            raise LatentExplorerError(f"celeba: split {split!r} needs list_eval_partition.txt in {root} (or Eval/); "
                                      f"add it or use split 'all'")
        parts = read_partition_file(layout.partition)
        keep &= np.array([parts.get(f) == SPLITS[split] for f in files])
        left_out["other_split"] = int((~keep).sum())
    present = layout.present
    base = str(layout.images)
    paths: list[str] = []
    rows: list[int] = []
    for i, file in enumerate(files):
        if not keep[i]:
            continue
        # A partial copy simply lacks some files; a PNG copy has 000001.png for the listed 000001.jpg.
        found = present.get(file) or present.get(os.path.splitext(file)[0])
        if found is None:
            left_out["missing_image"] += 1
            continue
        paths.append(os.path.join(base, found))
        rows.append(i)
    if not paths:
        raise LatentExplorerError(f"celeba: none of the {int(keep.sum())} images listed in {layout.attributes} is in "
                                  f"{layout.images}; check that --data-root is the right folder")
    attributes = tuple(Attribute(n, ("no", "yes")) for n in names)
    return FileIndex(paths, labels[rows], attributes, left_out, record)


def load_celeba(root: str | os.PathLike | None, image_size: int = 64, attributes: Sequence[str] | None = None,
                face_margin: float | None = None, num_images: int | None = None, split: str = "all",
                progress: bool = True) -> tuple[ImageDataset, dict]:
    """CelebA with the chosen binary attributes as labels (all 40 when None); returns (dataset, source)."""
    folder = check_folder(root, "celeba", EXPECTED)
    prep = Preprocessing(image_size, face_margin or 0.0, "RGB")
    index = index_celeba(folder, split)
    load_args = {"name": "celeba", "path": str(folder), "image_size": image_size, "num_images": num_images,
                 "attributes": list(attributes) if attributes is not None else None, "face_margin": face_margin,
                 "split": split}
    return build_dataset("celeba", folder, index, prep, attributes, num_images, progress, load_args,
                         extra={"split": split})
