"""Cutting long training curves down for a chart: min and max per stretch of steps, ends kept, order kept."""

import numpy as np
import pytest

from explorer.logic.curves import DRAWN_POINTS, downsample_curves, minmax_downsample
from explorer.logic.replay import HistoryCurves, smooth, value_at


def noisy(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return np.arange(1, n + 1, dtype=float), rng.normal(1.0, 0.1, n)


@pytest.mark.parametrize("n", [4001, 10_007, 1_000_000])
@pytest.mark.parametrize("max_points", [4, 101, DRAWN_POINTS])
def test_spikes_ends_order_and_bound(n, max_points):
    x, y = noisy(n)
    up, down = n // 3, 2 * n // 3 + 1
    y[up], y[down] = 50.0, -50.0  # one step each: a spike and a dip
    sx, sy = minmax_downsample(x, y, max_points)
    assert len(sx) == len(sy) <= max_points
    assert (sx[0], sy[0]) == (x[0], y[0]) and (sx[-1], sy[-1]) == (x[-1], y[-1])
    assert np.all(np.diff(sx) > 0)  # the steps stay in order, none twice
    assert sy.max() == 50.0 and sy.min() == -50.0
    assert x[up] in sx and x[down] in sx
    assert set(sx) <= set(x)  # real points of the record, never made up


def test_a_short_curve_comes_back_whole():
    x, y = noisy(DRAWN_POINTS)
    sx, sy = minmax_downsample(x, y)
    assert np.array_equal(sx, x) and np.array_equal(sy, y)


def test_each_stretch_gives_its_lowest_and_highest_point():
    x = np.arange(10, dtype=float)
    y = np.array([0, 5, 1, 2, 9, 3, 4, 8, 7, 6], dtype=float)
    # 4 points: the ends and one stretch (steps 1..8) with its lowest (1 at step 2) and highest (9 at step 4).
    sx, sy = minmax_downsample(x, y, 4)
    assert sx.tolist() == [0, 2, 4, 9] and sy.tolist() == [0, 1, 9, 6]


def test_gaps_stay_gaps_and_nan_never_hides_a_spike():
    x, y = noisy(100_000)
    y[40_000:41_000] = np.nan  # a stretch of the record with no numbers
    y[41_500] = np.nan
    y[41_501] = 30.0
    sx, sy = minmax_downsample(x, y, 400)
    assert np.isnan(sy).any()  # the chart shows the gap
    assert sy[np.isfinite(sy)].max() == 30.0


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="one length"):
        minmax_downsample(np.arange(5), np.arange(6))
    with pytest.raises(ValueError, match="at least 4"):
        minmax_downsample(np.arange(5), np.arange(5), 3)


def test_every_curve_of_a_history_is_cut_on_its_own():
    x, y = noisy(50_000)
    drawn = downsample_curves(x, {"loss_g": y, "loss_d": -y}, 500)
    assert set(drawn) == {"loss_g", "loss_d"}
    assert drawn["loss_g"][1].max() == y.max() and drawn["loss_d"][1].min() == -y.max()


def test_history_curves_give_the_smoothed_value_the_chart_draws():
    rng = np.random.default_rng(1)
    history = {"step": list(range(1, 301)), "loss_g": rng.random(300).tolist(), "note": "not a curve"}
    curves = HistoryCurves.of(history)
    assert list(curves.curves) == ["loss_g"]
    for window in (1, 7, 50, 500):
        for step in (1, 2, 150, 300, 10_000):
            expected = float(smooth(history["loss_g"], window)[min(step, 300) - 1])
            assert curves.value_at("loss_g", step, window) == pytest.approx(expected)
            assert value_at(history, "loss_g", step, window) == pytest.approx(expected)
    assert curves.value_at("loss_g", 0) is None and curves.value_at("loss_d", 10) is None
    assert HistoryCurves.of({}).value_at("loss_g", 10) is None


def test_history_curves_draw_at_most_the_first_curves_and_points():
    steps = 20_000
    history = {"step": list(range(steps)), **{f"curve_{i}": [float(i)] * steps for i in range(30)}}
    drawn = HistoryCurves.of(history).drawn(window=5, max_points=300, first=16)
    assert list(drawn) == [f"curve_{i}" for i in range(16)]
    assert all(len(x) == len(y) <= 300 for x, y in drawn.values())
