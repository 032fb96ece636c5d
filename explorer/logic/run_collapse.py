"""Whether a training run collapsed: its generator's samples from its own prior, compared in the dataset's feature
network with another run's (explorer/logic/diversity.py), or, without weights or a feature network, its scores.

A run that collapsed makes nearly one image whatever z it is given. Its loss may then swing less than a healthy
run's, which reads as "steadier" unless the verdict says first that it collapsed. No Streamlit here.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from explorer.logic.diversity import (
    JUDGED_IMAGES,
    distinct_images,
    feature_judge,
    is_collapsed,
    judged_features,
    same_image_distance,
    spread_beyond,
)
from training.bundle import CONFIG_FILE, load_bundle
from training.errors import LatentExplorerError
from training.latent import sampling

SEED = 0  # every run draws the same codes of its prior: the fixed-noise idea of the snapshot grids
# Without samples to measure: scores that only a collapsed model reaches. Recall near zero alone is common for
# the small shipped runs (the label-flip run: 0.003, with varied samples), so coverage must be tiny too.
NO_RECALL, HIGH_PRECISION, NO_COVERAGE = 0.005, 0.9, 0.1


@dataclass(frozen=True)
class Collapse:
    """How varied a run's samples are against a reference run's, in the feature network."""

    share: float  # spread beyond the same-image distance, as a share of the more varied run's
    distinct: int  # distinct images among the run's samples
    count: int  # samples measured

    @property
    def collapsed(self) -> bool:
        return is_collapsed(self.share)


@functools.lru_cache(maxsize=64)
def _features(path: str, mtime_ns: int) -> torch.Tensor | None:
    try:
        bundle = load_bundle(path)
        judge = feature_judge(bundle)
        if judge is None or not bundle.capabilities.generates:
            return None
        images = sampling.sample(bundle, bundle.prior, JUDGED_IMAGES, SEED).images
    except LatentExplorerError:
        return None
    if not torch.isfinite(images).all():
        return None
    return judged_features(judge, images)


def run_features(path: str | Path) -> torch.Tensor | None:
    """Feature-network features of JUDGED_IMAGES samples of the run from its own prior (seed SEED), computed once
    per version of the bundle; None without weights, a generator, a feature network or finite images."""
    try:
        mtime_ns = (Path(path) / CONFIG_FILE).stat().st_mtime_ns
    except OSError:
        return None
    return _features(str(path), mtime_ns)


def collapse_against(path: str | Path, reference: str | Path) -> Collapse | None:
    """The run's variety against the more varied of itself and the reference run (each pair of images closer than
    a third of that run's median distance counts as one image); None when either cannot be measured."""
    own, other = run_features(path), run_features(reference)
    if own is None or other is None or own.shape[0] < 2 or other.shape[0] < 2:
        return None
    wider = other if torch.pdist(other).median() > torch.pdist(own).median() else own
    same = same_image_distance(wider)
    reference_spread = spread_beyond(wider, same)
    if not reference_spread > 0:
        return None
    return Collapse(spread_beyond(own, same) / reference_spread, distinct_images(own, same), int(own.shape[0]))


def collapsed_by_scores(scores: dict) -> bool:
    """The metrics alone: realistic samples (high precision) that cover almost none of the real images (recall and,
    where measured, coverage near zero)."""
    def number(key: str) -> float | None:
        value = scores.get(key)
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None

    precision, recall, coverage = number("precision"), number("recall"), number("coverage")
    if precision is None or recall is None:
        return False
    return precision >= HIGH_PRECISION and recall <= NO_RECALL and (coverage is None or coverage < NO_COVERAGE)
