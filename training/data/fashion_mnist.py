"""Fashion-MNIST from its IDX files (plain or .gz): Debian's package, torchvision's raw folder, or any folder."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from training.attributes import Attribute
from training.data.base import ImageDataset
from training.data.prepare import cached_array, check_image_size
from training.data.sources import check_num_images, select_attributes
from training.errors import LatentExplorerError

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
ATTRIBUTES = (Attribute("class", CLASSES),)
NATIVE_SIZE = 28
PADDED_SIZE = 32
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SPLITS = ("train", "test", "all")
# Looked in when no --data-root is given: Debian's `dataset-fashion-mnist` package, then torchvision's usual root.
DEFAULT_ROOTS: tuple[Path, ...] = (Path("/usr/share/datasets/fashion-mnist"), Path("data"))
# Under a root: the files themselves, torchvision's FashionMNIST/raw, or a raw/ folder.
SUBFOLDERS = ("", "raw", "FashionMNIST/raw", "fashion-mnist")
EXPECTED = ("train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
            "t10k-labels-idx1-ubyte.gz")


def _split_names(split: str) -> list[str]:
    if split not in SPLITS:
        raise LatentExplorerError(f"fashion-mnist split must be one of {', '.join(SPLITS)}, got {split!r}")
    parts = ("train", "test") if split == "all" else (split,)
    return [name for part in parts for name in SPLIT_FILES[part]]


def _find_in(root: Path, names: Sequence[str]) -> dict[str, Path] | None:
    """The named IDX files (plain or .gz) in one of root's usual sub-folders, all from the same folder, or None."""
    for sub in SUBFOLDERS:
        folder = root / sub if sub else root
        found = {}
        for name in names:
            for candidate in (folder / name, folder / f"{name}.gz"):
                if candidate.is_file():
                    found[name] = candidate
                    break
        if len(found) == len(names):
            return found
    return None


def find_files(root: str | os.PathLike | None, split: str = "train") -> tuple[Path, dict[str, Path]]:
    """(root used, IDX file name -> path) for the split, searching the default locations when root is None."""
    names = _split_names(split)
    if root is None or str(root) == "":
        for candidate in DEFAULT_ROOTS:
            found = _find_in(candidate, names) if candidate.is_dir() else None
            if found is not None:
                return candidate.resolve(), found
        raise LatentExplorerError(
            f"fashion-mnist: no IDX files in {' or '.join(str(r) for r in DEFAULT_ROOTS)}; install Debian's "
            f"dataset-fashion-mnist package (apt-get install dataset-fashion-mnist) or pass --data-root (or set "
            f"LATENT_EXPLORER_FASHION_MNIST_ROOT) with the folder that holds {EXPECTED}")
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise LatentExplorerError(f"fashion-mnist: no such folder {folder}; pass --data-root with the folder that "
                                  f"holds {EXPECTED} (or torchvision's FashionMNIST/raw)")
    found = _find_in(folder, names)
    if found is None:
        raise LatentExplorerError(
            f"fashion-mnist: {folder} lacks some of {', '.join(names)} (plain or .gz; looked in "
            f"{', '.join(s or '.' for s in SUBFOLDERS)}); copy the four IDX files there")
    return folder.resolve(), found


def read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes (MNIST's format), gzipped or not, as a uint8 array of its declared shape."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise LatentExplorerError(f"fashion-mnist: cannot read {path} ({exc}); the file looks damaged or truncated, "
                                  f"copy it again") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08 or not 1 <= data[3] <= 4:
        raise LatentExplorerError(f"fashion-mnist: {path} is not an IDX file of unsigned bytes (bad magic number "
                                  f"{data[:4].hex()}); expected one of the four Fashion-MNIST *-ubyte files")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise LatentExplorerError(f"fashion-mnist: {path} is truncated inside its header; copy it again")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise LatentExplorerError(f"fashion-mnist: {path} declares shape {shape} ({expected} bytes) but has "
                                  f"{len(data)} bytes; the file is truncated or damaged, copy it again")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def fit_to_size(images: np.ndarray, size: int, progress: bool = False) -> np.ndarray:
    """(n, 28, 28) -> (n, size, size, 1): 28 as is; otherwise pad 2 black pixels a side to 32 (the classic choice
    for 32x32 networks), then resize bilinearly when size is not 32."""
    if size == NATIVE_SIZE:
        return np.ascontiguousarray(images[..., None])
    pad = (PADDED_SIZE - NATIVE_SIZE) // 2
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad)))
    if size == PADDED_SIZE:
        return padded[..., None]
    out = np.empty((len(images), size, size, 1), dtype=np.uint8)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(images), desc=f"preparing fashion-mnist {size}px", unit="img")
    for i, img in enumerate(padded):
        out[i, :, :, 0] = np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BILINEAR))
        if bar is not None and (i + 1) % 1000 == 0:
            bar.update(1000)
    if bar is not None:
        bar.update(len(images) - bar.n)
        bar.close()
    return out


