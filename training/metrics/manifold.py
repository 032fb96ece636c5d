"""k-nearest-neighbour scores of generated against real feature vectors: precision, recall, density, coverage.

All four come from the same three distance matrices, so they are computed together:

* precision (Kynkäänniemi et al. 2019): share of generated points inside the real manifold, the union of balls
  around real points reaching each one's k-th nearest real neighbour. Are the samples realistic?
* recall: share of real points inside the generated manifold (balls of the generated points). Is the data covered?
* density (Naeem et al. 2020): how many real balls hold a generated point, divided by k, averaged. About 1 when
  the two sets come from one distribution; one real outlier with a huge ball adds only 1/k, where it can make a
  whole batch "precise".
* coverage (Naeem et al. 2020): share of real points whose own ball holds at least one generated point. Balls
  are built on real points only, so a generated outlier cannot inflate it, and a collapsed batch covers few.

Every score depends on the size of the two sets (balls shrink as sets grow), so callers compare sets of one
fixed size (training.metrics.intervals).
"""

from __future__ import annotations

import numpy as np
import torch

from training.errors import LatentExplorerError

SCORES = ("precision", "recall", "density", "coverage")


def as_features(features: np.ndarray | torch.Tensor, what: str) -> torch.Tensor:
    """An (N, D) float32 CPU tensor of finite values, or a LatentExplorerError naming `what`."""
    if isinstance(features, torch.Tensor):
        x = features.detach().cpu().float()
    else:
        x = torch.from_numpy(np.asarray(features, dtype=np.float32))
    if x.ndim != 2 or len(x) < 2:
        raise LatentExplorerError(f"{what}: need an (N, D) array with N >= 2, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise LatentExplorerError(f"{what}: features contain NaN or infinite values")
    return x


def kth_neighbour_distance(within: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row of a square distance matrix to its k-th nearest other point (itself excluded)."""
    if len(within) <= k:
        raise LatentExplorerError(f"k-NN manifold with k = {k} needs more than {k} samples, got {len(within)}")
    # The smallest entry of each row is the point itself (distance 0), so the k-th neighbour sits at index k.
    return within.kthvalue(k + 1, dim=1).values


def manifold_scores(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, k: int) -> dict[str, float]:
    """precision, recall, density and coverage of `fake` against `real` (both (N, D), same D)."""
    r, f = as_features(real, "real features"), as_features(fake, "generated features")
    if r.shape[1] != f.shape[1]:
        raise LatentExplorerError(f"feature sizes differ ({r.shape[1]} vs {f.shape[1]})")
    real_radii = kth_neighbour_distance(torch.cdist(r, r), k)
    fake_radii = kth_neighbour_distance(torch.cdist(f, f), k)
    cross = torch.cdist(r, f)  # (real, fake)
    in_real_ball = cross <= real_radii[:, None]
    return {
        "precision": float(in_real_ball.any(dim=0).float().mean()),
        "recall": float((cross <= fake_radii[None, :]).any(dim=1).float().mean()),
        "density": float(in_real_ball.sum(dim=0).float().mean()) / k,
        "coverage": float(in_real_ball.any(dim=1).float().mean()),
    }
