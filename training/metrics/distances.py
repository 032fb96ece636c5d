"""Distances between two sets of feature vectors: Fréchet distance and k-NN precision/recall.

Both take (N, D) arrays and know nothing about images, so they are tested on numbers with known answers.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import torch

from training.errors import LatentExplorerError

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


def knn_radii(features: torch.Tensor, k: int = DEFAULT_K) -> torch.Tensor:
    """Distance from each point to its k-th nearest other point: the radius of its ball in the manifold estimate."""
    if len(features) <= k:
        raise LatentExplorerError(f"k-NN manifold with k = {k} needs more than {k} samples, got {len(features)}")
    radii = []
    for i in range(0, len(features), 2048):
        d = torch.cdist(features[i:i + 2048], features)
        # The smallest entry of each row is the point itself (distance 0), so the k-th neighbour sits at index k.
        radii.append(d.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def _coverage(points: torch.Tensor, manifold: torch.Tensor, radii: torch.Tensor) -> float:
    """Fraction of `points` inside at least one ball (centre in `manifold`, radius from `radii`)."""
    inside = torch.zeros(len(points), dtype=torch.bool)
    for i in range(0, len(points), 2048):
        d = torch.cdist(points[i:i + 2048], manifold)
        inside[i:i + 2048] = (d <= radii.unsqueeze(0)).any(dim=1)
    return float(inside.float().mean())


def precision_recall(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor,
                     k: int = DEFAULT_K) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Each set's manifold is the union of balls around its points, each ball reaching the point's k-th nearest
    neighbour in the same set. Precision: the fraction of fake points inside the real manifold (are the samples
    realistic?). Recall: the fraction of real points inside the fake manifold (does the model cover the data?).
    """
    r = torch.from_numpy(_as_2d(real, "precision/recall (real)")).float()
    f = torch.from_numpy(_as_2d(fake, "precision/recall (fake)")).float()
    if r.shape[1] != f.shape[1]:
        raise LatentExplorerError(f"precision/recall: feature sizes differ ({r.shape[1]} vs {f.shape[1]})")
    precision = _coverage(f, r, knn_radii(r, k))
    recall = _coverage(r, f, knn_radii(f, k))
    return precision, recall


def fd_precision_recall(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor,
                        k: int = DEFAULT_K) -> dict[str, float]:
    """The three numbers every evaluation row reports, rounded for JSON."""
    precision, recall = precision_recall(real, fake, k)
    return {"fd": round(frechet_distance(real, fake), 4), "precision": round(precision, 4),
            "recall": round(recall, 4)}
