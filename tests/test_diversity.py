"""Diversity as a person sees it: feature-network distances beyond the same-image distance, the words calibrated on
them, and the pixel fallback for a dataset without a feature network."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from explorer.logic.diagnostics import FEATURES, PIXELS, diagnose, explain, prior_norm_reference
from explorer.logic.diversity import (
    SAME_IMAGE_SHARE,
    distinct_images,
    feature_judge,
    is_collapsed,
    judged_features,
    same_image_distance,
    spread_beyond,
)
from training.latent.priors import STANDARD_NORMAL, LatentDistribution, sample_latents
from training.models.dcgan import DCGANConfig, Generator
from training.models.featurenet import FeatureNet, FeatureNetConfig


def test_same_image_distance_and_the_spread_beyond_it():
    varied = torch.randn(32, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    same = same_image_distance(varied)
    assert same == pytest.approx(SAME_IMAGE_SHARE * float(torch.pdist(varied).median()))
    assert spread_beyond(varied, same) > 0.5 * float(torch.pdist(varied).mean())
    # One image and copies that differ by less than the same-image distance: no variety at all.
    one = varied[:1] + 0.01 * same * torch.randn(32, 16, dtype=torch.float64)
    assert spread_beyond(one, same) == 0.0
    assert distinct_images(one, same) == 1 and distinct_images(varied, same) == 32
    two = torch.cat([one[:16], one[16:] + 10 * same])  # two clusters: two images
    assert distinct_images(two, same) == 2
    assert is_collapsed(0.104) and not is_collapsed(0.106)  # as the page prints it: "10%" is collapsed


@pytest.fixture(scope="module")
def tiny_models():
    torch.manual_seed(0)
    generator = Generator(DCGANConfig(latent_dim=16, image_size=32, g_width=8)).eval()
    judge = FeatureNet(FeatureNetConfig(image_size=32, width=8, heads=[2])).eval()
    return generator, judge


def diagnosed(tiny_models, images, prior_images, judge=True, dist=STANDARD_NORMAL):
    generator, net = tiny_models
    z = sample_latents(dist, images.shape[0], 16, seed=0)
    prior_z = sample_latents(STANDARD_NORMAL, prior_images.shape[0], 16, seed=0)
    return diagnose(generator, dist, STANDARD_NORMAL, z, images, prior_z, prior_images,
                    prior_norm_reference(STANDARD_NORMAL, 16), judge=net if judge else None)


def varied_images(n: int = 64, seed: int = 1) -> torch.Tensor:
    torch.manual_seed(seed)  # smooth random pictures, each its own
    small = torch.rand(n, 3, 8, 8) * 2 - 1
    return torch.nn.functional.interpolate(small, size=(32, 32), mode="bilinear", align_corners=False)


def test_one_image_repeated_64_times_is_collapsed_and_a_varied_set_is_not(tiny_models):
    prior = varied_images()
    repeated = prior[:1].expand(64, -1, -1, -1).clone()
    d = diagnosed(tiny_models, repeated, prior)
    assert d.diversity_measure == FEATURES and d.judged_samples == 32
    assert d.diversity_ratio == pytest.approx(0.0, abs=1e-9) and d.verdict == "collapsed"
    assert d.distinct_images == 1
    text = explain(d)
    assert "0% as varied as N(0, 1) samples in the eyes of the dataset's feature network" in text
    assert "the first 32 hold 1 distinct image" in text and "collapsed into nearly one image" in text
    others = diagnosed(tiny_models, varied_images(seed=2), prior)
    assert others.diversity_ratio > 0.7 and others.verdict != "collapsed"
    itself = diagnosed(tiny_models, prior, prior)
    assert itself.diversity_ratio == pytest.approx(1.0) and itself.verdict == "healthy"


def test_without_a_feature_network_diversity_falls_back_to_pixels(tiny_models):
    prior = varied_images()
    d = diagnosed(tiny_models, prior[:1].expand(64, -1, -1, -1).clone(), prior, judge=False)
    assert d.diversity_measure == PIXELS and d.distinct_images is None
    assert d.verdict == "collapsed" and d.diversity_ratio == 0.0
    assert "measured in pixels: this dataset has no feature network" in explain(d)


def test_feature_judge_finds_the_datasets_network_or_none(tmp_path, monkeypatch):
    from training.bundle import Bundle, save_bundle

    net = FeatureNet(FeatureNetConfig(image_size=32, width=4, heads=[2]))
    for norm in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):  # as if trained
        norm.running_mean.uniform_(-1, 1), norm.running_var.uniform_(0.5, 2), norm.weight.data.uniform_(0.5, 2)
    save_bundle(tmp_path / "faces" / "featurenet", {"family": "featurenet", "name": "f", "dataset": {"name": "faces"},
                                                     "model": dataclasses.asdict(net.config)}, {"featurenet": net})
    monkeypatch.setenv("LATENT_EXPLORER_CHECKPOINTS", str(tmp_path))

    def bundle(dataset):
        return Bundle(path=tmp_path / "g", config={"dataset": {"name": dataset}}, networks={})

    found = feature_judge(bundle("faces"))
    assert feature_judge(bundle("faces")) is found  # loaded once
    images = torch.rand(8, 3, 32, 32) * 2 - 1  # BatchNorm folded into the convolutions: the same features
    net.eval()
    assert torch.allclose(judged_features(found, images), judged_features(net, images), atol=1e-5)
    assert feature_judge(bundle("elsewhere")) is None and feature_judge(bundle("")) is None


@pytest.fixture(scope="module")
def shipped():
    from tests.conftest import SHIPPED_DCGAN
    from training.bundle import load_bundle

    if not SHIPPED_DCGAN.exists():
        pytest.fail(f"the shipped bundle {SHIPPED_DCGAN} is missing")
    return load_bundle(SHIPPED_DCGAN)


def test_shipped_dcgan_in_its_feature_network(shipped):
    from explorer.logic.sample import sample_and_diagnose

    def at(dist):
        return sample_and_diagnose(shipped, dist, 64, seed=0).diagnostics

    collapsed = at(LatentDistribution.normal(-10, 1))
    assert collapsed.diversity_measure == FEATURES
    assert collapsed.verdict == "collapsed" and collapsed.diversity_ratio <= 0.10
    assert collapsed.distinct_images <= 3
    alike = at(LatentDistribution.uniform(0, 1))
    assert alike.verdict == "reduced diversity" and 0.10 < alike.diversity_ratio < 0.8
    prior = at(STANDARD_NORMAL)
    assert prior.verdict == "healthy" and prior.diversity_ratio == pytest.approx(1.0)
