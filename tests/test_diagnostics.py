import math

import pytest
import torch

from explorer.logic.diagnostics import (
    chi_mean,
    explain,
    first_layer_shift,
    image_diversity,
    mean_pairwise_distance,
    pairwise_cosine,
    prior_norm_reference,
    saturated_fraction,
)
from training.latent.priors import PRESETS, STANDARD_NORMAL, sample_latents
from training.models.dcgan import DCGANConfig, Generator


def codes(name, n=128, dim=100, seed=0):
    return sample_latents(PRESETS[name], n, dim, seed=seed)


def test_cosine_known_values():
    assert abs(pairwise_cosine(codes("N(-10,1)")) - 100 / 101) < 0.01
    assert abs(pairwise_cosine(codes("U(0,1)")) - 0.75) < 0.02
    assert abs(pairwise_cosine(codes("N(0,1)"))) < 0.02
    assert abs(pairwise_cosine(codes("U(-1,1)"))) < 0.02
    assert math.isnan(pairwise_cosine(torch.ones(1, 4)))


def test_norms_and_spread():
    ref = prior_norm_reference(STANDARD_NORMAL, 100)
    assert abs(ref.mean - chi_mean(100)) < 0.05 and abs(ref.std - 0.707) < 0.05
    shifted = codes("N(-10,1)").norm(dim=1).mean().item()
    assert abs(shifted - math.sqrt(100 * 101)) < 1.0  # about 100, not about 10
    assert ref.zscore(shifted) > 100
    ratio = mean_pairwise_distance(codes("N(0,1)")) / mean_pairwise_distance(codes("U(0,1)"))
    assert abs(ratio - math.sqrt(12)) < 0.15  # U(0,1) codes vary about 3.5x less


def test_saturation_and_diversity():
    x = torch.tensor([[0.99, -0.999, 0.5, 0.0]])
    assert saturated_fraction(x) == 0.5
    same = torch.zeros(5, 3, 4, 4)
    assert mean_pairwise_distance(same) == 0.0
    # Pixel-level checkerboard noise barely counts; different content does.
    torch.manual_seed(0)
    noise = torch.where(torch.rand(6, 3, 64, 64) > 0.5, 1.0, -1.0) * 0.2
    content = torch.randn(6, 3, 1, 1).expand(6, 3, 64, 64) * 0.5
    assert image_diversity(noise) < 0.1 * mean_pairwise_distance(noise)
    assert image_diversity(content) == pytest.approx(mean_pairwise_distance(content) / 4, rel=1e-6)


def test_first_layer_shift_grows_with_the_mean():
    torch.manual_seed(0)
    g = Generator(DCGANConfig(latent_dim=100, image_size=32, g_width=8)).eval()
    g.first_batchnorm.running_mean.zero_()
    g.first_batchnorm.running_var.fill_(1e-2)  # as if training codes gave small pre-activations
    near = first_layer_shift(g, codes("N(0,1)"))
    far = first_layer_shift(g, codes("N(-10,1)"))
    assert far > 5 * near
    # Calibrated to the batch's own statistics, the shift is exactly 1 (BatchNorm's unit variance).
    with torch.no_grad():
        pre = g.first_layer_preactivation(codes("N(0,1)"))
    g.first_batchnorm.running_mean.copy_(pre.mean(dim=(0, 2, 3)))
    g.first_batchnorm.running_var.copy_(pre.var(dim=(0, 2, 3), unbiased=False))
    assert first_layer_shift(g, codes("N(0,1)")) == pytest.approx(1.0, abs=1e-3)


@pytest.fixture(scope="module")
def shipped():
    from tests.conftest import SHIPPED_DCGAN
    from training.bundle import load_bundle

    if not SHIPPED_DCGAN.exists():
        pytest.fail(f"the shipped bundle {SHIPPED_DCGAN} is missing")
    return load_bundle(SHIPPED_DCGAN)


def diagnose_preset(bundle, name):
    from explorer.logic.sample import sample_and_diagnose

    return sample_and_diagnose(bundle, PRESETS[name], 64, seed=0).diagnostics


def test_shipped_model_collapses_under_n_minus_10(shipped):
    d = diagnose_preset(shipped, "N(-10,1)")
    assert d.verdict == "collapsed"
    assert abs(d.cosine - 100 / 101) < 0.01
    assert d.norm_mean > 90 and abs(d.prior_norm.mean - 10) < 0.5
    assert d.diversity_ratio < 0.5 and d.saturated > 0.2
    assert d.first_layer_shift > 5 * d.prior_first_layer_shift
    text = explain(d)
    assert "nearly parallel" in text and "collapsed" in text


def test_shipped_model_under_uniform_and_standard_normal(shipped):
    u = diagnose_preset(shipped, "U(0,1)")
    assert abs(u.cosine - 0.75) < 0.03
    assert u.diversity_ratio < 0.8 and u.verdict == "reduced diversity"
    assert "common direction" in explain(u) and "3.5x less" in explain(u)
    n = diagnose_preset(shipped, "N(0,1)")
    assert n.verdict == "healthy" and n.diversity_ratio == pytest.approx(1.0)
