"""Collapse diagnostics: numbers (and one plain sentence) that say why a latent distribution fails a generator.

Pure functions on tensors; no Streamlit here, so every number is tested without a browser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from training.latent import LatentDistribution, sample_latents

SATURATION_THRESHOLD = 0.98  # |x| above this after tanh: the pixel is pinned to black or white


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


def saturated_fraction(images: torch.Tensor, threshold: float = SATURATION_THRESHOLD) -> float:
    return float((images.abs() > threshold).double().mean())


def first_layer_shift(generator: nn.Module, z: torch.Tensor) -> float | None:
    """How far the first layer's pre-activations sit from training, in units of the first BatchNorm's
    running std: mean over channels of |batch mean - running mean| / running std. Near 0 for codes like
    the training ones; tens for N(-10,1). None when the generator has no first BatchNorm to compare with."""
    norm = getattr(generator, "first_batchnorm", None)
    if norm is None or not hasattr(generator, "first_layer_preactivation"):
        return None
    with torch.no_grad():
        pre = generator.first_layer_preactivation(z).double()
    dims = [d for d in range(pre.dim()) if d != 1]
    batch_mean = pre.mean(dim=dims)
    running_std = (norm.running_var.double() + norm.eps).sqrt()
    return float(((batch_mean - norm.running_mean.double()).abs() / running_std).mean())


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
    diversity: float  # mean pairwise distance between generated images
    diversity_ratio: float  # relative to the prior's samples from the same model and seed
    saturated: float
    prior_saturated: float
    first_layer_shift: float | None
    prior_first_layer_shift: float | None

    @property
    def verdict(self) -> str:
        if self.diversity_ratio < 0.35 or (self.cosine > 0.95 and abs(self.norm_zscore) > 10):
            return "collapsed"
        if self.diversity_ratio < 0.8 or self.cosine > 0.3 or abs(self.norm_zscore) > 4:
            return "reduced diversity"
        return "healthy"


def generate(generator: nn.Module, z: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Run a generator in eval mode without gradients, in chunks (bounded memory for big batches)."""
    generator.eval()
    with torch.no_grad():
        return torch.cat([generator(chunk) for chunk in z.split(batch)])


def diagnose(generator: nn.Module, dist: LatentDistribution, prior: LatentDistribution, z: torch.Tensor,
             images: torch.Tensor, prior_z: torch.Tensor, prior_images: torch.Tensor,
             norm_reference: NormReference) -> Diagnostics:
    """All numbers for one batch, compared with a batch from the training prior of the same size and seed."""
    prior_diversity = mean_pairwise_distance(prior_images)
    prior_spread = mean_pairwise_distance(prior_z)
    norm_mean = float(z.double().norm(dim=1).mean())
    return Diagnostics(
        distribution=dist.label,
        prior=prior.label,
        num_samples=int(z.shape[0]),
        latent_dim=int(z.shape[1]),
        cosine=pairwise_cosine(z),
        prior_cosine=pairwise_cosine(prior_z),
        norm_mean=norm_mean,
        prior_norm=norm_reference,
        norm_zscore=norm_reference.zscore(norm_mean),
        code_spread_ratio=mean_pairwise_distance(z) / prior_spread if prior_spread > 0 else float("nan"),
        diversity=mean_pairwise_distance(images),
        diversity_ratio=mean_pairwise_distance(images) / prior_diversity if prior_diversity > 0 else float("nan"),
        saturated=saturated_fraction(images),
        prior_saturated=saturated_fraction(prior_images),
        first_layer_shift=first_layer_shift(generator, z),
        prior_first_layer_shift=first_layer_shift(generator, prior_z),
    )


def explain(d: Diagnostics) -> str:
    """One short paragraph, built only from the numbers, that a class can read aloud."""
    parts = []
    if d.cosine > 0.9:
        parts.append(f"The {d.num_samples} codes from {d.distribution} are nearly parallel "
                     f"(mean cosine {d.cosine:.2f}; {d.prior} codes give {d.prior_cosine:.2f}), so the generator "
                     "receives almost the same input every time.")
    elif d.cosine > 0.3:
        parts.append(f"The codes from {d.distribution} share a large common direction (mean cosine {d.cosine:.2f}; "
                     f"{d.prior} codes give {d.prior_cosine:.2f}) and spread {1 / d.code_spread_ratio:.1f}x less "
                     f"than {d.prior} codes, so they differ from each other much less than training codes did.")
    else:
        parts.append(f"The codes point in unrelated directions (mean cosine {d.cosine:.2f}), like {d.prior} codes.")
    z = d.norm_zscore
    where = (f"{abs(z):.0f} standard deviations {'above' if z > 0 else 'below'} the norms the generator was "
             f"trained on ({d.prior_norm.mean:.1f} ± {d.prior_norm.std:.1f})")
    if abs(z) > 4:
        parts.append(f"Their length is {d.norm_mean:.1f}, {where}: far outside the region it learned.")
    else:
        parts.append(f"Their length, {d.norm_mean:.1f}, is within the prior's typical range "
                     f"({d.prior_norm.mean:.1f} ± {d.prior_norm.std:.1f}).")
    if d.first_layer_shift is not None and d.prior_first_layer_shift is not None and \
            d.first_layer_shift > max(3.0, 3 * d.prior_first_layer_shift):
        parts.append(f"The first layer's pre-activations sit {d.first_layer_shift:.1f} running standard deviations "
                     f"from their training values (vs {d.prior_first_layer_shift:.1f} for {d.prior} codes).")
    outcome = (f"{d.saturated:.0%} of output pixels are saturated (vs {d.prior_saturated:.0%}) and the images "
               f"are {d.diversity_ratio:.0%} as varied as {d.prior} samples")
    if d.verdict == "collapsed":
        parts.append(f"Result: {outcome}; the samples have collapsed into nearly one image.")
    elif d.verdict == "reduced diversity":
        parts.append(f"Result: {outcome}; the samples look alike.")
    else:
        parts.append(f"Result: {outcome}; the samples are as varied as the model can make them.")
    return " ".join(parts)


def chi_mean(dim: int) -> float:
    """Exact mean norm of a dim-dimensional N(0, I) vector: sqrt(2) Gamma((d+1)/2) / Gamma(d/2)."""
    return math.sqrt(2) * math.exp(math.lgamma((dim + 1) / 2) - math.lgamma(dim / 2))
