"""Collapse diagnostics: numbers (and one plain sentence) that say why a latent distribution fails a generator.

Pure functions on tensors; no Streamlit here, so every number is tested without a browser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from explorer.logic.diversity import (
    FeatureSpread,
    feature_spread,
    is_collapsed,
    judged_features,
    same_image_distance,
)
from training.latent.priors import LatentDistribution, sample_latents

SATURATION_THRESHOLD = 0.98  # |x| above this after tanh: the pixel is pinned to black or white
VARIED_RATIO = 0.8  # below this share of the prior's diversity the samples look alike ("reduced diversity")
# How a batch's diversity was measured: in the dataset's feature network (explorer/logic/diversity.py), or in
# pixels pooled to 16x16 when the dataset has no feature network.
FEATURES, PIXELS = "feature network", "pixels"


def pairwise_cosine(z: torch.Tensor) -> float:
    """Mean cosine similarity over all distinct pairs of codes (0 for independent N(0,1) codes)."""
    if z.shape[0] < 2:
        return float("nan")
    unit = nn.functional.normalize(z.double(), dim=1)
    sims = unit @ unit.T
    n = z.shape[0]
    return float((sims.sum() - sims.diagonal().sum()) / (n * (n - 1)))


def mean_pairwise_distance(x: torch.Tensor) -> float:
    """Mean Euclidean distance over distinct pairs of flattened rows (codes or images)."""
    flat = x.reshape(x.shape[0], -1).double()
    if flat.shape[0] < 2:
        return float("nan")
    return float(torch.pdist(flat).mean())


def image_diversity(images: torch.Tensor, resolution: int = 16) -> float:
    """Mean pairwise distance between images after average-pooling them to about resolution x resolution: the
    pixel measure, used when a dataset has no feature network. Pooling discounts pixel-level noise, but saturated
    images that differ in a few black-or-white blotches still stay far apart, so it overstates their variety."""
    factor = max(1, images.shape[-1] // resolution)
    pooled = nn.functional.avg_pool2d(images.double(), factor) if factor > 1 else images
    return mean_pairwise_distance(pooled)


def saturated_fraction(images: torch.Tensor, threshold: float = SATURATION_THRESHOLD) -> float:
    return float((images.abs() > threshold).double().mean())


def nonfinite_rows(x: torch.Tensor) -> torch.Tensor:
    """Which samples (rows of codes, or images) hold at least one NaN or infinite value, as a bool mask."""
    # One sum decides for the usual finite batch: 0.4 ms for 128 RGB 64x64 images, against 8 ms for the
    # element-wise check (a sample page's grid takes 25 ms). A finite sum can only come from finite values.
    if x.numel() == 0 or torch.isfinite(x.sum()):
        return torch.zeros(x.shape[0], dtype=torch.bool)
    return ~torch.isfinite(x.reshape(x.shape[0], -1)).all(dim=1)


def nonfinite_count(x: torch.Tensor) -> int:
    """How many samples (rows of codes, or images) hold at least one NaN or infinite value."""
    return int(nonfinite_rows(x).sum())


def nonfinite_images_sentence(count: int, total: int, what: str = "samples") -> str:
    """What a batch with NaN or infinite pixels means, said plainly: there is no picture to read numbers from."""
    ending = "none of them is a real image" if count >= total else "those are not real images"
    return (f"The generator produced NaN or infinite pixel values for {count} of {total} {what}: its weights, or the "
            f"codes it was given, are outside what it can compute; {ending}.")


def shown(value: float | None, spec: str, unit: str = "", missing: str = "n/a") -> str:
    """A number formatted for a page, or `missing` when it is unknown (None) or not finite: a page never prints
    "nan" or "inf"; the verdict next to it says why the number is missing."""
    if value is None or not math.isfinite(value):
        return missing
    return format(value, spec) + unit


def rounded(value: float | None, digits: int) -> float | None:
    """A table cell: the number rounded, or None (an empty cell) when it is unknown or not finite."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def first_layer_shift(generator: nn.Module, z: torch.Tensor) -> float | None:
    """How far the first layer's pre-activations sit from what the model saw in training, in units of the
    first BatchNorm's running std: the root mean square of (pre-activation - running mean) / running std.
    About 1 for codes like the training ones (that is what BatchNorm's statistics mean); it grows with the
    code's length, so N(-10,1) codes give about 10. None when there is no first BatchNorm to compare with."""
    norm = getattr(generator, "first_batchnorm", None)
    if norm is None or not hasattr(generator, "first_layer_preactivation"):
        return None
    with torch.no_grad():
        pre = generator.first_layer_preactivation(z).double()
    shape = [1, -1] + [1] * (pre.dim() - 2)
    # .cpu(): the generator may run on a GPU (explorer/core/inference.py); its first layer answers on the CPU.
    mean = norm.running_mean.double().cpu().view(shape)
    std = (norm.running_var.double().cpu() + norm.eps).sqrt().view(shape)
    return float(((pre - mean) / std).pow(2).mean().sqrt())


