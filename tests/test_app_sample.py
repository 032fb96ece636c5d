"""Drive the sampling page headless with AppTest, on the shipped bundle, the way a teacher would."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "explorer" / "app.py")


@pytest.fixture
def app():
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def page_text(at) -> str:
    parts = [e.value for kind in ("error", "warning", "success", "info", "markdown") for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def metric(at, label_start: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(label_start))


def test_default_is_standard_normal_and_healthy(app):
    assert not app.error
    assert "Healthy" in page_text(app)
    assert abs(float(metric(app, "cosine of codes"))) < 0.05
    assert len(app.get("image")) >= 1


def test_preset_n_minus_10_shows_collapse_in_numbers_and_words(app):
    app.button(key="preset_N(-10,1)").click().run()
    assert not app.exception
    text = page_text(app)
    assert "Collapsed" in text and "nearly parallel" in text
    assert abs(float(metric(app, "cosine of codes")) - 0.99) < 0.01
    assert float(metric(app, "code norm")) > 90
    assert float(metric(app, "norm vs prior").removesuffix(" std")) > 50


def test_the_active_preset_is_marked(app):
    def marked() -> list[str]:
        return [b.label for b in app.button if b.key.startswith("preset_") and b.proto.type == "primary"]

    assert marked() == ["N(0,1)"]
    app.button(key="preset_N(-10,1)").click().run()
    assert marked() == ["N(-10,1)"]
    app.slider(key="mean").set_value(-9.5).run()  # no preset any more
    assert marked() == []
    app.radio(key="kind").set_value("Uniform").run()
    app.slider(key="low").set_value(-1.0).run()
    app.slider(key="high").set_value(1.0).run()  # reached by hand: still the preset
    assert marked() == ["U(-1,1)"]


def test_metric_labels_fit_a_narrow_column_and_explain_themselves_in_help(app):
    assert len(app.metric) >= 6
    for m in app.metric:
        assert len(m.label) <= 17, m.label  # longer labels were cut off at 150% zoom ("mean pairwise cosi…")
        assert len(m.proto.help) > len(m.label), m.label


def test_preset_uniform_shows_shared_direction(app):
    app.button(key="preset_U(0,1)").click().run()
    assert not app.exception
    assert abs(float(metric(app, "cosine of codes")) - 0.75) < 0.05
    assert "common direction" in page_text(app)


def test_preset_symmetric_uniform_and_sample_count(app):
    app.button(key="preset_U(-1,1)").click().run()
    app.slider(key="n").set_value(128).run()
    assert not app.exception
    assert abs(float(metric(app, "cosine of codes"))) < 0.05
    assert "128 samples" in "\n".join(h.value for h in app.subheader)


def test_invalid_settings_give_a_message_not_a_traceback(app):
    app.slider(key="std").set_value(0.0).run()
    assert not app.exception
    assert any("std > 0" in e.value for e in app.error)
    app.radio(key="kind").set_value("Uniform").run()
    app.slider(key="low").set_value(2.0).run()
    app.slider(key="high").set_value(1.0).run()
    assert not app.exception
    assert any("low < high" in e.value for e in app.error)
    app.slider(key="high").set_value(3.0).run()  # the page recovers once the input is valid again
    assert not app.exception
    assert not any("low < high" in e.value for e in app.error)
    assert len(app.get("image")) >= 1


def test_single_sample_is_explained(app):
    app.slider(key="n").set_value(1).run()
    assert not app.exception
    assert any("at least 2 samples" in w.value for w in app.warning)


def test_a_busy_server_shows_a_first_block_and_all_samples_on_request(monkeypatch):
    """With a long queue the page computes one block of 16 samples first, says so, and shows all on request."""
    from explorer.core import torch_worker
    from explorer.logic.sample import BLOCK_ROWS, BUSY_PREVIEW_S

    monkeypatch.setattr(torch_worker, "expected_wait", lambda: BUSY_PREVIEW_S + 5)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    headings = "\n".join(h.value for h in at.subheader)
    assert f"{BLOCK_ROWS} of 64 samples" in headings
    assert f"Showing the first {BLOCK_ROWS} of your 64" in page_text(at) and "Healthy" in page_text(at)
    at.button(key="sample_all").click().run()
    assert not at.exception, at.exception
    assert "64 samples from" in "\n".join(h.value for h in at.subheader)
    assert not any("Showing the first" in str(i.value) for i in at.info)
    # A new setting while still busy: a first block again.
    at.slider(key="n").set_value(40).run()
    assert f"{BLOCK_ROWS} of 40 samples" in "\n".join(h.value for h in at.subheader)


def test_shown_count_rules():
    from explorer.logic.sample import BLOCK_ROWS, BUSY_PREVIEW_S, shown_count

    assert shown_count(64, 0.0, False) == 64
    assert shown_count(64, BUSY_PREVIEW_S + 1, False) == BLOCK_ROWS
    assert shown_count(64, BUSY_PREVIEW_S + 1, True) == 64
    assert shown_count(5, BUSY_PREVIEW_S + 1, False) == 5


def test_the_busy_threshold_can_be_set_or_turned_off():
    import math

    from explorer.core.blocks import PREVIEW_ENV, preview_threshold
    from explorer.logic.sample import BUSY_PREVIEW_S

    assert preview_threshold({}) == BUSY_PREVIEW_S
    assert preview_threshold({PREVIEW_ENV: "4"}) == 4.0
    assert preview_threshold({PREVIEW_ENV: "off"}) == math.inf
    assert preview_threshold({PREVIEW_ENV: "soon"}) == BUSY_PREVIEW_S
    assert preview_threshold({PREVIEW_ENV: "-1"}) == BUSY_PREVIEW_S
