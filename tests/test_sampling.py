"""training.latent.sampling: the one entry point that turns a bundle's codes into images."""

from __future__ import annotations

import pytest
import torch
from latent_bundles import tiny_faces, train_tiny

from training.bundle import load_bundle
from training.latent import sampling
from training.latent.priors import LatentDistribution

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    faces = tiny_faces()
    root = tmp_path_factory.mktemp("sampling")
    return {family: load_bundle(train_tiny(family, root / family, faces))
            for family in ("dcgan", "vae", "cgan", "infogan")}


@pytest.mark.parametrize("family", ["dcgan", "vae", "cgan", "infogan"])
def test_chunked_sampling_equals_one_whole_batch(bundles, family):
    bundle = bundles[family]
    chunked = sampling.sample(bundle, LatentDistribution.normal(), 37, seed=3, chunk=5)
    whole = sampling.sample(bundle, LatentDistribution.normal(), 37, seed=3, chunk=1000)
    assert chunked.images.shape == (37, 3, 32, 32)
    assert torch.equal(chunked.codes, whole.codes)
    assert torch.allclose(chunked.images, whole.images, atol=1e-6)
    # The defaults a conditional / InfoGAN generator picks for a whole batch are kept, not restarted per chunk.
    with torch.no_grad():
        assert torch.allclose(bundle.generator(whole.codes), chunked.images, atol=1e-6)


def test_conditional_labels_are_used_and_returned(bundles):
    bundle = bundles["cgan"]
    gen = bundle.generator
    labels = torch.zeros(6, len(gen.conditions), dtype=torch.int64)
    out = sampling.sample(bundle, LatentDistribution.normal(), 6, seed=0, labels=labels, chunk=4)
    assert torch.equal(out.labels, labels)
    with torch.no_grad():
        assert torch.allclose(out.images, gen(out.codes, labels), atol=1e-6)
        assert not torch.allclose(out.images, gen(out.codes, gen.default_labels(6)), atol=1e-4)


def test_same_seed_shifted_distribution_and_norms(bundles):
    bundle = bundles["dcgan"]
    a = sampling.sample(bundle, LatentDistribution.normal(), 8, seed=2)
    b = sampling.sample(bundle, LatentDistribution.normal(-10.0, 1.0), 8, seed=2)
    assert torch.allclose(b.codes, a.codes - 10.0)
    assert torch.allclose(b.code_norms, b.codes.norm(dim=1))
    assert not bundle.generator.training  # eval mode: BatchNorm uses its running statistics


@pytest.mark.parametrize("family", ["dcgan", "vae", "cgan", "infogan"])
def test_a_batch_made_of_row_blocks_is_the_whole_batch(bundles, family):
    """The sampling page assembles batches from blocks of rows shared across sessions and batch sizes."""
    bundle, dist = bundles[family], LatentDistribution.normal(-2.0, 1.5)
    whole = sampling.sample(bundle, dist, 37, seed=4)
    pieces = [sampling.sample_rows(bundle, dist, start, start + 16, seed=4) for start in (0, 16, 32)]
    joined = sampling.join(pieces, 37)
    assert torch.equal(joined.codes, whole.codes)
    assert torch.allclose(joined.images, whole.images, atol=1e-5)
    for name in ("labels", "info"):
        assert (getattr(joined, name) is None) == (getattr(whole, name) is None)
        if getattr(whole, name) is not None:
            assert torch.equal(getattr(joined, name), getattr(whole, name))
    with pytest.raises(ValueError):
        sampling.sample_rows(bundle, dist, 16, 16, seed=4)
