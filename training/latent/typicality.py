"""How typical a code is under a bundle's prior: its length against the lengths of the prior's own codes, and
each coordinate in the prior's standard deviations.

In d dimensions almost every N(0, I) code has a length close to sqrt(d) (the chi distribution with d degrees of
freedom; 95% of the lengths lie within about ±1.4 of its mean): a code much shorter or longer is one the generator
never saw in training, whatever its direction. The reference lengths are drawn from the prior itself (seeded), so
the same numbers hold for a uniform or shifted prior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from training.latent.priors import LatentDistribution, sample_latents

REFERENCE_CODES = 20_000
REFERENCE_SEED = 54321
OUTLYING_Z = 3.0  # |z| beyond this: one coordinate in 370 under a normal prior


@dataclass(frozen=True)
class Typicality:
    norm: float
    prior_mean: float  # mean length of the prior's codes
    prior_low: float  # 2.5th and 97.5th percentiles of those lengths
    prior_high: float
    percentile: float  # share of the prior's codes shorter than this one, 0..1
    max_abs_z: float  # largest coordinate in the prior's standard deviations
    outlying: int  # coordinates with |z| > OUTLYING_Z
    expected_outlying: float  # how many a code drawn from the prior has on average
    dim: int

    @property
    def inside(self) -> bool:
        return self.prior_low <= self.norm <= self.prior_high

    def sentence(self, prior_label: str, conclude: bool = True) -> str:
        """What the numbers say; conclude=False leaves out the verdict for codes that are not meant to look like
        prior samples (a VAE encoder's means are shorter: its noise makes up the rest)."""
        where = ("inside" if self.inside else "shorter than" if self.norm < self.prior_low else "longer than")
        text = (f"The code's length is {self.norm:.2f}: {where} the range of 95% of {prior_label} codes "
                f"({self.prior_low:.2f} to {self.prior_high:.2f}; {self.percentile:.0%} of them are shorter).")
        text += (f" {self.outlying} of its {self.dim} coordinates {'lies' if self.outlying == 1 else 'lie'} more than "
                 f"{OUTLYING_Z:g} standard deviations "
                 f"out (a code from the prior has {self.expected_outlying:.1f} on average; the largest is "
                 f"{self.max_abs_z:.1f}).")
        if conclude and not self.inside:
            text += " The generator was trained on codes of typical length only, so this one is off its map."
        return text


def reference_norms(prior: LatentDistribution, dim: int, n: int = REFERENCE_CODES) -> np.ndarray:
    """Sorted lengths of n codes drawn from the prior."""
    return np.sort(sample_latents(prior, n, dim, seed=REFERENCE_SEED).double().norm(dim=1).numpy())


def typicality(code: torch.Tensor | np.ndarray, prior: LatentDistribution,
               norms: np.ndarray | None = None) -> Typicality:
    """Typicality of one code (d,) under the prior; `norms` = reference_norms(prior, d) when already computed."""
    z = torch.as_tensor(np.asarray(code, dtype=np.float64)).flatten()
    dim = int(z.numel())
    norms = reference_norms(prior, dim) if norms is None else norms
    scores = (z - prior.coordinate_mean) / prior.coordinate_std
    norm = float(z.norm())
    if prior.kind == "normal":
        expected = dim * float(torch.special.erfc(torch.tensor(OUTLYING_Z / 2 ** 0.5, dtype=torch.float64)))
    else:  # a uniform coordinate never lies beyond sqrt(3) standard deviations
        expected = 0.0
    return Typicality(norm=norm, prior_mean=float(norms.mean()), prior_low=float(np.percentile(norms, 2.5)),
                      prior_high=float(np.percentile(norms, 97.5)),
                      percentile=float(np.searchsorted(norms, norm) / len(norms)),
                      max_abs_z=float(scores.abs().max()), outlying=int((scores.abs() > OUTLYING_Z).sum()),
                      expected_outlying=expected, dim=dim)
