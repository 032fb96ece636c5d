"""Pictures for the pages: the sample grid (laid out like torchvision's make_grid), its JPEG, the norm histogram, and
the charts' text, legends and equilibrium labels readable from the back of a classroom."""

import io

import numpy as np
import pytest
import torch
import torchvision.utils as vutils
from PIL import Image

from explorer.logic.curves import DRAWN_POINTS
from explorer.logic.diagnostics import NormReference
from explorer.logic.figures import (
    MAX_CURVES,
    TEXT_PX,
    grid_corner,
    grid_jpeg,
    image_grid,
    latent_scatter,
    loss_figure,
    norm_histogram,
    overlay_figure,
    path_norms_figure,
    sweep_figure,
    walk_figure,
)


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


def every_chart() -> dict:
    """One figure of each kind the pages draw, on small made-up numbers."""
    rng = np.random.default_rng(0)
    steps = np.arange(1.0, 301.0)
    losses = {key: (steps, rng.random(300)) for key in ("loss_g", "loss_d", "d_real", "d_fake")}
    means = np.linspace(-10, 10, 9)
    return {
        "losses": loss_figure(losses, {"loss_g": "G loss", "loss_d": "D loss", "d_real": "D(x)"}, marker_step=100,
                              equilibrium={"loss_d": 1.39, "loss_g": 0.69, "d_real": 0.5}),
        "overlay": overlay_figure({"baseline": losses["loss_g"], "lr 5e-5": losses["loss_d"]}, "G loss", 100),
        "norms": norm_histogram(rng.random(64) + 10, rng.random(512) + 10, NormReference(10.0, 0.7), "N(0, 1)",
                                "N(0, 1)"),
        "sweep": sweep_figure(means, {"diversity_ratio": rng.random(9), "cosine": rng.random(9)}, (-2.0, 2.0),
                              "N(0, 1)"),
        "paths": path_norms_figure(np.linspace(0, 1, 9), rng.random(9) + 9, rng.random(9) + 10,
                                   NormReference(10.0, 0.7), "N(0, 1)"),
        "map": latent_scatter(rng.random((20, 2)), np.array(["a", "b"] * 10), np.arange(20), "codes"),
        "map in 3-D": latent_scatter(rng.random((20, 3)), np.array(["a", "b"] * 10), np.arange(20), "codes",
                                     ("1", "2", "3")),
        "walk": walk_figure([0.0, 0.5, 1.0], [0.1, 0.5, 0.9], [10.0, 10.5, 11.0], "smiling", prior_norm=10.0),
    }


def text_sizes(fig) -> dict[str, float | None]:
    """Every text size the figure sets, by where it is: None where it sets none (Streamlit's chart theme then draws
    ticks at 12 px)."""
    layout = fig.layout
    sizes = {"font": layout.font.size, "legend": layout.legend.font.size, "hover": layout.hoverlabel.font.size}
    for name in layout:
        if name.startswith(("xaxis", "yaxis")):
            sizes[f"{name} ticks"] = layout[name].tickfont.size
            if layout[name].title.text:
                sizes[f"{name} title"] = layout[name].title.font.size
    for scene in fig.select_scenes():
        for name in ("xaxis", "yaxis", "zaxis"):
            sizes[f"3-D {name} ticks"] = scene[name].tickfont.size
            sizes[f"3-D {name} title"] = scene[name].title.font.size
    for i, note in enumerate(layout.annotations):
        sizes[f"annotation {i} ({note.text})"] = note.font.size
    return sizes


@pytest.mark.parametrize("name", list(every_chart()))
def test_every_chart_text_is_at_least_16_px(name):
    small = {where: size for where, size in text_sizes(every_chart()[name]).items() if size is None or size < TEXT_PX}
    assert not small, f"{name}: text under {TEXT_PX} px at {small}"


@pytest.mark.parametrize("name", ["losses", "overlay", "norms", "paths", "walk"])
def test_legends_sit_under_the_plot_clear_of_the_titles(name):
    legend = every_chart()[name].layout.legend
    assert (legend.orientation, legend.yref, legend.yanchor) == ("h", "container", "bottom") and legend.y < 0.05


def test_the_two_equilibrium_labels_of_the_loss_panel_sit_at_opposite_ends():
    fig = every_chart()["losses"]
    labels = {note.text: note for note in fig.layout.annotations if "equilibrium" in note.text}
    d_loss, g_loss = labels["D loss equilibrium 1.39"], labels["G loss equilibrium 0.69"]
    assert d_loss.yref == g_loss.yref  # the same panel
    # One hangs from the right edge, the other from the left: they cannot overlap, whatever the axis range.
    assert {(d_loss.x, d_loss.xanchor), (g_loss.x, g_loss.xanchor)} == {(1, "right"), (0, "left")}
    assert "D(x) equilibrium 0.50" in labels


def test_a_loss_chart_draws_a_bounded_number_of_curves_and_points():
    steps = np.arange(20_000.0)
    curves = {f"curve {i}": (steps, np.sin(steps / (i + 1))) for i in range(MAX_CURVES + 30)}
    fig = loss_figure(curves, {})
    assert len(fig.data) == MAX_CURVES
    assert all(len(trace.x) <= DRAWN_POINTS for trace in fig.data)
    assert len(fig.to_json()) < 5 << 20
    long_name = loss_figure({"x" * 10_000: (steps, steps)}, {})
    assert len(long_name.data[0].name) <= 60


def test_grid_corner_keeps_the_top_left_faces_of_a_saved_grid():
    faces = torch.arange(64, dtype=torch.float32).reshape(64, 1, 1, 1).expand(64, 3, 32, 32) / 32 - 1
    grid = image_grid(faces, nrow=8, scale=1)  # 8 x 8 faces of 32 px: 274 x 274, as training saves them
    corner = grid_corner(grid, 4)
    assert corner.shape == (4 * 34 + 2, 4 * 34 + 2, 3)
    assert np.array_equal(corner, image_grid(faces.reshape(8, 8, 3, 32, 32)[:4, :4].reshape(16, 3, 32, 32), nrow=4,
                                             scale=1))
    assert grid_corner(grid[:, :-1], 4) is not None and grid_corner(grid[:, :-1], 4).shape == grid[:, :-1].shape
