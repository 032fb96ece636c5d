"""Does a generator copy its training images? The nearest training images of a few samples, by the feature
network's features and by pixels, against the usual distance between two training images (nearest.py).

A copy shows as a nearest distance well below that usual distance (COPY_RATIO). The result is what
`python -m training evaluate --nearest N --write` stores in metrics.json under "memorisation".
"""

from __future__ import annotations

import numpy as np

from training.bundle import Bundle
from training.data.base import ImageDataset
from training.latent.sampling import sample
from training.metrics.nearest import COPY_RATIO, copy_verdict, nearest_real
from training.models.featurenet import FeatureNet

METRICS_KEY = "memorisation"
# Training images whose nearest other training image sets the usual distance (all of them against all is N^2).
TYPICAL_OF = 500


def memorisation_check(bundle: Bundle, train: ImageDataset, net: FeatureNet | None, samples: int = 16,
                       seed: int = 0) -> dict:
    """Nearest training images (of all of `train`) of `samples` generated images from the bundle's prior, in
    feature and pixel space: per space the nearest distance as a multiple of the usual training-to-training
    distance (min, median, max over the samples) and how many samples fall below COPY_RATIO; and one sentence."""
    images = sample(bundle, bundle.prior, samples, seed=seed).images
    real = train.batch(np.arange(len(train)))[0]
    found = nearest_real(images, real, net, j=1, typical_of=TYPICAL_OF)
    spaces = {}
    for space, neighbours in sorted(found.items()):
        ratio = np.asarray(neighbours.ratio, dtype=float)
        spaces[space] = {"nearest_ratio_min": round(float(ratio.min()), 3),
                         "nearest_ratio_median": round(float(np.median(ratio)), 3),
                         "nearest_ratio_max": round(float(ratio.max()), 3),
                         "near_copies": int((ratio < COPY_RATIO).sum())}
    return {"what": "nearest training image of each of `samples` generated images, as a multiple of the usual "
                    "distance between two training images; below copy_ratio looks like a copy",
            "samples": samples, "seed": seed, "pool": len(real), "typical_of": min(TYPICAL_OF, len(real)),
            "copy_ratio": COPY_RATIO, "spaces": spaces,
            "copies": any(s["near_copies"] for s in spaces.values()), "verdict": copy_verdict(found, len(real))}
