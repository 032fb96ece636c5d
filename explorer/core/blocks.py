"""The sampling page's batches, made of blocks of rows that every session shares, in one job per page run.

A batch of n samples from a distribution and seed is the first n rows of the same long batch whatever n
(training.latent.priors.sample_latents), so it is assembled from blocks of BLOCK_ROWS rows kept in the shared cache:
a student who changes the number of samples only waits for the blocks nobody has computed yet, and the training
prior's blocks, which every batch is compared with, are computed once per model and seed for the whole class.

Everything a page run needs (both batches, the prior's numbers, the diagnosis) is one request on the torch
thread: under load each request waits behind the whole queue, so three requests in a row would wait three times.
The nested requests below are computed inline on that thread and cached; only that thread makes them, so none
of them can be in flight elsewhere (which would make the worker wait for a job queued behind itself).
"""

from __future__ import annotations

import logging
import math
import os

from explorer.core import torch_worker
from explorer.logic.diagnostics import NormReference
from explorer.logic.sample import (
    BUSY_PREVIEW_S,
    SampledBatch,
    blocks_for,
    prior_batch_numbers,
    sample_and_diagnose,
    sample_block,
    sample_blocks,
    split_blocks,
)
from training.bundle import Bundle
from training.latent import sampling
from training.latent.priors import LatentDistribution
from training.latent.sampling import Samples

PREVIEW_ENV = "LATENT_EXPLORER_BUSY_PREVIEW_S"
_LOG = logging.getLogger(__name__)


def preview_threshold(environ: dict[str, str] | None = None) -> float:
    """The expected wait (seconds) above which the sampling page shows a first block of samples: BUSY_PREVIEW_S,
    or LATENT_EXPLORER_BUSY_PREVIEW_S ("off": always the whole batch, for a server with cores to spare)."""
    raw = (environ if environ is not None else os.environ).get(PREVIEW_ENV, "").strip().lower()
    if not raw:
        return BUSY_PREVIEW_S
    if raw == "off":
        return math.inf
    try:
        value = float(raw)
        if value >= 0:
            return value
    except ValueError:
        pass
    _LOG.warning("%s=%r is not a number of seconds or 'off'; using %s", PREVIEW_ENV, raw, BUSY_PREVIEW_S)
    return BUSY_PREVIEW_S


def _assemble(bundle: Bundle, dist: LatentDistribution, n: int, seed: int) -> Samples:
    count = blocks_for(n)
    missing = [i for i in range(count) if not torch_worker.holds(sample_block, bundle, dist, seed, i)]
    if len(missing) > 1:  # the blocks nobody has made, in one forward pass, each kept as its own request
        made = sample_blocks(bundle, dist, seed, missing[0], missing[-1] + 1)
        for i, block in enumerate(split_blocks(made), start=missing[0]):
            if i in missing:
                torch_worker.keep(block, sample_block, bundle, dist, seed, i)
        if len(missing) == count:  # all of them new: the pass's own rows, not joined again from the copies
            return Samples(*(None if rows is None else rows[:n] for rows in (made.codes, made.images, made.labels,
                                                                              made.info)))
    return sampling.join([torch_worker.shared(sample_block, bundle, dist, seed, i) for i in range(count)], n)


def _sampled(bundle: Bundle, dist: LatentDistribution, n: int, seed: int, reference: NormReference) -> SampledBatch:
    # The prior's joined batch is kept: every distribution's page run compares with it, and as a kept result it
    # keys its numbers' request without hashing its pixels. The drawn batch is joined from its kept blocks and
    # lives on in this request's result only, not twice in the cache.
    prior = torch_worker.shared(_assemble, bundle, bundle.prior, n, seed)
    return sample_and_diagnose(bundle, dist, n, seed, prior_batch=prior, norm_reference=reference,
                               prior_side=torch_worker.shared(prior_batch_numbers, bundle, prior),
                               drawn=_assemble(bundle, dist, n, seed))


def sampled_batch(bundle: Bundle, dist: LatentDistribution, n: int, seed: int,
                  reference: NormReference) -> SampledBatch:
    """n samples from dist with seed (those sampling.sample draws) diagnosed against the prior's batch of the same
    size and seed: one request, shared by every session that asks the same."""
    return torch_worker.shared(_sampled, bundle, dist, n, seed, reference)
