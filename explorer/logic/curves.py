"""Long training curves cut down to what a chart can show: the lowest and the highest point of each stretch of
steps, so a one-step spike survives while millions of points become a few thousand.

A history of 5 million steps sent whole made a 200 MB chart on every rerun (seconds each, gigabytes of server
memory, a frozen browser tab); a screen is a few thousand pixels wide, so more points than that draw nothing new."""

from __future__ import annotations

import numpy as np

# Points drawn per curve: two per bucket, a little more than the pixels across a wide chart.
DRAWN_POINTS = 4000


def minmax_downsample(x: np.ndarray, y: np.ndarray, max_points: int = DRAWN_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most `max_points` of the points (x, y), in their original order: the first and the last, and the lowest
    and highest y of each of (max_points - 2) // 2 equal stretches in between. Curves already short enough come
    back as they are. A stretch holding only NaN (a gap in the record) keeps one NaN point, so the gap stays."""
    x, y = np.asarray(x), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D and of one length, not {x.shape} and {y.shape}")
    if max_points < 4:
        raise ValueError(f"max_points must be at least 4, not {max_points}")
    n = y.size
    if n <= max_points:
        return x, y
    buckets = (max_points - 2) // 2
    inner = y[1:-1]
    size = -(-inner.size // buckets)  # ceiling: every bucket but the last is full
    buckets = -(-inner.size // size)
    padded = np.full(buckets * size, np.nan)
    padded[:inner.size] = inner
    table = padded.reshape(buckets, size)
    # NaN never wins: it counts as +inf for the minimum and -inf for the maximum (an all-NaN row picks its first
    # element, a real point of the record, which keeps the gap).
    low = np.argmin(np.where(np.isnan(table), np.inf, table), axis=1)
    high = np.argmax(np.where(np.isnan(table), -np.inf, table), axis=1)
    starts = np.arange(buckets) * size + 1  # +1: index in y, past the first point
    picked = np.concatenate(([0], starts + np.minimum(low, high), starts + np.maximum(low, high), [n - 1]))
    keep = np.unique(picked)  # sorted, and a bucket whose lowest point is also its highest counts once
    return x[keep], y[keep]


def downsample_curves(steps: np.ndarray, curves: dict[str, np.ndarray], max_points: int = DRAWN_POINTS
                      ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each curve of a history, drawn against the steps, cut to at most `max_points` (steps, values) pairs."""
    return {key: minmax_downsample(steps, values, max_points) for key, values in curves.items()}
