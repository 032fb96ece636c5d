"""A VAE bundle's latents.npz, checked and named: the encoded held-out codes with their labels, and the dataset
positions (or the first images) behind them. The latent map and the attribute directions read it. No Streamlit here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.attributes import Attribute
from training.errors import LatentExplorerError


@dataclass(frozen=True)
class HeldOutCodes:
    codes: np.ndarray  # float32 (N, d): encoder means of held-out images
    labels: np.ndarray  # int64 (N, A)
    attributes: tuple[Attribute, ...]  # named as in latents.npz, values from the bundle's dataset
    images: np.ndarray | None  # uint8 (n, H, W, C) for the first n codes, n <= N
    # Dataset positions of the codes: bundles trained on a real dataset ship no images (they may not be
    # redistributed), so the explorer reads the originals from a local copy at these positions.
    indices: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    def has_image(self, i: int) -> bool:
        return self.images is not None and 0 <= i < len(self.images)

    @property
    def originals_known(self) -> int:
        """How many codes (the first ones) have an original image: kept in the file, or at a dataset position."""
        if self.images is not None:
            return len(self.images)
        return len(self) if self.indices is not None else 0

    def code_norm(self, i: int) -> float:
        return float(np.linalg.norm(self.codes[i]))

    def label_text(self, i: int) -> str:
        """Code i's labels, e.g. "hair_colour = black, smiling = yes" ("none" without attributes)."""
        values = ", ".join(f"{a.name} = {a.values[min(int(self.labels[i, j]), len(a.values) - 1)]}"
                           for j, a in enumerate(self.attributes))
        return values or "none"


def held_out_codes(arrays: dict[str, np.ndarray] | None, dataset_attributes: tuple[Attribute, ...],
                   where: str = "latents.npz") -> HeldOutCodes:
    """Check and name the arrays of a latents.npz; attribute values come from the dataset description."""
    if arrays is None:
        raise LatentExplorerError(f"{where} is missing: it is written when VAE training finishes; a run that is "
                                  "still training (or was stopped) has none yet")
    if "codes" not in arrays:
        raise LatentExplorerError(f"{where} has no 'codes' array (it has {', '.join(sorted(arrays)) or 'nothing'})")
    codes = np.asarray(arrays["codes"], dtype=np.float32)
    if codes.ndim != 2 or len(codes) < 2:
        raise LatentExplorerError(f"{where}: 'codes' must hold at least 2 codes as (N, d), got {codes.shape}")
    names = [str(n) for n in arrays.get("attribute_names", np.array([], dtype=str)).tolist()]
    labels = np.asarray(arrays.get("labels", np.zeros((len(codes), 0))), dtype=np.int64).reshape(len(codes), -1)
    if labels.shape[1] != len(names):
        raise LatentExplorerError(f"{where}: {labels.shape[1]} label columns but {len(names)} attribute names")
    known = {a.name: a for a in dataset_attributes}
    attributes = []
    for j, name in enumerate(names):
        if name in known:
            attributes.append(known[name])
        else:  # values unknown: name them by their index
            attributes.append(Attribute(name, tuple(str(v) for v in range(int(labels[:, j].max(initial=0)) + 1))))
    images = arrays.get("images")
    if images is not None:
        images = np.asarray(images)
        if images.ndim != 4 or images.dtype != np.uint8:
            images = None
    indices = arrays.get("indices")
    if indices is not None:
        indices = np.asarray(indices)
        if indices.shape != (len(codes),) or indices.dtype.kind not in "iu" or (len(indices) and indices.min() < 0):
            indices = None
    return HeldOutCodes(codes, labels, tuple(attributes), images, indices)
