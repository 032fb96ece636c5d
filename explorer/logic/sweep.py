"""Mean sweep: the same base noise shifted to N(m, std) for m from -10 to +10, diagnosed at every mean."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from explorer.logic.diagnostics import (
    VARIED_RATIO,
    Diagnostics,
    NormReference,
    diagnose,
    nonfinite_images_sentence,
    prior_norm_reference,
    prior_numbers,
    rounded,
)
from explorer.logic.diversity import feature_judge
from training.bundle import Bundle
from training.errors import LatentExplorerError
from training.latent import sampling
from training.latent.priors import LatentDistribution

MAX_ROWS = 41  # -10..10 in steps of 0.5; each row costs a batch through the generator


def sweep_means(low: float = -10.0, high: float = 10.0, step: float = 1.0) -> list[float]:
    """low, low + step, ..., high (high included when the step lands on it), always including the prior's 0."""
    if not step > 0:
        raise LatentExplorerError(f"the sweep step must be positive, got {step:g}")
    if low > high:
        raise LatentExplorerError(f"the sweep needs low <= high, got {low:g} > {high:g}")
    count = int(math.floor((high - low) / step + 1e-9)) + 1
    if count > MAX_ROWS:
        raise LatentExplorerError(f"{count} rows is too many for one page; use a step of at least "
                                  f"{(high - low) / (MAX_ROWS - 1):g}")
    means = [round(low + i * step, 6) for i in range(count)]
    if low <= 0 <= high and 0.0 not in means:
        means = sorted(means + [0.0])
    return means


@dataclass
class SweepRow:
    mean: float
    dist: LatentDistribution
    images: torch.Tensor  # the row's generated samples (the first `keep` of them when asked)
    diagnostics: Diagnostics


@dataclass
class Sweep:
    rows: list[SweepRow]
    std: float
    num_samples: int
    seed: int
    prior: LatentDistribution

    def column(self, name: str) -> np.ndarray:
        """One diagnostic across the sweep, e.g. column("cosine"); None values become NaN."""
        values = [getattr(r.diagnostics, name) for r in self.rows]
        return np.array([np.nan if v is None else v for v in values], dtype=float)

    @property
    def means(self) -> np.ndarray:
        return np.array([r.mean for r in self.rows], dtype=float)

    @property
    def nonfinite_rows(self) -> list[SweepRow]:
        """The rows whose codes or images hold NaN or infinite values (all of them when the prior batch does)."""
        return [r for r in self.rows if r.diagnostics.verdict == "non-finite"]


def mean_sweep(bundle: Bundle, means: list[float], std: float = 1.0, n: int = 32, seed: int = 0,
               norm_reference: NormReference | None = None, keep: int | None = None) -> Sweep:
    """Every row samples with the same seed, so rows differ only by the shift of the mean.
    The diagnostics use all n samples; each row keeps only its first `keep` images (memory, when cached)."""
    if n < 2:
        raise LatentExplorerError(f"the sweep needs at least 2 samples per mean to measure diversity (got {n})")
    prior = bundle.prior
    base = sampling.sample(bundle, prior, n, seed)
    reference = norm_reference or prior_norm_reference(prior, bundle.latent_dim)
    judge = feature_judge(bundle)
    base_numbers = prior_numbers(bundle.generator, base.codes, base.images, judge)  # every row compares with them
    rows = []
    for mean in means:
        dist = LatentDistribution.normal(mean, std)
        row = sampling.sample(bundle, dist, n, seed)
        rows.append(SweepRow(mean, dist, row.images[:keep].clone() if keep else row.images,
                             diagnose(bundle.generator, dist, prior, row.codes, row.images, base.codes, base.images,
                                      reference, base_numbers, judge)))
    return Sweep(rows, std, n, seed, prior)


@dataclass(frozen=True)
class SweepSummary:
    varied_low: float | None  # the range around the prior mean where samples stay varied (None: not even there)
    varied_high: float | None
    collapsed_below: float | None  # the first mean, walking down from 0, whose verdict is "collapsed"
    collapsed_above: float | None
    worst: SweepRow  # the least varied row
    at_zero: SweepRow | None


def _start_index(sweep: Sweep) -> int:
    means = sweep.means
    return int(np.argmin(np.abs(means - sweep.prior.coordinate_mean)))


def summarise(sweep: Sweep) -> SweepSummary:
    """Walk outwards from the prior's mean: how far do samples stay varied (output diversity at least
    VARIED_RATIO of the prior's), and where does the diagnostics' verdict first say "collapsed"?"""
    rows = sweep.rows
    start = _start_index(sweep)
    verdicts = [r.diagnostics.verdict for r in rows]
    varied = [bool(r.diagnostics.diversity_ratio >= VARIED_RATIO) for r in rows]

    def walk(direction: int) -> tuple[float | None, float | None]:
        varied_edge = None
        i = start
        while 0 <= i < len(rows) and varied[i]:
            varied_edge = rows[i].mean
            i += direction
        collapsed = None
        while 0 <= i < len(rows):
            if verdicts[i] == "collapsed":
                collapsed = rows[i].mean
                break
            i += direction
        return varied_edge, collapsed

    low, below = walk(-1)
    high, above = walk(+1)
    ratios = sweep.column("diversity_ratio")
    worst = rows[int(np.nanargmin(ratios))] if np.isfinite(ratios).any() else rows[0]
    zero = next((r for r in rows if r.mean == 0.0), None)
    return SweepSummary(low, high, below, above, worst, zero)


