"""How varied a batch of generated images looks to a person: distances in the dataset's feature network, where two
images closer than a third of the typical distance between two samples of the training prior count as one image.

Pixel distances mislead here: saturated images that differ only in a few black-or-white blotches stay far apart in
pixels although a person sees one picture 64 times. The feature network of the dataset (the classifier whose
penultimate layer the metrics use, checkpoints/<dataset>/featurenet) compares what the images show instead.

Why a third: a harmless change (a one-pixel shift, a light blur and a 10% contrast change together) moves a
sample of the training prior by 0.13 to 0.40 of the prior's median distance in ten of the eleven shipped
generators, 0.29 in the middle (the Fashion-MNIST VAE's dark, blurry samples: 1.07; docs/diversity.md). Pairs
closer than that are two views of the same image, so only distance beyond it counts as variety, averaged over the
closest 80% of pairs so that a few odd samples among copies of one image do not make the batch look varied.

Pure functions on tensors, and one cached loader; no Streamlit here.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from training.bundle import CONFIG_FILE, Bundle, load_bundle
from training.bundle import paths as bundle_paths
from training.errors import LatentExplorerError
from training.models.featurenet import to_input

# Pairs of images closer than this share of the prior batch's median feature distance count as the same image.
SAME_IMAGE_SHARE = 1 / 3
# The spread is averaged over this share of the pairs, the closest ones: a grid of copies of one image with a few odd
# samples among them is one image to a person, and the odd samples' pairs would otherwise dominate the mean.
TYPICAL_PAIRS = 0.8
# Features are computed for at most this many images of a batch: one feature-network forward on 32 images at
# 64x64 costs about as much as the generator's on 64 (docs/diversity.md), and 496 pairs measure the spread well.
JUDGED_IMAGES = 32
# A batch whose diversity figure, as the page shows it (whole percent), is at most this is "collapsed": nearly one
# image. Calibrated on every shipped generator's mean-sweep grids (docs/diversity.md).
COLLAPSED_AT_MOST = 0.10
FEATURENET_NETWORK = "featurenet"

_LOG = logging.getLogger(__name__)


def judged_features(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Penultimate-layer features (float64) of the first JUDGED_IMAGES images (in [-1, 1]), as the metrics see
    them: the same quantising and resizing (training.models.featurenet.to_input)."""
    x = to_input(images[:JUDGED_IMAGES], net.config).contiguous(memory_format=torch.channels_last)
    net.eval()
    with torch.no_grad():
        return net.features(x).double()


def same_image_distance(prior_features: torch.Tensor) -> float:
    """The distance below which two images count as one: SAME_IMAGE_SHARE of the median pairwise distance of the
    training prior's features (0 when there are fewer than two)."""
    if prior_features.shape[0] < 2:
        return 0.0
    return SAME_IMAGE_SHARE * float(torch.pdist(prior_features).median())


def spread_beyond(features: torch.Tensor, same: float) -> float:
    """How far apart two images typically are beyond `same` (pairs closer than it add nothing): the mean over the
    TYPICAL_PAIRS closest pairs."""
    if features.shape[0] < 2:
        return float("nan")
    beyond = (torch.pdist(features) - same).clamp(min=0).sort().values
    return float(beyond[:max(1, math.ceil(TYPICAL_PAIRS * len(beyond)))].mean())


def distinct_images(features: torch.Tensor, same: float) -> int:
    """How many different images the batch holds: each image joins the first earlier one that is closer than
    `same`, or starts a new one (deterministic, in batch order)."""
    close = (torch.cdist(features, features) < same).tolist()  # one matrix, then plain Python: 32 images in 0.1 ms
    leaders: list[int] = []
    for i in range(len(close)):
        if not any(close[i][j] for j in leaders):
            leaders.append(i)
    return len(leaders)


def shown_share(ratio: float) -> float:
    """The share as the pages print it (whole percent), so that a word and its figure never disagree."""
    return round(ratio, 2)


def is_collapsed(ratio: float) -> bool:
    """Nearly one image: a diversity figure, as shown, of at most COLLAPSED_AT_MOST."""
    return shown_share(ratio) <= COLLAPSED_AT_MOST


@dataclass(frozen=True, eq=False)  # it holds a tensor: compared by identity
class FeatureSpread:
    """A batch's features and the numbers drawn from them against a reference batch (the training prior's)."""

    features: torch.Tensor
    same: float  # the same-image distance (from the reference batch)
    spread: float  # spread_beyond(features, same)
    distinct: int  # distinct_images(features, same)

    @property
    def count(self) -> int:
        return int(self.features.shape[0])


def feature_spread(features: torch.Tensor, same: float) -> FeatureSpread:
    return FeatureSpread(features, same, spread_beyond(features, same), distinct_images(features, same))


# --- the feature network of a bundle's dataset ----------------------------------------------------------------
class FoldedFeatures(nn.Module):
    """A feature network's features with each BatchNorm folded into the convolution before it (the same numbers
    to 1e-6, in eval mode), in channels-last order: on the sampling page's 32 images this runs in about half the
    time of the network as trained, which every slider move pays."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.config = net.config
        layers, modules = [], list(net.body)
        for i, layer in enumerate(modules):
            if isinstance(layer, nn.BatchNorm2d) and i and isinstance(modules[i - 1], nn.Conv2d):
                layers[-1] = fuse_conv_bn_eval(modules[i - 1], layer)
            else:
                layers.append(layer)
        self.body = nn.Sequential(*layers).eval().to(memory_format=torch.channels_last)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(2, 3))


@functools.lru_cache(maxsize=8)
def _load_judge(path: str, mtime_ns: int) -> nn.Module | None:
    try:
        found = load_bundle(path)
    except LatentExplorerError as exc:
        _LOG.warning("the feature network at %s cannot be read, diversity falls back to pixels: %s", path, exc)
        return None
    net = found.networks.get(FEATURENET_NETWORK)
    if net is None:
        return None
    return FoldedFeatures(net.eval())


def feature_judge(bundle: Bundle) -> nn.Module | None:
    """The feature network of the bundle's dataset (checkpoints/<dataset>/featurenet), loaded once per version of
    its files; None when the dataset has none or it cannot be read (diversity is then measured in pixels)."""
    dataset = str((bundle.config.get("dataset") or {}).get("name") or "")
    if not dataset:
        return None
    path = bundle_paths.featurenet_path(dataset)
    try:
        mtime_ns = (path / CONFIG_FILE).stat().st_mtime_ns
    except OSError:
        return None
    return _load_judge(str(path), mtime_ns)
