"""Decode image files once into a cached uint8 array (memory-mapped on later loads); sources.py says which files."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from training.bundle.atomic import atomic_write, atomic_write_json, replacing
from training.data.base import cache_dir
from training.data.pool import ordered_map, progress_bar
from training.errors import LatentExplorerError

# Bump whenever decoding, cropping or resizing changes: cache keys carry it, so stale caches are never reused.
PREPARE_VERSION = 1

MIN_IMAGE_SIZE = 8
MAX_IMAGE_SIZE = 1024
DEFAULT_WORKERS = 2
CHUNK = 128  # images per pool task: big enough to amortise the pickling, small enough for a smooth progress bar


@dataclass(frozen=True)
class Preprocessing:
    """How every photo becomes a size x size array: the PyTorch DCGAN tutorial's Resize + CenterCrop.

    face_margin trims that fraction of the shorter side from every edge around the image centre before resizing,
    for photos where the face is small in the frame (LFW: 0.25 keeps the central 125 of 250 pixels; CelebA: 0.2 is
    the common 108-pixel centre crop of the aligned 178x218 images).
    """

    size: int
    face_margin: float = 0.0
    mode: str = "RGB"  # "RGB" (3 channels) or "L" (grey, 1 channel)

    def __post_init__(self) -> None:
        check_image_size(self.size)
        check_face_margin(self.face_margin)
        if self.mode not in ("RGB", "L"):
            raise LatentExplorerError(f"image mode must be 'RGB' or 'L', got {self.mode!r}")

    @property
    def channels(self) -> int:
        return 3 if self.mode == "RGB" else 1

    @property
    def draft_size(self) -> int:
        """Big JPEGs decode at a reduced DCT scale, still at least twice the pixels we keep: much faster, no
        visible difference after the final resize. Small ones (CelebA, LFW, anime) are untouched."""
        return 2 * math.ceil(self.size / (1.0 - 2.0 * self.face_margin))

    def to_json(self) -> dict:
        if self.face_margin:
            crop = (f"centre square of (1 - 2 x {self.face_margin:g}) x the shorter side, "
                    f"resized to {self.size}x{self.size} (bilinear)")
        else:
            crop = f"shorter side resized to {self.size} (bilinear), then centre crop {self.size}x{self.size}"
        return {
            "method": "dcgan-tutorial",
            "crop": crop,
            "image_size": self.size,
            "face_margin": float(self.face_margin),
            "channels": self.channels,
            "colour": "RGB" if self.mode == "RGB" else "grey",
            "stored_as": "uint8 0..255; training reads x / 127.5 - 1",
            "prepare_version": PREPARE_VERSION,
        }


def check_image_size(size: int) -> None:
    if not isinstance(size, int | np.integer) or not MIN_IMAGE_SIZE <= int(size) <= MAX_IMAGE_SIZE:
        raise LatentExplorerError(f"image size must be a whole number of pixels from {MIN_IMAGE_SIZE} to "
                                  f"{MAX_IMAGE_SIZE} (32, 64 and 128 are usual), got {size!r}")


def check_face_margin(margin: float) -> None:
    if not isinstance(margin, int | float) or not 0.0 <= float(margin) < 0.5:
        raise LatentExplorerError(f"face margin must be at least 0 and below 0.5 (the fraction of the shorter side "
                                  f"trimmed from each edge; 0.25 suits LFW), got {margin!r}")


def preprocess_image(img: Image.Image, prep: Preprocessing) -> np.ndarray:
    """One PIL image -> uint8 (size, size, channels), exactly torchvision's Resize(size) + CenterCrop(size)."""
    img = img.convert(prep.mode)
    w, h = img.size
    size = prep.size
    if prep.face_margin:
        side = min(w, h) * (1.0 - 2.0 * prep.face_margin)
        left, top = (w - side) / 2.0, (h - side) / 2.0
        out = img.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side))
    else:
        # torchvision's rule: the short side becomes `size`, the long side int(size * long / short).
        if w <= h:
            new_w, new_h = size, int(size * h / w)
        else:
            new_w, new_h = int(size * w / h), size
        out = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
        top = int(round((new_h - size) / 2.0))
        left = int(round((new_w - size) / 2.0))
        out = out.crop((left, top, left + size, top + size))
    arr = np.asarray(out, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def decode_file(path: str | os.PathLike, prep: Preprocessing) -> np.ndarray:
    """Open, fully decode (so truncated files fail here, not later) and preprocess one image file. A JPEG or PNG
    whose decoding would cost more than training/untrusted/decode_cost.py allows
    (a frame declared 13370 px wide, thousands
    of scans or chunks) is refused before any pixel is decoded, and skipped like any unreadable file."""
    from training.untrusted.decode_cost import check_decode_cost

    data = Path(path).read_bytes()
    check_decode_cost(data, str(path), "image")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL's palette/EXIF chatter would drown the progress bar
        with Image.open(io.BytesIO(data)) as img:
            if img.format == "JPEG":
                img.draft(prep.mode, (prep.draft_size, prep.draft_size))
            img.load()
            return preprocess_image(img, prep)


def _decode_chunk(job: tuple[int, Sequence[str], Preprocessing]) -> tuple[int, np.ndarray, list[tuple[int, str]]]:
    """Decode paths[start:start+k]: the good images stacked in order, and (index, reason) for each bad one."""
    start, paths, prep = job
    good = np.empty((len(paths), prep.size, prep.size, prep.channels), dtype=np.uint8)
    bad: list[tuple[int, str]] = []
    k = 0
    for i, path in enumerate(paths):
        try:
            good[k] = decode_file(path, prep)
            k += 1
        except Exception as exc:  # noqa: BLE001 - any decoder failure means "skip this file and say why"
            bad.append((start + i, f"{type(exc).__name__}: {exc}"))
    return start, good[:k], bad


def _decoded_chunks(paths: Sequence[str], prep: Preprocessing, workers: int
                    ) -> Iterator[tuple[int, np.ndarray, list[tuple[int, str]]]]:
    jobs = [(start, list(paths[start:start + CHUNK]), prep) for start in range(0, len(paths), CHUNK)]
    return ordered_map(_decode_chunk, jobs, workers)


def cache_key(parts: dict) -> str:
    """A short stable hash of everything that decides the prepared bytes."""
    text = json.dumps({"prepare_version": PREPARE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def cache_paths(name: str, size: int, key: str) -> tuple[Path, Path]:
    """(images .npy, description .json) of one prepared dataset in cache_dir()."""
    stem = f"{name}-{size}px-{key}"
    root = cache_dir()
    return root / f"{stem}-images.npy", root / f"{stem}.json"


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    """np.save to a temp file beside the target, then rename: an interrupted run leaves no half-written cache."""
    atomic_write(path, lambda handle: np.save(handle, array))


def read_cache(images_path: Path, meta_path: Path, shape_tail: tuple[int, ...]) -> tuple[np.ndarray, dict] | None:
    """The memory-mapped images and their description if both are there and agree, else None (then we rebuild)."""
    if not (images_path.exists() and meta_path.exists()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        images = np.load(images_path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if (not isinstance(meta, dict) or images.dtype != np.uint8
            or images.shape != (meta.get("num_images"), *shape_tail)):
        return None
    return images, meta


@dataclass
class Prepared:
    """Decoded images of a list of files: which files made it (kept) and which were unreadable (skipped)."""

    images: np.ndarray
    kept: np.ndarray  # int64 indices into the list of paths, in order
    skipped: list[dict] = field(default_factory=list)  # {"index", "path", "reason"} for each unreadable file
    cache_file: Path | None = None
    from_cache: bool = False


def prepare_images(paths: Sequence[str], prep: Preprocessing, name: str, progress: bool = True,
                   workers: int = DEFAULT_WORKERS) -> Prepared:
    """Decode + preprocess every file once into cache_dir(); later calls memory-map the cached array.

    Unreadable or truncated files are skipped and listed. The cache is keyed by the file list (absolute paths) and
    the preprocessing, and is written to a temp file that is renamed into place only when complete.
    """
    paths = [str(p) for p in paths]
    if not paths:
        raise LatentExplorerError(f"{name}: no images to prepare")
    key = cache_key({"name": name, "paths": paths, "prep": [prep.size, prep.face_margin, prep.mode]})
    images_path, meta_path = cache_paths(name, prep.size, key)
    tail = (prep.size, prep.size, prep.channels)
    cached = read_cache(images_path, meta_path, tail)
    if cached is not None:
        images, meta = cached
        skipped = list(meta.get("skipped", []))
        kept = np.setdiff1d(np.arange(len(paths)), [s["index"] for s in skipped]).astype(np.int64)
        if len(kept) == len(images):
            return Prepared(images, kept, skipped, images_path, from_cache=True)

    skipped: list[dict] = []
    bar = progress_bar(len(paths), f"preparing {name} {prep.size}px", progress)
    try:
        with replacing(images_path) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), *tail))
            filled = 0
            for _start, good, bad in _decoded_chunks(paths, prep, workers):
                out[filled:filled + len(good)] = good
                filled += len(good)
                skipped.extend({"index": i, "path": paths[i], "reason": reason} for i, reason in bad)
                if bar is not None:
                    bar.update(len(good) + len(bad))
            if filled == 0:
                raise LatentExplorerError(
                    f"{name}: none of the {len(paths)} images could be read (first: {skipped[0]['path']}: "
                    f"{skipped[0]['reason']}); check that the files are images")
            if filled < len(paths):
                # Some files were unreadable: copy the good rows into an array of the right length, which then
                # replaces the long one (rare, so the extra write is fine; np.save headers cannot shrink in place).
                with replacing(tmp) as tmp_small:
                    small = np.lib.format.open_memmap(tmp_small, mode="w+", dtype=np.uint8, shape=(filled, *tail))
                    for s in range(0, filled, 4096):
                        e = min(s + 4096, filled)
                        small[s:e] = out[s:e]
                    small.flush()
                    del small, out
            else:
                out.flush()
                del out
    finally:
        if bar is not None:
            bar.close()
    # The description goes last: it is what marks the cache entry as complete.
    atomic_write_json(meta_path, {"name": name, "num_images": filled, "num_files": len(paths),
                                  "preprocessing": prep.to_json(), "skipped": skipped})
    if skipped:
        first = skipped[0]
        print(f"{name}: skipped {len(skipped)} unreadable image(s), e.g. {first['path']} ({first['reason']}); "
              f"they are left out of the dataset", file=sys.stderr)
    cached = read_cache(images_path, meta_path, tail)
    if cached is None:
        raise LatentExplorerError(f"could not read back the prepared {name} images just written to {images_path}")
    kept = np.setdiff1d(np.arange(len(paths)), [s["index"] for s in skipped]).astype(np.int64)
    return Prepared(cached[0], kept, skipped, images_path, from_cache=False)


def cached_array(name: str, key_parts: dict, shape_tail: tuple[int, ...], build: Callable[[], np.ndarray]
                 ) -> tuple[np.ndarray, Path, bool]:
    """For sources that are arrays already (IDX files): build once, save atomically, memory-map afterwards."""
    key = cache_key({"name": name, **key_parts})
    images_path, meta_path = cache_paths(name, shape_tail[0], key)
    cached = read_cache(images_path, meta_path, shape_tail)
    if cached is not None:
        return cached[0], images_path, True
    images = build()
    save_npy_atomic(images_path, images)
    atomic_write_json(meta_path, {"name": name, "num_images": len(images), "key": key_parts})
    cached = read_cache(images_path, meta_path, shape_tail)
    if cached is None:
        raise LatentExplorerError(f"could not read back the prepared {name} images just written to {images_path}")
    return cached[0], images_path, False
