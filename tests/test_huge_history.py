"""A huge history.json (400,000 steps, 6 MB: sent whole, its chart would be 35 MB): every page that plots a history
sends a few thousand points per curve, well under 5 MB. The bound does not depend on the length, so a file at the
reader's 32 MB cap gives the same chart size (measured, not tested here: parsing such a file takes seconds)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from latent_bundles import APP, use_checkpoints
from streamlit.testing.v1 import AppTest

from training.bundle import HISTORY_FILE
from training.untrusted.checks import MAX_JSON_BYTES

STEPS = 400_000
CHART_LIMIT = 5 << 20  # bytes of chart JSON one page may send
SHIPPED_GROUP = Path(__file__).resolve().parent.parent / "checkpoints" / "experiments" / "data-size"


def write_huge_history(folder: Path, keys: tuple[str, ...] = ("loss_g", "loss_d", "d_real", "d_fake")) -> int:
    """Every step from 1 to STEPS with one-digit values (the densest record that stays under the cap) and one
    spike; returns the file's size."""
    rng = np.random.default_rng(0)
    parts = [f'"step":[{",".join(map(str, range(1, STEPS + 1)))}]']
    for key in keys:
        values = rng.integers(0, 3, STEPS)
        values[STEPS // 3] = 9  # one step's spike: the chart must keep it
        parts.append(f'"{key}":[{",".join(map(str, values.tolist()))}]')
    text = "{" + ",".join(parts) + "}"
    assert len(text) < MAX_JSON_BYTES  # a file the reader accepts
    (folder / HISTORY_FILE).write_text(text)
    return len(text)


def chart_sizes(at: AppTest) -> list[int]:
    return [len(chart.proto.spec) for chart in at.get("plotly_chart")]


def chart_peak(at: AppTest, trace_name: str) -> float:
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    trace = next(t for t in spec["data"] if t["name"] == trace_name)
    y = trace["y"]
    if isinstance(y, dict):  # plotly sends numpy arrays as base64 ("bdata") with their dtype
        import base64

        y = np.frombuffer(base64.b64decode(y["bdata"]), dtype=np.dtype(y["dtype"]))
    return float(np.max(y))


@pytest.mark.slow
def test_the_replay_page_sends_a_small_chart_of_a_huge_history(tiny_bundle, tmp_path):
    bundle = tmp_path / "huge-history"
    shutil.copytree(tiny_bundle, bundle)
    assert write_huge_history(bundle) > 5 << 20
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["session_bundles"] = {"huge history": str(bundle)}
    at.session_state["bundle_path"] = str(bundle)
    at.switch_page("views/replay.py").run()
    assert not at.exception, at.exception
    assert 0 < max(chart_sizes(at)) < CHART_LIMIT
    # Unsmoothed, the one-step spike is still drawn: min/max per stretch of steps, not every n-th point.
    at.checkbox(key="replay_smooth").set_value(False).run()
    assert not at.exception, at.exception
    assert 0 < max(chart_sizes(at)) < CHART_LIMIT
    assert chart_peak(at, "G loss") == 9


@pytest.mark.slow
def test_the_experiments_page_sends_a_small_chart_of_a_huge_history(tmp_path, monkeypatch):
    if not (SHIPPED_GROUP / "images-1000" / "config.json").exists():
        pytest.skip(f"the shipped experiment group is not there: {SHIPPED_GROUP}")
    group = tmp_path / "experiments" / SHIPPED_GROUP.name
    shutil.copytree(SHIPPED_GROUP, group)
    write_huge_history(group / "images-1000")
    use_checkpoints(monkeypatch, tmp_path)
    at = AppTest.from_file(APP, default_timeout=300)
    at.switch_page("views/experiments.py").run()
    assert not at.exception, at.exception
    assert 0 < max(chart_sizes(at)) < CHART_LIMIT


def test_the_train_live_chart_of_a_huge_history_is_small_and_keeps_a_spike():
    from explorer.logic.train_live import curves_figure

    rng = np.random.default_rng(0)
    curves = {key: rng.random(STEPS) for key in ("loss_g", "loss_d", "d_real", "d_fake")}
    curves["loss_g"][STEPS // 3] = 9.0  # one step's spike, which keeping every n-th point would drop
    history = {"step": list(range(1, STEPS + 1)), **{key: values.tolist() for key, values in curves.items()}}
    figure = curves_figure(history, [{"step": 10, "changes": {"lr_g": [2e-4, 1e-3]}}], "dcgan", window=1)
    assert len(figure.to_json()) < CHART_LIMIT
    assert max(next(t for t in figure.data if t.name == "G loss").y) == 9.0
