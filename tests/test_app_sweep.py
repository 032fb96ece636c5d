"""Drive the mean-sweep page headless on the shipped DCGAN: rows, numbers and the sentence follow the controls."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "explorer" / "app.py")


@pytest.fixture(scope="module")
def app():
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page("views/sweep.py").run()
    assert not at.exception, at.exception
    return at


def table(at):
    return at.dataframe[0].value


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_default_sweep_minus_10_to_10(app):
    rows = table(app)
    assert list(rows["mean"]) == [-10, -8, -6, -4, -2, 0, 2, 4, 6, 8, 10]
    cosine = dict(zip(rows["mean"], rows["cosine of codes"]))
    assert cosine[-10] == pytest.approx(100 / 101, abs=0.01) and abs(cosine[0]) < 0.05
    assert dict(zip(rows["mean"], rows["diversity vs prior"]))[0] == pytest.approx(1.0)
    assert "0" in metric(app, "means with varied samples")
    worst = next(m for m in app.metric if m.label == "least varied row").proto
    assert worst.delta and worst.direction == worst.NONE  # a share of the prior's diversity, not a gain: no arrow
    # The trained model collapses somewhere on the way to -10, and the sentence says where, with numbers.
    collapse = metric(app, "collapse starts at mean")
    assert collapse != "no collapse"
    sentence = app.warning[0].value
    assert f"collapse at mean {collapse.split(' and ')[0]}" in sentence and "% as varied" in sentence
    assert len(app.get("image")) >= 1 and len(app.get("plotly_chart")) == 1


@pytest.mark.slow
def test_step_std_and_row_controls_across_their_ranges(app):
    # Several widgets change before one rerun, as when a teacher moves them quickly: one sweep per check.
    app.slider(key="sweep_range").set_value((-2.0, 2.0))
    app.select_slider(key="sweep_step").set_value(0.5).run()
    assert not app.exception
    assert list(table(app)["mean"]) == [-2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2]
    app.slider(key="sweep_range").set_value((-20.0, 20.0))
    app.select_slider(key="sweep_step").set_value(5.0)
    app.slider(key="sweep_std").set_value(3.0)
    app.slider(key="sweep_shown").set_value(12).run()
    assert not app.exception
    rows = table(app)
    assert list(rows["mean"]) == [-20, -15, -10, -5, 0, 5, 10, 15, 20]
    # With std 3 the shared offset dominates less: cosine at m = -10 is 100 / 109.
    assert dict(zip(rows["mean"], rows["cosine of codes"]))[-10] == pytest.approx(100 / 109, abs=0.02)
    assert "With std 3" in (app.warning[0].value if app.warning else app.success[0].value)
    app.slider(key="sweep_std").set_value(0.1)
    app.slider(key="sweep_shown").set_value(2)
    app.number_input(key="sweep_seed").set_value(7).run()
    assert not app.exception
    assert dict(zip(table(app)["mean"], table(app)["cosine of codes"]))[5] > 0.99


def test_too_many_rows_is_a_message_not_a_traceback(app):
    app.slider(key="sweep_range").set_value((-20.0, 20.0))
    app.select_slider(key="sweep_step").set_value(0.5).run()
    assert not app.exception
    assert any("too many for one page" in e.value for e in app.error)
    app.slider(key="sweep_range").set_value((0.0, 2.0)).run()  # 5 rows: fine again
    assert not app.error and not app.exception
    assert list(table(app)["mean"]) == [0, 0.5, 1, 1.5, 2]
