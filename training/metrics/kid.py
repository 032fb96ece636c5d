"""Kernel distance (KID, Bińkowski et al. 2018) in our own feature space: an unbiased estimate of the squared
maximum mean discrepancy with the cubic polynomial kernel k(x, y) = (x . y / d + 1)^3.

Unlike the Fréchet distance, whose estimate shrinks as the sample grows, the estimator's expected value is the
same at every sample size (zero for two samples of one distribution), which is why it sits beside FD for small
samples. As in the paper (and torch-fidelity), it is averaged over random subsets; the spread over those subsets
is reported with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from training.errors import LatentExplorerError
from training.metrics.manifold import as_features

DEFAULT_SUBSETS = 50
DEFAULT_SUBSET_SIZE = 1000


@dataclass(frozen=True)
class KID:
    value: float  # mean over subsets
    std: float  # spread (standard deviation) of the subset estimates
    subsets: int
    subset_size: int


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x @ y.T / x.shape[1] + 1) ** 3


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 estimate: kernel means within each set leave out the diagonal (a point with itself)."""
    m, n = len(x), len(y)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within_x = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    within_y = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return float(within_x + within_y - 2 * kxy.mean())


def kernel_distance(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor,
                    subsets: int = DEFAULT_SUBSETS, subset_size: int = DEFAULT_SUBSET_SIZE, seed: int = 0) -> KID:
    """KID of `fake` against `real`: the mean of the unbiased MMD^2 over `subsets` random pairs of subsets (each
    drawn without replacement; the size is capped by the smaller set)."""
    r = as_features(real, "real features").double()
    f = as_features(fake, "generated features").double()
    if r.shape[1] != f.shape[1]:
        raise LatentExplorerError(f"feature sizes differ ({r.shape[1]} vs {f.shape[1]})")
    if subsets < 1:
        raise LatentExplorerError(f"KID needs at least one subset, got {subsets}")
    size = min(subset_size, len(r), len(f))
    rng = np.random.default_rng(seed)
    values = [mmd2_unbiased(r[rng.choice(len(r), size, replace=False)], f[rng.choice(len(f), size, replace=False)])
              for _ in range(subsets)]
    return KID(float(np.mean(values)), float(np.std(values)), subsets, size)
