"""Toy faces: a procedural, seed-determined cartoon-face dataset with known attribute labels (each face drawn by
toyface_drawing.py), generated in worker processes and cached as memory-mapped arrays."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from training.bundle.atomic import atomic_write
from training.data.base import ImageDataset, cache_dir
from training.data.pool import ordered_map, progress_bar
from training.data.toyface_drawing import ATTRIBUTES, check_size, render_face
from training.errors import LatentExplorerError

# Bump whenever the drawing or the sampling changes: cache file names carry it, so stale caches are never reused.
VERSION = 1


def _render_range(args: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Images start..stop of the dataset with this seed; each image has its own generator, so chunks are independent."""
    seed, start, stop, size = args
    images = np.empty((stop - start, size, size, 3), dtype=np.uint8)
    labels = np.empty((stop - start, len(ATTRIBUTES)), dtype=np.int64)
    for j, i in enumerate(range(start, stop)):
        img, row = render_face(np.random.default_rng([seed, i]), size)
        images[j] = np.asarray(img)
        labels[j] = row
    return images, labels


def _chunks(n: int, seed: int, size: int, chunk: int) -> list[tuple[int, int, int, int]]:
    return [(seed, start, min(start + chunk, n), size) for start in range(0, n, chunk)]


def generate_toyfaces(
    n: int, seed: int = 0, size: int = 64, workers: int | None = None, progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """n faces as uint8 (n, size, size, 3) and int64 labels (n, len(ATTRIBUTES)); the same for any worker count."""
    _check_n(n)
    _check_seed(seed)
    check_size(size)
    workers = max(1, int(workers if workers is not None else (os.cpu_count() or 1)))
    chunk = 256
    jobs = _chunks(n, seed, size, chunk)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    labels = np.empty((n, len(ATTRIBUTES)), dtype=np.int64)
    bar = progress_bar(n, "toyfaces", progress)
    try:
        _collect(ordered_map(_render_range, jobs, workers), jobs, images, labels, bar)
    finally:
        if bar is not None:
            bar.close()
    return images, labels


def _collect(
    results: Iterable[tuple[np.ndarray, np.ndarray]],
    jobs: list[tuple[int, int, int, int]],
    images: np.ndarray,
    labels: np.ndarray,
    bar: Any,
) -> None:
    """Copy finished chunks into place, in job order, ticking the progress bar."""
    for (_, start, stop, _), (imgs, labs) in zip(jobs, results, strict=True):
        images[start:stop] = imgs
        labels[start:stop] = labs
        if bar is not None:
            bar.update(stop - start)


def _check_n(n: int) -> None:
    if int(n) <= 0:
        raise LatentExplorerError(f"toyfaces needs a positive number of images, got n={n}")


def _check_seed(seed: int) -> None:
    # numpy's seed sequences only take non-negative integers; say so plainly rather than with numpy's ValueError.
    if int(seed) < 0:
        raise LatentExplorerError(f"toyfaces seed must be a non-negative integer, got {seed}")


def cache_paths(n: int, seed: int, size: int) -> tuple[Path, Path]:
    """Where load_toyfaces keeps (images .npy, labels .npy) for these settings."""
    stem = f"toyfaces-v{VERSION}-n{n}-s{seed}-{size}px"
    root = cache_dir()
    return root / f"{stem}-images.npy", root / f"{stem}-labels.npy"


def _load_cached(images_path: Path, labels_path: Path, n: int, size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached arrays if both files are there and have the expected shapes, else None (then we regenerate)."""
    if not (images_path.exists() and labels_path.exists()):
        return None
    try:
        images = np.load(images_path, mmap_mode="r")
        labels = np.load(labels_path)
    except (OSError, ValueError):
        return None
    if images.shape != (n, size, size, 3) or images.dtype != np.uint8 or labels.shape != (n, len(ATTRIBUTES)):
        return None
    return images, labels.astype(np.int64, copy=False)


def load_toyfaces(
    n: int = 30000, seed: int = 0, size: int = 64, cache: bool = True, progress: bool = True
) -> ImageDataset:
    """The toy-faces dataset; with cache=True it is generated once and then memory-mapped from cache_dir()."""
    _check_n(n)
    _check_seed(seed)
    check_size(size)
    if not cache:
        images, labels = generate_toyfaces(n, seed, size, progress=progress)
        return ImageDataset("toyfaces", images, labels, ATTRIBUTES)
    images_path, labels_path = cache_paths(n, seed, size)
    cached = _load_cached(images_path, labels_path, n, size)
    if cached is None:
        images, labels = generate_toyfaces(n, seed, size, progress=progress)
        # Labels first, images last: the images file is the big one, and both must exist for a cache hit.
        atomic_write(labels_path, lambda handle: np.save(handle, labels))
        atomic_write(images_path, lambda handle: np.save(handle, images))
        cached = _load_cached(images_path, labels_path, n, size)
        if cached is None:
            raise LatentExplorerError(f"could not read back the toyfaces cache just written to {images_path}")
    return ImageDataset("toyfaces", cached[0], cached[1], ATTRIBUTES)
