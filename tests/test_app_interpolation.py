"""Drive the interpolation page headless on the shipped DCGAN: the straight line dips, the great circle does not."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "explorer" / "app.py")


@pytest.fixture(scope="module")
def app():
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page("views/interpolate.py").run()
    assert not at.exception, at.exception
    return at


def metric(at, label: str):
    return next(m for m in at.metric if m.label == label)


def test_default_path_between_seeds_0_and_1(app):
    linear = float(metric(app, "shortest code, linear").value)
    spherical = float(metric(app, "shortest code, spherical").value)
    # nz = 100: the ends have norm about 10 and are nearly perpendicular, so the midpoint is about 10 / sqrt(2).
    assert 6.0 < linear < 8.5 and spherical > 9.0
    assert metric(app, "shortest code, spherical").delta == "no dip"
    assert "%" in metric(app, "shortest code, linear").delta
    # A dip is a loss (red, down); "no dip" is no change, so it has no arrow that could read as a gain.
    linear_delta = metric(app, "shortest code, linear").proto
    spherical_delta = metric(app, "shortest code, spherical").proto
    assert (linear_delta.direction, linear_delta.color) == (linear_delta.DOWN, linear_delta.RED)
    assert spherical_delta.direction == spherical_delta.NONE
    text = app.info[0].value
    assert f"shrinks to {linear:.1f}" in text and "standard deviations below the typical norm" in text
    assert len(app.get("image")) >= 1 and len(app.get("plotly_chart")) == 1


@pytest.mark.parametrize("seed_a,seed_b,steps", [(3, 11, 3), (123456, 42, 12)])
def test_seeds_and_steps(app, seed_a, seed_b, steps):
    app.number_input(key="interp_seed_a").set_value(seed_a).run()
    app.number_input(key="interp_seed_b").set_value(seed_b).run()
    app.slider(key="interp_steps").set_value(steps).run()
    assert not app.exception
    assert app.subheader[0].value == f"From seed {seed_a} to seed {seed_b} in {steps} steps"
    caption = next(c.value for c in app.caption if c.value.startswith("Code norm of each image"))
    linear_norms = caption.split("Linear: ")[1].split(".  ")[0].split("Spherical")[0]
    assert len(linear_norms.split()) == steps
    assert float(metric(app, "shortest code, linear").value) < float(metric(app, "shortest code, spherical").value)


def test_same_seed_twice_is_explained(app):
    app.number_input(key="interp_seed_a").set_value(5).run()
    app.number_input(key="interp_seed_b").set_value(5).run()
    assert not app.exception
    assert any("same seed" in w.value for w in app.warning)
    assert metric(app, "angle between the ends").value == "0°"
