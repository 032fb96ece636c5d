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
from training import sampling
from training.checkpoint import Bundle
from training.latent import LatentDistribution, sample_latents
from training.sampling import Samples


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
                        prior_side: PriorNumbers | None = None) -> SampledBatch:
    """Both batches use the same seed, so they share their base noise and differ only by the distribution.
    Pass a precomputed prior batch / norm reference / prior batch's numbers (cached by the UI) to skip
    recomputing them."""
    drawn = sampling.sample(bundle, dist, n, seed)
    if prior_batch is None:
        prior_batch = prior_samples(bundle, n, seed)
    norm_reference = norm_reference or prior_norm_reference(bundle.prior, bundle.latent_dim)
    diagnostics = diagnose(bundle.generator, dist, bundle.prior, drawn.codes, drawn.images, prior_batch.codes,
                           prior_batch.images, norm_reference, prior_side)
    return SampledBatch(drawn.codes, drawn.images, prior_batch.codes, prior_batch.images, norm_reference, diagnostics)


def prior_samples(bundle: Bundle, n: int, seed: int) -> Samples:
    """n codes from the bundle's training prior and their images."""
    return sampling.sample(bundle, bundle.prior, n, seed)


def prior_batch_numbers(bundle: Bundle, prior_batch: Samples) -> PriorNumbers:
    """The numbers every batch of the prior batch's size and seed is compared with."""
    return prior_numbers(bundle.generator, prior_batch.codes, prior_batch.images)


def prior_norms(prior: LatentDistribution, dim: int, n: int = 4096, seed: int = 12345) -> np.ndarray:
    return sample_latents(prior, n, dim, seed=seed).double().norm(dim=1).numpy()
