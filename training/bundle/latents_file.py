"""Reading a VAE bundle's latents.npz: held-out codes, labels and dataset positions, checked before use.

The file passes through strangers' hands (a bundle copied from a classmate), so size checks alone are not enough:
a label of 10**12 would make the latent map build a legend of 10**12 values, a zero-byte dtype can declare a
2**40-element array, NaN codes break the SVD of PCA and t-SNE. Every array is checked for kind, shape and values.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from training.errors import LatentExplorerError
from training.untrusted.checks import regular_file_size

# Held-out codes and 64 images take a few MB; anything near this is a damaged or hostile file (a zip bomb: a 1 MB
# npz of zeros can declare a gigabyte).
MAX_LATENTS_BYTES = 256 << 20
MAX_ELEMENTS = 64 << 20
# An attribute with more values than this is not a label (anime hair colours: 12; CelebA: 2; Fashion-MNIST: 10).
MAX_LABEL_VALUE = 1023
MAX_NAME_LENGTH = 200
# What each member may hold: numpy dtype kinds.
KINDS = {"codes": "f", "labels": "iub", "attribute_names": "U", "indices": "iu", "images": "u"}


def check_npz_sizes(file: Path, max_bytes: int = MAX_LATENTS_BYTES) -> None:
    """Refuse an npz whose members are not plain .npy arrays of a known kind, or would decompress or allocate
    more than max_bytes, before numpy allocates anything (it trusts the shape in each member's header)."""
    total = 0
    with zipfile.ZipFile(file) as archive:
        for info in archive.infolist():
            total += info.file_size
            if total > max_bytes:
                raise LatentExplorerError(f"{file}: too large ({total / 2**20:.0f} MB or more uncompressed; "
                                          f"latent codes take a few MB)")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise LatentExplorerError(f"{file}: {info.filename} uses a compression numpy never writes")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, _, dtype = read_header(member)
            name = info.filename.removesuffix(".npy")
            if name not in KINDS or dtype.kind not in KINDS[name] or dtype.itemsize == 0 or dtype.hasobject:
                raise LatentExplorerError(f"{file}: unexpected member {info.filename[:60]!r} of type {dtype}")
            elements = int(np.prod(shape, dtype=object))
            if elements > MAX_ELEMENTS or elements * dtype.itemsize > info.file_size:
                raise LatentExplorerError(f"{file}: {info.filename} declares a {shape} array but holds only "
                                          f"{info.file_size} bytes; the file is damaged")


def _check_contents(arrays: dict[str, np.ndarray], file: Path, latent_dim: int, image_size: int | None,
                    num_images: int | None) -> None:
    codes = arrays.get("codes")
    if codes is None or codes.ndim != 2 or len(codes) < 2 or codes.shape[1] != latent_dim:
        shape = None if codes is None else codes.shape
        raise LatentExplorerError(f"{file}: 'codes' must be at least 2 codes of the model's {latent_dim} "
                                  f"dimensions, got {shape}")
    if not np.isfinite(codes).all():
        raise LatentExplorerError(f"{file}: 'codes' contains NaN or infinite values")
    n = len(codes)
    names = arrays.get("attribute_names", np.array([], dtype="<U1"))
    if names.ndim != 1 or any(len(str(x)) > MAX_NAME_LENGTH for x in names.tolist()):
        raise LatentExplorerError(f"{file}: 'attribute_names' must be a list of short names")
    labels = arrays.get("labels")
    if labels is not None:
        if labels.ndim not in (1, 2) or labels.size != n * len(names):
            raise LatentExplorerError(f"{file}: 'labels' has shape {labels.shape}; expected ({n}, {len(names)})")
        if labels.size and (labels.min() < -1 or labels.max() > MAX_LABEL_VALUE):
            raise LatentExplorerError(f"{file}: 'labels' holds values outside -1..{MAX_LABEL_VALUE} "
                                      f"({labels.min()}..{labels.max()}); they are not attribute labels")
    indices = arrays.get("indices")
    if indices is not None:
        limit = num_images if num_images else 1 << 31
        if indices.shape != (n,) or (n and (indices.min() < 0 or indices.max() >= limit)):
            raise LatentExplorerError(f"{file}: 'indices' must be {n} dataset positions in 0..{limit - 1}")
    images = arrays.get("images")
    if images is not None:
        size_ok = image_size is None or images.shape[1:3] == (image_size, image_size)
        if images.ndim != 4 or len(images) > n or images.shape[3] not in (1, 3) or not size_ok:
            raise LatentExplorerError(f"{file}: 'images' has shape {images.shape}; expected up to {n} images of "
                                      f"{image_size}x{image_size} pixels")


def read_latents(file: Path, latent_dim: int, image_size: int | None = None, num_images: int | None = None,
                 max_bytes: int = MAX_LATENTS_BYTES) -> dict[str, np.ndarray]:
    """The arrays of a latents.npz after checking sizes, kinds, shapes and values (LatentExplorerError if not)."""
    regular_file_size(file, "latent codes file")
    try:
        check_npz_sizes(file, max_bytes)
        with np.load(file, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except LatentExplorerError:
        raise
    except (OSError, ValueError, EOFError, MemoryError, NotImplementedError, KeyError, zipfile.BadZipFile) as exc:
        raise LatentExplorerError(f"{file}: cannot read latent codes ({str(exc)[:200]})") from None
    _check_contents(arrays, file, latent_dim, image_size, num_images)
    return arrays
