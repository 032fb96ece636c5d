"""Latent distributions: what z is drawn from, for training noise and for the explorer's sliders."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from training.errors import LatentExplorerError

KINDS = ("normal", "uniform")
# The largest |mean|, std, |low| or |high| accepted. Collapse shows by |mean| = 10; codes a million times longer
# than the training ones teach nothing more, and near 3e38 they overflow the 32-bit floats a generator runs in,
# which turns every picture into NaN.
MAX_MAGNITUDE = 1e6


@dataclass(frozen=True)
class LatentDistribution:
    """Normal(mean, std) when kind == "normal", Uniform(low, high) when kind == "uniform"."""

    kind: str = "normal"
    mean: float = 0.0
    std: float = 1.0
    low: float = 0.0
    high: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise LatentExplorerError(f"unknown latent distribution {self.kind!r}; choose one of {', '.join(KINDS)}")
        names = ("mean", "std") if self.kind == "normal" else ("low", "high")
        numbers = (self.mean, self.std) if self.kind == "normal" else (self.low, self.high)
        got = ", ".join(f"{name} = {_shown(v)}" for name, v in zip(names, numbers))
        try:
            finite = all(math.isfinite(float(v)) for v in numbers)
        except (TypeError, ValueError, OverflowError):  # not a number, or an integer too large for a float
            finite = False
        if not finite:
            raise LatentExplorerError(f"a {self.kind} distribution needs finite numbers (got {got})")
        if any(abs(float(v)) > MAX_MAGNITUDE for v in numbers):
            raise LatentExplorerError(
                f"a {self.kind} distribution's numbers must lie within ±{MAX_MAGNITUDE:g} (got {got}): codes that far "
                "out teach nothing new, and past about 1e38 they overflow the generator's 32-bit arithmetic into NaN"
            )
        if self.kind == "normal" and self.std <= 0:
            raise LatentExplorerError(f"a normal distribution needs std > 0 (got std = {self.std:g})")
        if self.kind == "uniform" and self.low >= self.high:
            raise LatentExplorerError(
                f"a uniform distribution needs low < high (got low = {self.low:g}, high = {self.high:g})"
            )

    @staticmethod
    def normal(mean: float = 0.0, std: float = 1.0) -> LatentDistribution:
        return LatentDistribution("normal", mean=float(mean), std=float(std))

    @staticmethod
    def uniform(low: float = 0.0, high: float = 1.0) -> LatentDistribution:
        return LatentDistribution("uniform", low=float(low), high=float(high))

    @property
    def label(self) -> str:
        if self.kind == "normal":
            return f"N({self.mean:g}, {self.std:g})"
        return f"U({self.low:g}, {self.high:g})"

    @property
    def coordinate_mean(self) -> float:
        return self.mean if self.kind == "normal" else (self.low + self.high) / 2

    @property
    def coordinate_std(self) -> float:
        return self.std if self.kind == "normal" else (self.high - self.low) / math.sqrt(12)

    def to_json(self) -> dict:
        if self.kind == "normal":
            return {"kind": "normal", "mean": self.mean, "std": self.std}
        return {"kind": "uniform", "low": self.low, "high": self.high}

    @staticmethod
    def from_json(data: dict) -> LatentDistribution:
        return LatentDistribution(**{k: v for k, v in data.items() if k in asdict(LatentDistribution())})

    @staticmethod
    def parse(text: str) -> LatentDistribution:
        """Parse 'N(0,1)', 'normal:0,1', 'U(-1,1)' or 'uniform:-1,1' (the CLI's --noise flag)."""
        cleaned = text.strip().replace(" ", "")
        head, _, rest = cleaned.replace("(", ":").rstrip(")").partition(":")
        try:
            a, b = (float(v) for v in rest.split(","))
        except ValueError:
            raise LatentExplorerError(
                f"cannot read latent distribution {text!r}; write e.g. N(0,1) or U(-1,1)"
            ) from None
        if head.lower() in ("n", "normal"):
            return LatentDistribution.normal(a, b)
        if head.lower() in ("u", "uniform"):
            return LatentDistribution.uniform(a, b)
        raise LatentExplorerError(f"cannot read latent distribution {text!r}; write e.g. N(0,1) or U(-1,1)")


def _shown(value) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError, OverflowError):
        text = repr(value)
        return text if len(text) <= 24 else text[:20] + "…"


STANDARD_NORMAL = LatentDistribution.normal(0.0, 1.0)

# The presets the seed reports compare; order is the order the app shows them in.
PRESETS: dict[str, LatentDistribution] = {
    "N(0,1)": STANDARD_NORMAL,
    "N(-10,1)": LatentDistribution.normal(-10.0, 1.0),
    "U(0,1)": LatentDistribution.uniform(0.0, 1.0),
    "U(-1,1)": LatentDistribution.uniform(-1.0, 1.0),
}


ROW_BLOCK = 16  # sample_latents draws whole blocks of this many rows (see there)


def sample_latents(dist: LatentDistribution, n: int, dim: int, seed: int | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw n codes of dimension dim. The same seed gives the same base noise for every distribution,
    so N(0,1) and N(-10,1) batches differ only by the shift: comparisons isolate the distribution. With a seed,
    the first k codes are the same for every n >= k."""
    if n < 1 or dim < 1:
        raise LatentExplorerError(f"need at least one sample of at least one dimension (got n={n}, dim={dim})")
    rows = n
    if generator is None:
        generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
        # Whole blocks of ROW_BLOCK rows, so the first n codes of a seed are the same whatever n: torch's CPU
        # randn transforms its uniforms 16 values at a time only when the count is a multiple of 16, and
        # otherwise redraws the tail, so randn(17, 100)[:16] != randn(16, 100). A page can then compute a batch
        # in blocks and reuse them when the student changes the number of samples.
        rows = -(-n // ROW_BLOCK) * ROW_BLOCK
    if dist.kind == "normal":
        z = torch.randn(rows, dim, generator=generator) * dist.std + dist.mean
    else:
        z = torch.rand(rows, dim, generator=generator) * (dist.high - dist.low) + dist.low
    return z[:n].clone() if rows != n else z