@dataclass(frozen=True)
class NormReference:
    """The norms of codes drawn from the training prior (what the generator learned from)."""

    mean: float
    std: float

    def zscore(self, norm: float) -> float:
        return (norm - self.mean) / self.std if self.std > 0 else 0.0


def prior_norm_reference(prior: LatentDistribution, dim: int, n: int = 4096, seed: int = 12345) -> NormReference:
    """Mean and std of ||z|| under the prior. For N(0,1) this is the chi distribution with `dim` degrees of
    freedom (mean about sqrt(dim - 0.5), std about 0.71); Monte Carlo keeps it right for any prior."""
    norms = sample_latents(prior, n, dim, seed=seed).double().norm(dim=1)
    return NormReference(mean=float(norms.mean()), std=float(norms.std()))


@dataclass(frozen=True)
class Diagnostics:
    distribution: str
    prior: str
    num_samples: int
    latent_dim: int
    cosine: float  # mean pairwise cosine of the codes
    prior_cosine: float
    norm_mean: float
    prior_norm: NormReference
    norm_zscore: float  # (mean batch norm - prior mean norm) / prior norm std
    code_spread_ratio: float  # pairwise code distance / the prior's (U(0,1): about 1/3.5)
    # How far apart the images are: in the feature network, the typical distance beyond the same-image distance
    # (explorer/logic/diversity.py spread_beyond); in pixels, the mean distance between images pooled to 16x16.
    diversity: float
    diversity_ratio: float  # relative to the prior's samples from the same model and seed
    saturated: float
    prior_saturated: float
    first_layer_shift: float | None
    prior_first_layer_shift: float | None
    # Samples holding a NaN or an infinite value: codes of this batch, images of this batch and of the prior's.
    nonfinite_codes: int = 0
    nonfinite_images: int = 0
    prior_nonfinite_images: int = 0
    diversity_measure: str = PIXELS  # FEATURES or PIXELS
    judged_samples: int = 0  # how many of the images the feature network compared (the first ones)
    distinct_images: int | None = None  # among those, as the feature network tells them apart
    prior_distinct_images: int | None = None

    @property
    def verdict(self) -> str:
        """"non-finite": the codes or the images hold NaN or infinite values, so no other number means anything
        (checked first); "collapsed": nearly one image (in the feature network, a diversity figure of at most
        10%; in pixels, under 25%, or under 50% when the codes are nearly parallel or the pixels saturate);
        "reduced diversity": samples look alike (under 80%); "off-distribution": still varied but the generator
        is extrapolating; "healthy": like samples from the training prior."""
        if self.nonfinite_codes or self.nonfinite_images or self.prior_nonfinite_images:
            return "non-finite"
        if self.diversity_measure == FEATURES:
            if math.isfinite(self.diversity_ratio) and is_collapsed(self.diversity_ratio):
                return "collapsed"
        else:
            same_input = self.cosine > 0.95 or self.saturated > self.prior_saturated + 0.2
            if self.diversity_ratio < 0.25 or (self.diversity_ratio < 0.5 and same_input):
                return "collapsed"
        if self.diversity_ratio < VARIED_RATIO:
            return "reduced diversity"
        if abs(self.norm_zscore) > 4 or self.saturated > self.prior_saturated + 0.05:
            return "off-distribution"
        return "healthy"


@dataclass(frozen=True)
class PriorNumbers:
    """The numbers of the training prior's batch that every batch of the same size and seed is compared with."""

    diversity: float  # in pixels (image_diversity)
    spread: float  # mean pairwise code distance
    cosine: float
    saturated: float
    first_layer_shift: float | None
    nonfinite_images: int
    judged: FeatureSpread | None = None  # in the feature network; None without one (or with non-finite images)


