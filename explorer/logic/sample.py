"""The sampling page's work: a batch from a bundle under any latent distribution, diagnosed against the training
prior (the compare page diagnoses its two batches the same way)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.logic.diagnostics import (
    Diagnostics,
    NormReference,
    PriorNumbers,
    diagnose,
    prior_norm_reference,
    prior_numbers,
)
from explorer.logic.diversity import feature_judge
from training.bundle import Bundle
from training.latent import sampling
from training.latent.priors import ROW_BLOCK, LatentDistribution, sample_latents
from training.latent.sampling import Samples

BLOCK_ROWS = ROW_BLOCK  # the sampling page computes (and every session shares) its batches in blocks of rows
# Above this expected wait the sampling page computes one block first (a preview) rather than the whole batch:
# with 30 students dragging sliders, everyone sees 16 samples and their numbers in seconds instead of all 64 in
# ten.
BUSY_PREVIEW_S = 1.0
FIRST_BLOCK_NOTE = "Showing the first"  # how the page's note on such a first block starts (the load test counts it)


@dataclass(frozen=True)
class SampledBatch:
    z: torch.Tensor
    images: torch.Tensor
    prior_z: torch.Tensor
    prior_images: torch.Tensor
    norm_reference: NormReference
    diagnostics: Diagnostics

    @property
    def code_norms(self) -> np.ndarray:
        """||z|| of every code of the batch (float64), for the norm histogram."""
        return self.z.double().norm(dim=1).numpy()


def sample_and_diagnose(bundle: Bundle, dist: LatentDistribution, n: int, seed: int,
                        prior_batch: Samples | None = None, norm_reference: NormReference | None = None,
                        prior_side: PriorNumbers | None = None, drawn: Samples | None = None) -> SampledBatch:
    """Both batches use the same seed, so they share their base noise and differ only by the distribution.
    Pass the batch itself (drawn), a precomputed prior batch / norm reference / prior batch's numbers (cached by
    the UI) to skip recomputing them."""
    if drawn is None:
        drawn = sampling.sample(bundle, dist, n, seed)
    if prior_batch is None:
        prior_batch = prior_samples(bundle, n, seed)
    norm_reference = norm_reference or prior_norm_reference(bundle.prior, bundle.latent_dim)
    diagnostics = diagnose(bundle.generator, dist, bundle.prior, drawn.codes, drawn.images, prior_batch.codes,
                           prior_batch.images, norm_reference, prior_side, feature_judge(bundle))
    return SampledBatch(drawn.codes, drawn.images, prior_batch.codes, prior_batch.images, norm_reference, diagnostics)


def shown_count(n: int, expected_wait_s: float, all_asked: bool, threshold_s: float = BUSY_PREVIEW_S) -> int:
    """How many of the n samples asked for to compute now: all of them, or a first block while the server would
    make the student wait more than threshold_s, unless they asked to see all."""
    if all_asked or expected_wait_s <= threshold_s:
        return n
    return min(n, BLOCK_ROWS)


def blocks_for(n: int) -> int:
    """How many blocks of BLOCK_ROWS rows hold n samples."""
    return -(-n // BLOCK_ROWS)


def sample_block(bundle: Bundle, dist: LatentDistribution, seed: int, index: int) -> Samples:
    """Rows [index * BLOCK_ROWS, (index + 1) * BLOCK_ROWS) of every batch drawn from dist with seed."""
    return sampling.sample_rows(bundle, dist, index * BLOCK_ROWS, (index + 1) * BLOCK_ROWS, seed)


def sample_blocks(bundle: Bundle, dist: LatentDistribution, seed: int, first: int, stop: int) -> Samples:
    """The rows of blocks first .. stop - 1 from one forward pass (split_blocks cuts them into what sample_block
    gives): four passes of 16 rows took up to twice as long as one of 64 (two torch threads share each small pass
    badly)."""
    return sampling.sample_rows(bundle, dist, first * BLOCK_ROWS, stop * BLOCK_ROWS, seed)


def split_blocks(rows: Samples) -> list[Samples]:
    """Consecutive whole blocks of rows, each a copy: the shared cache counts a view as the whole batch behind it."""
    def part(tensor: torch.Tensor | None, k: int) -> torch.Tensor | None:
        return None if tensor is None else tensor[k * BLOCK_ROWS:(k + 1) * BLOCK_ROWS].clone()

    return [Samples(part(rows.codes, k), part(rows.images, k), part(rows.labels, k), part(rows.info, k))
            for k in range(-(-rows.codes.shape[0] // BLOCK_ROWS))]


def prior_samples(bundle: Bundle, n: int, seed: int) -> Samples:
    """n codes from the bundle's training prior and their images."""
    return sampling.sample(bundle, bundle.prior, n, seed)


def prior_batch_numbers(bundle: Bundle, prior_batch: Samples) -> PriorNumbers:
    """The numbers every batch of the prior batch's size and seed is compared with."""
    return prior_numbers(bundle.generator, prior_batch.codes, prior_batch.images, feature_judge(bundle))


def prior_norms(prior: LatentDistribution, dim: int, n: int = 4096, seed: int = 12345) -> np.ndarray:
    return sample_latents(prior, n, dim, seed=seed).double().norm(dim=1).numpy()


def diagnostics_rows(model: str, distribution: str, seed: int, diagnostics) -> list[dict]:
    """The sampling page's numbers as CSV rows (figure, value): every number of the diagnostics, its verdict, and
    what they were computed for."""
    import dataclasses

    rows = [{"figure": "model", "value": model}, {"figure": "distribution", "value": distribution},
            {"figure": "seed", "value": seed}, {"figure": "verdict", "value": diagnostics.verdict}]
    for field in dataclasses.fields(diagnostics):
        value = getattr(diagnostics, field.name)
        if dataclasses.is_dataclass(value):  # the prior's norm reference: its mean and std
            rows += [{"figure": f"{field.name}.{k}", "value": v} for k, v in dataclasses.asdict(value).items()
                     if isinstance(v, (int, float))]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            rows.append({"figure": field.name, "value": value})
    return rows
