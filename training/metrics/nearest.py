"""Is it copying? For generated images, their nearest real images in feature space and in pixel space.

A distance alone means little, so each search also measures the pool's own scale: the median distance from a
real image to its nearest *other* real image of the pool. A sample much closer than that to a real image
(ratio well under 1) looks like a copy of it; a ratio near or above 1 means it is no closer to any real image
than real images are to each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from training.errors import LatentExplorerError
from training.metrics.features import image_features
from training.models.featurenet import FeatureNet

CHUNK = 1024


@dataclass(frozen=True)
class Neighbours:
    """For each query (row): the positions of its nearest pool items, nearest first, and their distances."""

    index: np.ndarray  # (n, j) int
    distance: np.ndarray  # (n, j)
    typical: float  # median distance from a pool item to its nearest other pool item

    @property
    def ratio(self) -> np.ndarray:
        """Distance to the nearest pool item over the pool's typical nearest-neighbour distance, per query."""
        return self.distance[:, 0] / self.typical if self.typical > 0 else np.full(len(self.distance), np.inf)


def _smallest(queries: torch.Tensor, pool: torch.Tensor, j: int, exclude_self: bool = False):
    values, indices = [], []
    for start in range(0, len(queries), CHUNK):
        d = torch.cdist(queries[start:start + CHUNK].double(), pool.double())
        if exclude_self:
            rows = torch.arange(d.shape[0])
            d[rows, rows + start] = float("inf")
        top = d.topk(j, dim=1, largest=False)
        values.append(top.values)
        indices.append(top.indices)
    return torch.cat(values), torch.cat(indices)


def nearest(queries: torch.Tensor, pool: torch.Tensor, j: int = 3, typical_of: int | None = None) -> Neighbours:
    """The j nearest rows of `pool` (N, D) to each row of `queries` (n, D), Euclidean. The pool's typical
    nearest-neighbour distance is measured for every pool item, or for `typical_of` of them spread evenly (a
    pool of 10,000 images compared with itself is 10^8 distances; 500 of them give the same median to a few %)."""
    if queries.ndim != 2 or pool.ndim != 2 or queries.shape[1] != pool.shape[1]:
        raise LatentExplorerError(f"cannot compare vectors of shapes {tuple(queries.shape)} and {tuple(pool.shape)}")
    if len(pool) < 2:
        raise LatentExplorerError("the nearest-image search needs at least two real images")
    j = min(j, len(pool))
    distance, index = _smallest(queries, pool, j)
    if typical_of is None or typical_of >= len(pool):
        typical, _ = _smallest(pool, pool, 1, exclude_self=True)
    else:
        picked = torch.from_numpy(np.linspace(0, len(pool) - 1, typical_of).round().astype(np.int64))
        distances = torch.cdist(pool[picked].double(), pool.double())
        distances[torch.arange(len(picked)), picked] = float("inf")  # not the item itself
        typical = distances.min(dim=1).values
    return Neighbours(index.numpy(), distance.float().numpy(), float(typical.median()))


def pixel_vectors(images: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Images (B, C, H, W) in [-1, 1] as flat vectors scaled so that a distance is the root-mean-square pixel
    difference (0 for the same image, 2 for black against white); resized to `size` first when given."""
    x = images.float()
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    flat = x.flatten(1)
    return flat / np.sqrt(flat.shape[1])


def nearest_real(generated: torch.Tensor, real: torch.Tensor, net: FeatureNet | None = None,
                 j: int = 3, typical_of: int | None = None) -> dict[str, Neighbours]:
    """Nearest real images of each generated image: {"pixel": ..., "feature": ...} ("feature" only with a
    feature network). Generated images are resized to the real images' size; channels must match."""
    if generated.shape[1] != real.shape[1]:
        raise LatentExplorerError(f"generated images have {generated.shape[1]} channels, the real ones "
                                  f"{real.shape[1]}")
    size = tuple(real.shape[-2:])
    out = {"pixel": nearest(pixel_vectors(generated, size), pixel_vectors(real), j, typical_of)}
    if net is not None:
        out["feature"] = nearest(image_features(net, generated), image_features(net, real), j, typical_of)
    return out


COPY_RATIO = 0.5  # closer than half the typical real-to-real distance: looks like a copy


def tiles(generated: torch.Tensor, real: torch.Tensor, found: dict[str, Neighbours]) -> torch.Tensor:
    """One row per generated image: the image, then its nearest real images in each space of `found` (in that
    order), as a batch for an image grid with 1 + j * len(found) columns."""
    rows = []
    for i, image in enumerate(generated):
        row = [image[None]]
        for neighbours in found.values():
            picked = real[torch.from_numpy(neighbours.index[i])]
            if picked.shape[-2:] != image.shape[-2:]:
                picked = F.interpolate(picked.float(), size=image.shape[-2:], mode="bilinear", antialias=True,
                                       align_corners=False)
            row.append(picked)
        rows.append(torch.cat(row))
    return torch.cat(rows)


def copy_verdict(found: dict[str, Neighbours], pool: int) -> str:
    """A sentence on whether any of the samples looks copied, from the nearest-distance ratios."""
    parts = []
    for space, neighbours in found.items():
        ratio = neighbours.ratio
        close = [i + 1 for i, r in enumerate(ratio) if r < COPY_RATIO]
        where = f"in {space} space"
        if close:
            parts.append(f"{where}, sample {', '.join(map(str, close))} sits closer to a training image than "
                         f"{COPY_RATIO:.0%} of the usual distance between two training images: look for a copy")
        else:
            parts.append(f"{where}, the nearest training image is {ratio.min():.2f}x to {ratio.max():.2f}x the usual "
                         "distance between two training images, so none is a near copy")
    text = "; ".join(parts)
    return f"Among the first {pool} training images: {text}."
