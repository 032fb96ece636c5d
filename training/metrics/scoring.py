"""One row of figures for a generated set against real images: FD, KID and the k-NN scores with intervals.

The defaults are chosen from the metrics study (docs/metrics-study.md, `python -m training.bench.metrics_study`).
"""

from __future__ import annotations

import numpy as np
import torch

from training.errors import LatentExplorerError
from training.metrics import intervals
from training.metrics.distances import frechet_distance
from training.metrics.kid import kernel_distance

DEFAULT_K = 3  # nearest neighbours of the k-NN scores
DEFAULT_SET_SIZE = 250  # m: every k-NN score compares m real with m generated images
DEFAULT_SAMPLES = 2000  # generated images per row
# What the app leads with: "realistic" and "covers the data" (see the study for why).
LEAD = {"realism": "density", "coverage": "coverage"}
INTERVAL_METHOD = ("95% normal interval from independent sets: the generated and real images are cut at random "
                   "into disjoint pairs of sets of set_size each, the spread of the pairs' scores gives the standard "
                   "error of their mean, averaged over repeated random cuts (no bootstrap: copies of a point would "
                   "shrink the k-NN balls)")


def set_size_for(samples: int, real: int, k: int, wanted: int = DEFAULT_SET_SIZE) -> int:
    """The set size a run with `samples` generated and `real` real images gets, or a LatentExplorerError."""
    m = intervals.usable_set_size(wanted, samples, real)
    if m <= k:
        raise LatentExplorerError(
            f"--samples must be more than {2 * k + 1} with k = {k} (two sets of more than k images each, of "
            f"generated and of real images; got {samples} samples and {real} real images)"
        )
    return m


def score_row(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, k: int = DEFAULT_K,
              set_size: int = DEFAULT_SET_SIZE, seed: int = 0,
              repeats: int = intervals.DEFAULT_REPEATS) -> dict:
    """The JSON row metrics.json stores: each k-NN score as a plain number (older readers take those) plus its
    interval under "intervals", KID with its spread, FD, and the counts they came from."""
    sets = intervals.scores_at_set_size(real, fake, k, set_size, repeats=repeats, seed=seed)
    kid = kernel_distance(real, fake, subset_size=sets.set_size, seed=seed)  # subsets of the sets' size
    return {
        "fd": round(frechet_distance(real, fake), 4),
        "kid": round(kid.value, 5),
        "kid_std": round(kid.std, 5),
        **{name: round(e.value, 4) for name, e in sets.scores.items()},
        "intervals": {name: [round(e.low, 4), round(e.high, 4)] for name, e in sets.scores.items()},
        "generated": sets.generated,
        "real": sets.real,
        "set_size": sets.set_size,
        "sets": sets.sets,
        "kid_subsets": kid.subsets,
        "kid_subset_size": kid.subset_size,
    }


def estimate(row: dict, name: str) -> intervals.Estimate | None:
    """A stored score with its interval, or None (not evaluated, or evaluated before intervals were stored)."""
    value, interval = row.get(name) if isinstance(row, dict) else None, None
    if isinstance(row, dict) and isinstance(row.get("intervals"), dict):
        interval = row["intervals"].get(name)
    return intervals.Estimate.from_json({"value": value, "interval": interval})
