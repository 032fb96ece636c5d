"""Sample a batch from a bundle under a latent distribution and diagnose it against the training prior."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.diagnostics import Diagnostics, NormReference, diagnose, generate, prior_norm_reference
from training.checkpoint import Bundle
from training.latent import LatentDistribution, sample_latents


@dataclass
class SampledBatch:
    z: torch.Tensor
    images: torch.Tensor
    prior_z: torch.Tensor
    prior_images: torch.Tensor
    norm_reference: NormReference
    diagnostics: Diagnostics


def sample_and_diagnose(bundle: Bundle, dist: LatentDistribution, n: int, seed: int,
                        prior_batch: tuple[torch.Tensor, torch.Tensor] | None = None,
                        norm_reference: NormReference | None = None) -> SampledBatch:
    """Both batches use the same seed, so they share their base noise and differ only by the distribution.
    Pass a precomputed prior batch / norm reference (cached by the UI) to skip recomputing them."""
    prior = bundle.prior
    dim = bundle.latent_dim
    generator = bundle.generator
    z = sample_latents(dist, n, dim, seed=seed)
    images = generate(generator, z)
    if prior_batch is None:
        prior_batch = prior_samples(bundle, n, seed)
    prior_z, prior_images = prior_batch
    norm_reference = norm_reference or prior_norm_reference(prior, dim)
    diagnostics = diagnose(generator, dist, prior, z, images, prior_z, prior_images, norm_reference)
    return SampledBatch(z, images, prior_z, prior_images, norm_reference, diagnostics)


def prior_samples(bundle: Bundle, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    z = sample_latents(bundle.prior, n, bundle.latent_dim, seed=seed)
    return z, generate(bundle.generator, z)


def prior_norms(prior: LatentDistribution, dim: int, n: int = 4096, seed: int = 12345) -> np.ndarray:
    return sample_latents(prior, n, dim, seed=seed).double().norm(dim=1).numpy()