def prior_numbers(generator: nn.Module, prior_z: torch.Tensor, prior_images: torch.Tensor,
                  judge: nn.Module | None = None) -> PriorNumbers:
    """Computed once per prior batch: a slider move that changes only the distribution need not redo them.
    judge: the dataset's feature network (explorer/logic/diversity.py), or None to measure diversity in pixels."""
    nonfinite = nonfinite_count(prior_images)
    judged = None
    if judge is not None and not nonfinite and prior_images.shape[0] >= 2:
        features = judged_features(judge, prior_images)
        judged = feature_spread(features, same_image_distance(features))
    # A NaN pixel is neither saturated nor not: the share would silently count it as "not saturated".
    return PriorNumbers(image_diversity(prior_images), mean_pairwise_distance(prior_z), pairwise_cosine(prior_z),
                        saturated_fraction(prior_images) if not nonfinite else float("nan"),
                        first_layer_shift(generator, prior_z), nonfinite, judged)


def _batch_diversity(images: torch.Tensor, prior_side: PriorNumbers, judge: nn.Module | None,
                     nonfinite_images: int) -> dict:
    """The diversity fields of Diagnostics: in the feature network when the prior batch was judged there too,
    else in pixels."""
    prior = prior_side.judged
    if judge is None or prior is None or nonfinite_images or images.shape[0] < 2:
        diversity = image_diversity(images)
        ratio = diversity / prior_side.diversity if prior_side.diversity > 0 else float("nan")
        return {"diversity": diversity, "diversity_ratio": ratio}
    judged = feature_spread(judged_features(judge, images), prior.same)
    return {"diversity": judged.spread,
            "diversity_ratio": judged.spread / prior.spread if prior.spread > 0 else float("nan"),
            "diversity_measure": FEATURES, "judged_samples": judged.count, "distinct_images": judged.distinct,
            "prior_distinct_images": prior.distinct}


def diagnose(generator: nn.Module, dist: LatentDistribution, prior: LatentDistribution, z: torch.Tensor,
             images: torch.Tensor, prior_z: torch.Tensor, prior_images: torch.Tensor,
             norm_reference: NormReference, prior_side: PriorNumbers | None = None,
             judge: nn.Module | None = None) -> Diagnostics:
    """All numbers for one batch, compared with a batch from the training prior of the same size and seed
    (`prior_side`: that batch's numbers, when already computed with the same judge). judge: the dataset's
    feature network, which measures diversity as a person sees it; None measures it in pixels."""
    prior_side = prior_side or prior_numbers(generator, prior_z, prior_images, judge)
    prior_spread = prior_side.spread
    prior_nonfinite_images, prior_saturated = prior_side.nonfinite_images, prior_side.saturated
    norm_mean = float(z.double().norm(dim=1).mean())
    nonfinite_images = nonfinite_count(images)
    saturated = saturated_fraction(images) if not nonfinite_images else float("nan")
    return Diagnostics(
        distribution=dist.label,
        prior=prior.label,
        num_samples=int(z.shape[0]),
        latent_dim=int(z.shape[1]),
        cosine=pairwise_cosine(z),
        prior_cosine=prior_side.cosine,
        norm_mean=norm_mean,
        prior_norm=norm_reference,
        norm_zscore=norm_reference.zscore(norm_mean),
        code_spread_ratio=mean_pairwise_distance(z) / prior_spread if prior_spread > 0 else float("nan"),
        saturated=saturated,
        prior_saturated=prior_saturated,
        first_layer_shift=first_layer_shift(generator, z),
        prior_first_layer_shift=prior_side.first_layer_shift,
        nonfinite_codes=nonfinite_count(z),
        nonfinite_images=nonfinite_images,
        prior_nonfinite_images=prior_nonfinite_images,
        **_batch_diversity(images, prior_side, judge, nonfinite_images),
    )


def explain_nonfinite(d: Diagnostics) -> str:
    """The "non-finite" verdict in words: which values are broken and what that means; no other number is read
    aloud, because every one of them would be computed from NaN."""
    parts = []
    if d.nonfinite_codes:
        parts.append(f"{d.nonfinite_codes} of {d.num_samples} codes drawn from {d.distribution} hold NaN or infinite "
                     "values, so no length, angle or image can be computed from them.")
    if d.nonfinite_images:
        parts.append(nonfinite_images_sentence(d.nonfinite_images, d.num_samples))
    if d.prior_nonfinite_images:
        if d.nonfinite_images:
            parts.append(f"It does so for {d.prior_nonfinite_images} of {d.num_samples} samples from its training "
                         f"prior {d.prior} too: the fault is in the model's weights, not in this distribution.")
        else:
            parts.append(f"These samples are finite, but the generator produced NaN or infinite pixel values for "
                         f"{d.prior_nonfinite_images} of {d.num_samples} samples from its training prior {d.prior}: "
                         "its weights are outside what it can compute, so there is nothing to compare these "
                         "samples with.")
    return " ".join(parts)


