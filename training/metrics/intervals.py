"""Figures at one fixed set size, with a confidence interval from independent sets (repeated random splits).

k-NN scores (manifold.py) depend on how many points build the balls: the same model scored precision 0.99 with
300 samples and 0.0015 with 2,000. So a figure here is always "m real images against m generated ones" for one
set size m, whatever the number of samples: n generated samples and N real images are cut at random into
c = min(n // m, N // m) disjoint pairs of sets, each pair is scored, and the figure is the mean. More samples
only add pairs, which narrows the interval without moving the figure.

Why not a bootstrap: resampling with replacement puts copies of a point in a set, a copy is its twin's nearest
neighbour at distance 0, and every ball shrinks, so a bootstrap of k-NN scores is biased downwards. The c pairs
of one split are independent replicates instead, and their spread gives the standard error of their mean; the
split is repeated with fresh random cuts (seeded) and the variances averaged, which steadies the estimate when c
is small (2 for 2m samples). For shares (precision, recall, coverage) the standard error is never taken below
the binomial one of the pooled share (Agresti-Coull), so a share of 0 or 1 still gets an interval of honest width.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from training.errors import LatentExplorerError
from training.metrics.manifold import SCORES, as_features, manifold_scores

LEVEL = 0.95  # the intervals' confidence level; Z is its two-sided normal quantile
Z = 1.959963984540054
DEFAULT_REPEATS = 20
SHARES = ("precision", "recall", "coverage")  # bounded in [0, 1]; density is not


@dataclass(frozen=True)
class Estimate:
    """A figure and its 95% confidence interval."""

    value: float
    low: float
    high: float

    def to_json(self, digits: int = 4) -> dict:
        return {"value": round(self.value, digits), "interval": [round(self.low, digits), round(self.high, digits)]}

    @classmethod
    def from_json(cls, data: object) -> Estimate | None:
        """The estimate stored by to_json, or None when `data` is not one (an older metrics.json)."""
        if not isinstance(data, dict):
            return None
        value, interval = data.get("value"), data.get("interval")
        numbers = [value, *(interval or [])] if isinstance(interval, (list, tuple)) else []
        if len(numbers) != 3 or not all(isinstance(x, (int, float)) and np.isfinite(x) for x in numbers):
            return None
        return cls(float(value), float(min(interval)), float(max(interval)))


def compare(a: Estimate, b: Estimate) -> int:
    """1 when a is above b beyond doubt (the intervals do not overlap), -1 when below, 0 when they cannot be
    told apart."""
    if a.low > b.high:
        return 1
    if a.high < b.low:
        return -1
    return 0


@dataclass(frozen=True)
class SetScores:
    """Scores of generated against real features at one set size, with how they were obtained."""

    scores: dict[str, Estimate]
    generated: int  # generated samples given
    real: int  # real images given
    set_size: int  # m: every score compares m real with m generated points
    sets: int  # c: independent pairs of sets per split
    repeats: int  # random splits averaged

    def to_json(self) -> dict:
        return {**{name: e.to_json() for name, e in self.scores.items()}, "generated": self.generated,
                "real": self.real, "set_size": self.set_size, "sets": self.sets, "repeats": self.repeats}


def usable_set_size(wanted: int, n_generated: int, n_real: int) -> int:
    """The largest set size up to `wanted` that still gives two independent pairs of sets."""
    return min(wanted, n_generated // 2, n_real // 2)


def _standard_error(per_split: np.ndarray, pooled: float, pooled_count: int, share: bool) -> float:
    """per_split: (repeats, c) scores. Mean over splits of the variance of a mean of c independent pairs."""
    sets = per_split.shape[1]
    se = float(np.sqrt(np.mean(per_split.var(axis=1, ddof=1)) / sets))
    if share:
        p = (pooled * pooled_count + 2) / (pooled_count + 4)  # Agresti-Coull: never 0 or 1
        se = max(se, float(np.sqrt(p * (1 - p) / (pooled_count + 4))))
    return se


def scores_at_set_size(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, k: int, set_size: int,
                       repeats: int = DEFAULT_REPEATS, seed: int = 0,
                       score: Callable[[torch.Tensor, torch.Tensor, int], dict[str, float]] = manifold_scores,
                       names: tuple[str, ...] = SCORES) -> SetScores:
    """Each score of `fake` against `real` at set size `set_size`, with its 95% interval (see the module)."""
    r, f = as_features(real, "real features"), as_features(fake, "generated features")
    m = int(set_size)
    sets = min(len(f) // m, len(r) // m) if m > 0 else 0
    if m <= k or sets < 2:
        raise LatentExplorerError(
            f"scores at set size {m} need more than k = {k} points per set and two sets of each kind: at least "
            f"{2 * max(m, k + 1)} generated and real points, got {len(f)} and {len(r)}"
        )
    rng = np.random.default_rng(seed)
    table = np.empty((repeats, sets, len(names)))
    for s in range(repeats):
        pf, pr = rng.permutation(len(f)), rng.permutation(len(r))
        for i in range(sets):
            row = score(r[pr[i * m:(i + 1) * m]], f[pf[i * m:(i + 1) * m]], k)
            table[s, i] = [row[name] for name in names]
    estimates = {}
    for j, name in enumerate(names):
        value = float(table[:, :, j].mean())
        se = _standard_error(table[:, :, j], value, sets * m, name in SHARES)
        low, high = value - Z * se, value + Z * se
        low, high = max(low, 0.0), (min(high, 1.0) if name in SHARES else high)
        estimates[name] = Estimate(value, low, high)
    return SetScores(estimates, len(f), len(r), m, sets, repeats)
