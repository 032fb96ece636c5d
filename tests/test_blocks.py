"""The sampling page's batches come from blocks of rows in the shared cache: a new number of samples computes only
the blocks nobody has made, and the result is the batch sampling.sample draws."""

import pytest
import torch

from explorer.core import blocks, torch_worker
from explorer.core.shared_cache import SharedCache
from explorer.logic.diagnostics import prior_norm_reference
from explorer.logic.sample import BLOCK_ROWS
from training import sampling
from training.checkpoint import load_bundle
from training.latent import LatentDistribution

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def block_rows_in(cache: SharedCache) -> set[tuple]:
    """(seed, block index) of every sample_block result the cache holds."""
    return {(key[1][1][2][1], key[1][1][3][1]) for key in cache.keys() if key[0][2] == "sample_block"}


def test_a_new_batch_size_computes_only_the_missing_blocks(tiny_bundle, monkeypatch):
    cache = SharedCache(64 * 2**20)
    monkeypatch.setattr(torch_worker, "CACHE", cache)
    bundle, dist = load_bundle(tiny_bundle), LatentDistribution.normal(3.0, 1.0)
    reference = prior_norm_reference(bundle.prior, bundle.latent_dim)

    def batch(n: int):
        return blocks.sampled_batch(bundle, dist, n, 0, reference)

    first = batch(3 * BLOCK_ROWS)
    assert block_rows_in(cache) == {(0, 0), (0, 1), (0, 2)}
    smaller = batch(BLOCK_ROWS + 5)  # inside blocks already made: nothing new
    assert block_rows_in(cache) == {(0, 0), (0, 1), (0, 2)}
    assert torch.equal(smaller.images, first.images[:BLOCK_ROWS + 5])
    larger = batch(4 * BLOCK_ROWS - 1)  # one more block
    assert block_rows_in(cache) == {(0, 0), (0, 1), (0, 2), (0, 3)}
    assert torch.equal(larger.images[:3 * BLOCK_ROWS], first.images)

    whole = sampling.sample(bundle, dist, 4 * BLOCK_ROWS - 1, 0)
    assert torch.equal(larger.z, whole.codes)
    assert larger.prior_z.shape == larger.z.shape and larger.diagnostics.verdict
    assert torch.allclose(larger.images, whole.images, atol=1e-5)
