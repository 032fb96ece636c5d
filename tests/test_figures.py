"""Pictures for the pages: the sample grid (laid out like torchvision's make_grid), its JPEG, the norm histogram."""

import io

import numpy as np
import pytest
import torch
import torchvision.utils as vutils
from PIL import Image

from explorer.core.figures import grid_jpeg, image_grid, norm_histogram
from explorer.logic.diagnostics import NormReference


@pytest.mark.parametrize("shape, nrow", [((64, 3, 16, 16), 8), ((5, 1, 8, 8), 4), ((3, 3, 8, 8), 8)])
def test_grid_matches_make_grid(shape, nrow):
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0)) * 2.4 - 1.2  # some values out of range
    ref = vutils.make_grid(x.clamp(-1, 1), nrow=min(nrow, shape[0]), padding=2, normalize=True, value_range=(-1, 1),
                           pad_value=1.0)
    ref = ref.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(image_grid(x, nrow=nrow, scale=1), ref)
    assert image_grid(x, nrow=nrow, scale=3).shape == (ref.shape[0] * 3, ref.shape[1] * 3, 3)


def test_grid_jpeg_is_the_native_size_grid():
    x = torch.linspace(-1, 1, 4 * 3 * 8 * 8).reshape(4, 3, 8, 8)
    picture = Image.open(io.BytesIO(grid_jpeg(x, nrow=2)))
    assert picture.format == "JPEG" and picture.size == (2 * 10 + 2, 2 * 10 + 2)
    # Visually lossless: on average within a level or two of the exact grid (a little ringing at hard edges).
    error = np.abs(np.asarray(picture, dtype=int) - image_grid(x, nrow=2, scale=1).astype(int))
    assert error.mean() < 2 and error.max() <= 32


def test_norm_histogram_bins_densities_and_marks_the_prior_mean():
    rng = np.random.default_rng(0)
    prior = rng.chisquare(100, 4096) ** 0.5
    fig = norm_histogram(np.full(64, 100.0), prior, NormReference(10.0, 0.7), "N(-10, 1)", "N(0, 1)")
    prior_bars, batch_bars = fig.data
    assert len(prior_bars.x) == 40 and sum(prior_bars.y * prior_bars.width) == pytest.approx(1.0)
    assert len(batch_bars.x) == 1 and batch_bars.x[0] == pytest.approx(100.0)  # every code has the same norm
    assert fig.layout.shapes[0].x0 == 10.0 and "prior mean 10.0" in fig.layout.annotations[0].text