def _read_split(files: dict[str, Path], split: str, kind: int) -> np.ndarray:
    """Images (kind 0) or labels (kind 1) of the split, train before test for 'all'."""
    parts = ("train", "test") if split == "all" else (split,)
    return np.concatenate([read_idx(files[SPLIT_FILES[part][kind]]) for part in parts])


def load_fashion_mnist(root: str | os.PathLike | None = None, image_size: int = 32,
                       attributes: Sequence[str] | None = None, num_images: int | None = None, split: str = "train",
                       progress: bool = True) -> tuple[ImageDataset, dict]:
    """Fashion-MNIST as grey (N, size, size, 1) images with the 10 classes as one label; returns (dataset, source)."""
    check_image_size(image_size)
    check_num_images(num_images)
    select_attributes("fashion-mnist", ATTRIBUTES, np.zeros((0, 1), np.int64), attributes)  # fail before reading
    folder, files = find_files(root, split)
    labels = _read_split(files, split, 1)
    if labels.ndim != 1:
        raise LatentExplorerError(f"fashion-mnist: the label files in {folder} should be one-dimensional, got "
                                  f"shape {labels.shape}")
    if labels.size and labels.max() >= len(CLASSES):
        raise LatentExplorerError(f"fashion-mnist: the label files in {folder} hold class {int(labels.max())}, "
                                  f"but there are only {len(CLASSES)} classes; these are not Fashion-MNIST labels")
    total = len(labels)
    n = total if num_images is None else min(int(num_images), total)
    labels = labels[:n]

    def build() -> np.ndarray:
        images = _read_split(files, split, 0)
        if images.ndim != 3 or images.shape[1:] != (NATIVE_SIZE, NATIVE_SIZE):
            raise LatentExplorerError(f"fashion-mnist: the image files in {folder} hold shape {images.shape}, "
                                      f"expected (n, 28, 28)")
        if len(images) != total:
            raise LatentExplorerError(f"fashion-mnist: {folder} has {len(images)} images but {total} labels; "
                                      f"the image and label files do not belong together")
        return fit_to_size(images[:n], image_size, progress)

    stats = {name: [str(p), p.stat().st_size, p.stat().st_mtime_ns] for name, p in sorted(files.items())}
    images, cache_file, _ = cached_array(
        "fashion-mnist", {"files": stats, "split": split, "n": n, "size": image_size},
        (image_size, image_size, 1), build)
    attrs, selected = select_attributes("fashion-mnist", ATTRIBUTES, labels.astype(np.int64)[:, None], attributes)
    dataset = ImageDataset("fashion-mnist", images, np.ascontiguousarray(selected), attrs)
    if image_size == NATIVE_SIZE:
        crop = "none: the native 28x28"
    elif image_size == PADDED_SIZE:
        crop = "28x28 padded with 2 black pixels a side to 32x32"
    else:
        crop = f"28x28 padded with 2 black pixels a side to 32x32, then resized to {image_size}x{image_size} (bilinear)"
    source = {
        "name": "fashion-mnist",
        "root": str(folder),
        "num_images": len(dataset),
        "num_images_requested": num_images,
        "image_size": image_size,
        "channels": 1,
        "preprocessing": {"method": "pad-and-resize", "crop": crop, "image_size": image_size, "face_margin": 0.0,
                          "channels": 1, "colour": "grey", "stored_as": "uint8 0..255; training reads x / 127.5 - 1"},
        "attributes": [a.name for a in attrs],
        "skipped": {},
        "files": {name: str(p) for name, p in sorted(files.items())},
        "split": split,
        "cache_file": cache_file.name,
        "load_args": {"name": "fashion-mnist", "path": str(folder), "image_size": image_size,
                      "num_images": num_images, "attributes": list(attributes) if attributes is not None else None,
                      "split": split},
    }
    return dataset, source