@dataclass(frozen=True)
class Headline:
    """The three numbers over the sweep's verdict, as the page shows them ("n/a" when no row can be read)."""

    varied: str  # the means with varied samples
    collapse: str  # where collapse starts
    worst: str  # the least varied row
    worst_delta: str | None
    tone: str  # "error" (NaN rows), "warning" (collapse, or no varied row) or "success"


def headline(sweep: Sweep) -> Headline:
    summary = summarise(sweep)
    collapse = [f"{m:g}" for m in (summary.collapsed_below, summary.collapsed_above) if m is not None]
    tone = "error" if sweep.nonfinite_rows else "warning" if collapse or summary.varied_low is None else "success"
    if len(sweep.nonfinite_rows) == len(sweep.rows):  # nothing to read: the verdict says why
        return Headline("n/a", "n/a", "n/a", None, tone)
    if summary.varied_low is None:
        varied = "none"
    elif summary.varied_low == summary.varied_high:
        varied = f"only {summary.varied_low:g}"
    else:
        varied = f"{summary.varied_low:g} to {summary.varied_high:g}"
    return Headline(varied, " and ".join(collapse) if collapse else "no collapse", f"m = {summary.worst.mean:g}",
                    f"{summary.worst.diagnostics.diversity_ratio:.0%} of the prior's diversity", tone)


def sweep_table(sweep: Sweep) -> list[dict]:
    """One row of numbers per mean; empty cells where a number cannot be computed (the verdict says why)."""
    return [{
        "mean": r.mean,
        "cosine of codes": rounded(r.diagnostics.cosine, 3),
        "code norm": rounded(r.diagnostics.norm_mean, 1),
        "norm z-score": rounded(r.diagnostics.norm_zscore, 1),
        "diversity vs prior": rounded(r.diagnostics.diversity_ratio, 3),
        "saturated pixels": rounded(r.diagnostics.saturated, 3),
        "first-layer shift": rounded(r.diagnostics.first_layer_shift, 2),
        "verdict": r.diagnostics.verdict,
    } for r in sweep.rows]


def explain_sweep(sweep: Sweep) -> str:
    """The plain sentence under the plots, built only from the sweep's numbers."""
    s = summarise(sweep)
    prior = sweep.prior.label
    std = f"{sweep.std:g}"
    parts = []
    broken = sweep.nonfinite_rows
    if broken:
        bad = sum(r.diagnostics.nonfinite_images for r in broken)
        means = ", ".join(f"{r.mean:g}" for r in broken)
        if bad:
            where = "every mean" if len(broken) == len(sweep.rows) else \
                f"the mean{'s' if len(broken) > 1 else ''} {means}"
            parts.append(nonfinite_images_sentence(bad, sweep.num_samples * len(broken), f"samples at {where}"))
        prior_bad = sweep.rows[0].diagnostics.prior_nonfinite_images  # every row shares the prior batch
        if prior_bad:
            parts.append(f"{'It does so' if bad else 'The generator produced NaN or infinite pixel values'} for "
                         f"{prior_bad} of {sweep.num_samples} samples from its training prior {prior}"
                         f"{' too' if bad else ''}, so no row can be compared with the prior: the fault is in the "
                         "model's weights, not in the means, and this sweep shows nothing about collapse.")
        if prior_bad or len(broken) == len(sweep.rows):
            return " ".join(parts)
        parts.append("What follows speaks of the other rows.")
    share = f"at least {VARIED_RATIO:.0%} as varied as {prior} samples"
    if s.varied_low is None:
        parts.append(f"With std {std}, no mean in this sweep gives images {share}.")
    elif s.varied_low == s.varied_high:
        parts.append(f"With std {std}, only mean {s.varied_low:g} gives images {share}; the nearest shifts in this "
                     "sweep already make them look alike.")
    else:
        parts.append(f"With std {std}, the images stay {share} for means from {s.varied_low:g} "
                     f"to {s.varied_high:g}.")
    edges = []
    for direction, mean in (("down", s.collapsed_below), ("up", s.collapsed_above)):
        if mean is None:
            continue
        d = next(r.diagnostics for r in sweep.rows if r.mean == mean)
        edges.append(f"going {direction}, they collapse at mean {mean:g}: the codes have cosine {d.cosine:.2f} and "
                     f"norm {d.norm_mean:.0f} ({d.norm_zscore:+.0f} std devs from the trained norms), and the images "
                     f"are only {d.diversity_ratio:.0%} as varied, with {d.saturated:.0%} saturated pixels")
    if edges:
        text = "; ".join(edges) + "."
        parts.append(text[0].upper() + text[1:])
    else:
        w = s.worst.diagnostics
        parts.append(f"No row collapses completely; the least varied is mean {s.worst.mean:g}, at "
                     f"{w.diversity_ratio:.0%} of the {prior} diversity (cosine {w.cosine:.2f}).")
    parts.append("The cause is the shared offset: every code gets the same vector m·(1, …, 1) added, so its length "
                 f"grows like √(d(m² + {std}²)) and all codes turn towards one direction (cosine ≈ m²/(m² + {std}²)).")
    return " ".join(parts)
