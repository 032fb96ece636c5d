"""The mean sweep's numbers: shared base noise, the codes' geometry per mean, where the sentence says variety ends."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from wrapped import bundle_of

from explorer.logic.sweep import VARIED_RATIO, Sweep, explain_sweep, mean_sweep, summarise, sweep_means
from training.errors import LatentExplorerError
from training.models.dcgan import DCGANConfig, Generator


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return Generator(DCGANConfig(latent_dim=100, image_size=32, g_width=4)).eval()


@pytest.fixture(scope="module")
def sweep(generator) -> Sweep:
    return mean_sweep(bundle_of(generator), sweep_means(-10, 10, 5), std=1.0, n=24, seed=3, keep=4)


def test_sweep_means_include_both_ends_and_the_prior_mean():
    assert sweep_means(-10, 10, 2) == [-10, -8, -6, -4, -2, 0, 2, 4, 6, 8, 10]
    assert sweep_means(-10, 10, 3) == [-10, -7, -4, -1, 0, 2, 5, 8]  # 0 added: the reference row
    assert sweep_means(1, 3, 1) == [1, 2, 3]
    assert len(sweep_means(-10, 10, 0.5)) == 41


@pytest.mark.parametrize("low,high,step,message", [(-10, 10, 0, "positive"), (5, -5, 1, "low <= high"),
                                                    (-20, 20, 0.5, "81 rows is too many")])
def test_sweep_means_refuse_bad_combinations(low, high, step, message):
    with pytest.raises(LatentExplorerError, match=message):
        sweep_means(low, high, step)


def test_rows_share_base_noise_and_codes_follow_the_geometry(sweep):
    means = list(sweep.means)
    assert means == [-10, -5, 0, 5, 10]
    for row in sweep.rows:
        d = row.diagnostics
        m = row.mean
        # Same base noise, only shifted: cosine -> m^2 / (m^2 + 1), norm -> sqrt(d (m^2 + 1)).
        assert d.cosine == pytest.approx(m * m / (m * m + 1), abs=0.05)
        assert d.norm_mean == pytest.approx(math.sqrt(100 * (m * m + 1)), rel=0.05)
        assert row.images.shape == (4, 3, 32, 32)  # keep=4: only the shown images are stored
    zero = sweep.rows[2].diagnostics
    assert zero.diversity_ratio == pytest.approx(1.0)  # the 0 row *is* the prior batch
    assert abs(zero.norm_zscore) < 1.5  # a prior batch sits inside the prior's norm distribution
    z_scores = sweep.column("norm_zscore")
    assert z_scores[0] > z_scores[1] > 20 and z_scores[4] > z_scores[3] > 20


def test_sweep_needs_two_samples(generator):
    with pytest.raises(LatentExplorerError, match="at least 2 samples"):
        mean_sweep(bundle_of(generator), [0.0], n=1)


def _with_ratios(sweep: Sweep, ratios: list[float]) -> Sweep:
    """The same sweep with chosen output diversities, to check the walk from the prior's mean."""
    rows = [dataclasses.replace(r, diagnostics=dataclasses.replace(r.diagnostics, diversity_ratio=v))
            for r, v in zip(sweep.rows, ratios)]
    return dataclasses.replace(sweep, rows=rows)


def test_summary_walks_out_from_the_prior_mean(sweep):
    s = summarise(_with_ratios(sweep, [0.1, 0.5, 1.0, 0.9, 0.6]))
    assert (s.varied_low, s.varied_high) == (0, 5)
    assert s.collapsed_below == -10 and s.collapsed_above is None
    assert s.worst.mean == -10
    text = explain_sweep(_with_ratios(sweep, [0.1, 0.5, 1.0, 0.9, 0.6]))
    assert f"at least {VARIED_RATIO:.0%} as varied as N(0, 1) samples for means from 0 to 5" in text
    assert "collapse at mean -10" in text and "10% as varied" in text


def test_summary_when_nothing_collapses_or_only_the_prior_is_varied(sweep):
    only_zero = _with_ratios(sweep, [0.5, 0.6, 1.0, 0.7, 0.5])
    s = summarise(only_zero)
    assert (s.varied_low, s.varied_high) == (0, 0)
    assert s.collapsed_below is None and s.collapsed_above is None
    text = explain_sweep(only_zero)
    assert "only mean 0" in text and "No row collapses completely" in text and "mean -10, at 50%" in text
