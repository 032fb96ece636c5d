"""Distances between two sets of feature vectors: Fréchet distance (and k-NN precision/recall, from manifold.py).

Both take (N, D) arrays and know nothing about images, so they are tested on numbers with known answers.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import torch

from training.errors import LatentExplorerError
from training.metrics.manifold import manifold_scores

DEFAULT_K = 3  # Kynkäänniemi et al. 2019 use k = 3 nearest neighbours


def _as_2d(features: np.ndarray | torch.Tensor, what: str) -> np.ndarray:
    array = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
    if array.ndim != 2 or len(array) < 2:
        raise LatentExplorerError(f"{what}: need an (N, D) array with N >= 2, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise LatentExplorerError(f"{what}: features contain NaN or infinite values")
    return array.astype(np.float64, copy=False)


def gaussian_stats(features: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of the rows, as FID computes them."""
    x = _as_2d(features, "gaussian_stats")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def frechet_distance_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)): the Fréchet (2-Wasserstein) distance of two Gaussians."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise LatentExplorerError(
            f"Fréchet distance: shapes do not match (means {mu1.shape}, {mu2.shape}; covariances "
            f"{sigma1.shape}, {sigma2.shape})"
        )
    diff = mu1 - mu2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if caught or not np.isfinite(covmean).all():
        # sqrtm is unreliable for a singular product (fewer samples than dimensions, a collapsed set). The trace
        # is all we need, and S1 S2 is similar to the PSD matrix S1^1/2 S2 S1^1/2, so its eigenvalues are real
        # and non-negative: tr((S1 S2)^1/2) = sum of their square roots.
        eigenvalues = np.linalg.eigvals(sigma1 @ sigma2).real
        trace_covmean = float(np.sqrt(np.clip(eigenvalues, 0, None)).sum())
    else:
        if np.iscomplexobj(covmean):
            # Round-off gives tiny imaginary parts; large ones mean the maths went wrong.
            if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3 * max(1.0, np.abs(covmean).max())):
                raise LatentExplorerError(
                    f"Fréchet distance: matrix square root has imaginary part {np.abs(covmean.imag).max():.3g}"
                )
            covmean = covmean.real
        trace_covmean = float(np.trace(covmean))
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_covmean)
    return max(value, 0.0)  # round-off can give -1e-12 for identical sets


def frechet_distance(features_a: np.ndarray | torch.Tensor, features_b: np.ndarray | torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (FID's formula, in whatever feature space)."""
    return frechet_distance_from_stats(*gaussian_stats(features_a), *gaussian_stats(features_b))


def precision_recall(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor,
                     k: int = DEFAULT_K) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of two sets as they are (see manifold.py; the
    evaluation compares sets of one fixed size, training.metrics.intervals)."""
    scores = manifold_scores(real, fake, k)
    return scores["precision"], scores["recall"]
