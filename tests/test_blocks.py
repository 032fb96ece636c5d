"""The sampling page's batches come from blocks of rows in the shared cache: a new number of samples computes only
the blocks nobody has made, and the result is the batch sampling.sample draws."""

import functools

import pytest
import torch

from explorer.core import blocks, torch_worker
from explorer.core.shared_cache import SharedCache
from explorer.logic.diagnostics import prior_norm_reference
from explorer.logic.sample import BLOCK_ROWS
from training.bundle import load_bundle
from training.latent import sampling
from training.latent.priors import LatentDistribution

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def record_blocks(monkeypatch) -> list[tuple]:
    """Every block computed from now on, as (distribution, seed, block index), in order; a block the shared cache
    already holds is not computed again, so it is not recorded again."""
    computed: list[tuple] = []
    one, several = blocks.sample_block, blocks.sample_blocks

    @functools.wraps(one)  # the same name, so the cache keys it as before
    def recording(bundle, dist, seed, index):
        computed.append((dist.label, seed, index))
        return one(bundle, dist, seed, index)

    @functools.wraps(several)
    def recording_several(bundle, dist, seed, first, stop):
        computed.extend((dist.label, seed, index) for index in range(first, stop))
        return several(bundle, dist, seed, first, stop)

    monkeypatch.setattr(blocks, "sample_block", recording)
    monkeypatch.setattr(blocks, "sample_blocks", recording_several)
    return computed


def test_a_new_batch_size_computes_only_the_missing_blocks(tiny_bundle, monkeypatch):
    monkeypatch.setattr(torch_worker, "CACHE", SharedCache(64 * 2**20))
    computed = record_blocks(monkeypatch)
    bundle, dist = load_bundle(tiny_bundle), LatentDistribution.normal(3.0, 1.0)
    reference = prior_norm_reference(bundle.prior, bundle.latent_dim)
    ours, prior = dist.label, bundle.prior.label

    def batch(n: int):
        return blocks.sampled_batch(bundle, dist, n, 0, reference)

    first = batch(3 * BLOCK_ROWS)
    assert sorted(computed) == sorted((d, 0, i) for d in (ours, prior) for i in range(3))  # the batch and the prior's
    smaller = batch(BLOCK_ROWS + 5)  # inside blocks already made: nothing new
    assert len(computed) == 6
    assert torch.equal(smaller.images, first.images[:BLOCK_ROWS + 5])
    larger = batch(4 * BLOCK_ROWS - 1)  # one more block, of each
    assert sorted(computed[6:]) == sorted([(ours, 0, 3), (prior, 0, 3)])
    assert torch.equal(larger.images[:3 * BLOCK_ROWS], first.images)

    whole = sampling.sample(bundle, dist, 4 * BLOCK_ROWS - 1, 0)
    assert torch.equal(larger.z, whole.codes)
    assert larger.prior_z.shape == larger.z.shape and larger.diagnostics.verdict
    assert torch.allclose(larger.images, whole.images, atol=1e-5)


def test_the_missing_blocks_come_from_one_forward_pass_and_are_kept_one_by_one(tiny_bundle, monkeypatch):
    monkeypatch.setattr(torch_worker, "CACHE", SharedCache(64 * 2**20))
    bundle, dist = load_bundle(tiny_bundle), LatentDistribution.normal(-2.0, 1.0)
    passes: list[int] = []
    forward = bundle.generator.forward
    monkeypatch.setattr(bundle.generator, "forward", lambda z, *a, **k: passes.append(len(z)) or forward(z, *a, **k))

    made = torch_worker.run(blocks._assemble, bundle, dist, 3 * BLOCK_ROWS, 0)
    assert passes == [3 * BLOCK_ROWS]
    assert all(torch_worker.holds(blocks.sample_block, bundle, dist, 0, i) for i in range(3))
    kept = torch_worker.shared(blocks.sample_block, bundle, dist, 0, 1)
    assert passes == [3 * BLOCK_ROWS]  # from the cache, not computed again
    assert torch.equal(kept.images, made.images[BLOCK_ROWS:2 * BLOCK_ROWS])
    assert kept.images.untyped_storage().nbytes() == kept.images.nbytes  # its own rows, not a view of the batch
    alone = sampling.sample_rows(bundle, dist, BLOCK_ROWS, 2 * BLOCK_ROWS, 0)
    assert torch.equal(kept.codes, alone.codes) and torch.allclose(kept.images, alone.images, atol=1e-5)
