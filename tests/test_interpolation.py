"""Linear paths dip into the prior's empty middle; spherical paths keep the codes' length."""

from __future__ import annotations

import math

import pytest
import torch

from explorer.logic.diagnostics import prior_norm_reference
from explorer.logic.interpolate import compare_paths, explain_paths, interpolate, lerp, slerp
from training.errors import LatentExplorerError
from training.latent.priors import STANDARD_NORMAL, sample_latents


def test_orthogonal_unit_codes_lerp_dips_to_one_over_root_two_slerp_stays_on_the_circle():
    z0, z1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    t = torch.linspace(0, 1, 5)
    assert lerp(z0, z1, t)[2].norm().item() == pytest.approx(1 / math.sqrt(2))
    path = slerp(z0, z1, t)
    assert torch.allclose(path.norm(dim=1), torch.ones(5))
    assert torch.allclose(path[2], torch.tensor([1.0, 1.0]) / math.sqrt(2))  # halfway along the arc


@pytest.mark.parametrize("method", ["linear", "spherical"])
def test_paths_start_and_end_at_the_codes(method):
    z0, z1 = torch.randn(100), torch.randn(100)
    path = interpolate(z0, z1, 7, method)
    assert path.shape == (7, 100)
    assert torch.allclose(path[0], z0, atol=1e-5) and torch.allclose(path[-1], z1, atol=1e-5)


def test_slerp_length_moves_linearly_between_unequal_ends():
    z0, z1 = torch.tensor([3.0, 0.0, 0.0]), torch.tensor([0.0, -2.0, 0.0])
    norms = interpolate(z0, z1, 5, "spherical").norm(dim=1)
    assert torch.allclose(norms, torch.tensor([3.0, 2.75, 2.5, 2.25, 2.0]), atol=1e-5)


def test_parallel_and_opposite_codes():
    z = torch.tensor([1.0, 2.0])
    assert torch.allclose(interpolate(z, 2 * z, 3, "spherical")[1], 1.5 * z)
    with pytest.raises(LatentExplorerError, match="opposite directions"):
        interpolate(z, -z, 3, "spherical")


@pytest.mark.parametrize("args,message", [((1, "linear"), "at least 2 steps"), ((5, "cubic"), "unknown interpolation")])
def test_bad_arguments(args, message):
    with pytest.raises(LatentExplorerError, match=message):
        interpolate(torch.zeros(3), torch.ones(3), *args)


def test_random_prior_codes_in_100_dimensions():
    reference = prior_norm_reference(STANDARD_NORMAL, 100)
    z0 = sample_latents(STANDARD_NORMAL, 1, 100, seed=0)[0]
    z1 = sample_latents(STANDARD_NORMAL, 1, 100, seed=1)[0]
    c = compare_paths(z0, z1, reference, STANDARD_NORMAL.label)
    assert 80 < c.angle_degrees < 100  # random codes in 100 dimensions are nearly perpendicular
    # About 1 - 1/sqrt(2) for perpendicular codes of equal length; exactly, the segment's closest point to 0.
    t = float(torch.clamp(torch.dot(z0, z0 - z1) / (z0 - z1).pow(2).sum(), 0, 1))
    closest = float(((1 - t) * z0 + t * z1).norm())
    assert c.linear_min == pytest.approx(closest, rel=0.01)  # sampled path: within its step of the exact minimum
    assert 0.2 < c.linear_dip < 0.4
    assert reference.zscore(c.linear_min) < -3  # far below the chi distribution's typical norm
    assert c.spherical_dip == pytest.approx(0.0, abs=1e-9)
    assert c.spherical_min >= min(c.end_norms) - 1e-9
    text = explain_paths(c)
    assert f"shrinks to {c.linear_min:.1f}" in text and f"{c.linear_dip:.0%} shorter" in text
    assert "never drops below" in text