def _code_directions(d: Diagnostics) -> str:
    """How the codes point relative to each other (needs at least two codes)."""
    if d.cosine > 0.9:
        return (f"The {d.num_samples} codes from {d.distribution} are nearly parallel "
                f"(mean cosine {d.cosine:.2f}; {d.prior} codes give {d.prior_cosine:.2f}), so the generator "
                "receives almost the same input every time.")
    if d.cosine > 0.3:
        spread = (f" and spread {1 / d.code_spread_ratio:.1f}x less than {d.prior} codes"
                  if d.code_spread_ratio < 0.8 else "")
        return (f"The codes from {d.distribution} share a large common direction (mean cosine {d.cosine:.2f}; "
                f"{d.prior} codes give {d.prior_cosine:.2f}){spread}, so they differ from each other less "
                "than training codes did.")
    if d.code_spread_ratio < 0.8:
        return (f"The codes point in unrelated directions (mean cosine {d.cosine:.2f}) but spread "
                f"{1 / d.code_spread_ratio:.1f}x less than {d.prior} codes.")
    return f"The codes point in unrelated directions (mean cosine {d.cosine:.2f}), like {d.prior} codes."


def _images(count: int) -> str:
    return f"{count} distinct image{'' if count == 1 else 's'}"


def _measured(d: Diagnostics) -> str:
    """How the diversity figure was measured, and for a collapsed batch how many distinct images it holds (for
    samples that merely look alike the count says little: alike images are still told apart)."""
    if d.diversity_measure != FEATURES:
        return ("(measured in pixels: this dataset has no feature network, and pixels overstate how varied "
                "saturated images are)")
    if d.verdict != "collapsed":
        return "in the eyes of the dataset's feature network"
    which = f"the first {d.judged_samples}" if d.judged_samples < d.num_samples else "they"
    prior = f"; {d.prior} samples: {d.prior_distinct_images}" if d.prior_distinct_images is not None else ""
    return (f"in the eyes of the dataset's feature network ({which} hold {_images(d.distinct_images or 0)}"
            f"{prior})")


def explain(d: Diagnostics) -> str:
    """One short paragraph, built only from the numbers, that a class can read aloud."""
    if d.verdict == "non-finite":
        return explain_nonfinite(d)
    parts = [_code_directions(d)] if math.isfinite(d.cosine) else []  # a single code has no pairs to compare
    z = d.norm_zscore
    length = "Their length" if d.num_samples > 1 else "The code's length"
    if abs(z) > 4:
        parts.append(f"{length} is {d.norm_mean:.1f}, {abs(z):.0f} standard deviations "
                     f"{'above' if z > 0 else 'below'} the lengths the generator was trained on "
                     f"({d.prior_norm.mean:.1f} ± {d.prior_norm.std:.1f}): outside the region it learned.")
    else:
        parts.append(f"{length}, {d.norm_mean:.1f}, is within the prior's typical range "
                     f"({d.prior_norm.mean:.1f} ± {d.prior_norm.std:.1f}).")
    if d.first_layer_shift is not None and d.prior_first_layer_shift is not None and \
            d.first_layer_shift > 2 * d.prior_first_layer_shift:
        parts.append(f"The first layer's pre-activations sit {d.first_layer_shift:.1f} running standard deviations "
                     f"from their training mean (vs {d.prior_first_layer_shift:.1f} for {d.prior} codes), so every "
                     "later layer is pushed to its limits.")
    outcome = f"{d.saturated:.0%} of output pixels are saturated (vs {d.prior_saturated:.0%})"
    endings = {
        "collapsed": "the samples have collapsed into nearly one image.",
        "reduced diversity": "the samples look alike.",
        "off-distribution": "the samples still vary, but the generator is extrapolating, so expect artefacts.",
        "healthy": "the samples are as varied as the model can make them.",
    }
    if math.isfinite(d.diversity_ratio):
        outcome += f" and the images are {d.diversity_ratio:.0%} as varied as {d.prior} samples {_measured(d)}"
    else:  # a single sample: nothing to say about variety
        endings.update({"off-distribution": "the generator is extrapolating, so expect artefacts.",
                        "healthy": "the sample looks like one from the training prior."})
    parts.append(f"Result: {outcome}; {endings[d.verdict]}")
    return " ".join(parts)


def chi_mean(dim: int) -> float:
    """Exact mean norm of a dim-dimensional N(0, I) vector: sqrt(2) Gamma((d+1)/2) / Gamma(d/2)."""
    return math.sqrt(2) * math.exp(math.lgamma((dim + 1) / 2) - math.lgamma(dim / 2))
