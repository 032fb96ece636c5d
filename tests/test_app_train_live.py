"""The Train live page through AppTest: start a tiny run, watch the step counter and the grid change, pause, change
the learning rate, resume, stop, and open the result on the sampling page; the queue and missing-data messages."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from training.live import manager as live_manager
from training.live.manager import LiveRuns
from training.live.settings import LiveSettings

APP = str(Path(__file__).resolve().parent.parent / "explorer" / "app.py")
DEADLINE = 180  # seconds a wait may take on a busy machine before the test gives up (nothing asserts on time)
TINY = {"live_width": 8, "live_batch_size": 16, "live_num_images": 256, "live_latent_dim": 16}


@pytest.fixture
def runs(tmp_path, monkeypatch):
    manager = LiveRuns(limit=1, threads=1, time_limit=600, heartbeat_timeout=30, root=tmp_path / "live")
    monkeypatch.setattr(live_manager, "_MANAGER", manager)
    yield manager
    manager.shutdown()


def open_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("views/train_live.py").run()
    assert not at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def grid(at: AppTest) -> str | None:
    images = at.get("image")
    return images[0].proto.imgs[0].url if images else None


def rerun_until(at: AppTest, condition, what: str):
    end = time.time() + DEADLINE
    while time.time() < end:
        at.run()
        assert not at.exception, at.exception
        if condition(at):
            return
        time.sleep(0.5)
    pytest.fail(f"gave up waiting for {what}; the page shows {metrics(at)}")


@pytest.mark.slow
def test_start_watch_pause_change_resume_stop_and_open(runs):
    at = open_page()
    for key, value in TINY.items():
        at.select_slider(key=key).set_value(value)
    at.button(key="live_start").click().run()
    assert not at.exception and not at.error
    rerun_until(at, lambda a: int(metrics(a).get("step", 0)) >= 2 and grid(a), "the first steps")
    first_step, first_grid = int(metrics(at)["step"]), grid(at)
    rerun_until(at, lambda a: int(metrics(a)["step"]) > first_step + 2 and grid(a) != first_grid, "a new grid")
    assert at.select_slider(key="live_lr_g").disabled  # knobs wait for a pause
    assert "Health:" in " ".join(s.value for s in [*at.success, *at.warning, *at.error])

    at.button(key="live_pause").click().run()
    assert metrics(at)["state"] == "paused" and not at.select_slider(key="live_lr_g").disabled
    paused_at = int(metrics(at)["step"])
    at.select_slider(key="live_lr_g").set_value(1e-3).run()
    at.button(key="live_resume").click().run()
    assert metrics(at)["state"] == "running"
    rerun_until(at, lambda a: int(metrics(a)["step"]) > paused_at + 1, "steps after resuming")
    assert any(f"After step {paused_at}: lr G 0.0002 → 0.001" in c.value for c in at.caption)

    at.button(key="live_stop").click().run()
    assert metrics(at)["state"] == "done" and not at.exception
    saved = [s.value for s in at.success if "Saved as the model bundle" in s.value]
    assert saved and runs.get(at.session_state["live_owner"]).ended
    at.button(key="live_open_sample").click().run()
    assert not at.exception and at.title[0].value == "Sample the latent space"
    assert at.sidebar.selectbox(key="bundle_select").value.startswith("live · toyfaces DCGAN")
    assert at.get("image")  # the sampling page draws the live run's samples


@pytest.mark.slow
def test_a_paused_run_draws_its_curves_once_per_version_of_its_history(runs, monkeypatch):
    from explorer.logic import train_live

    drawn = []
    original = train_live.curves_figure
    monkeypatch.setattr(train_live, "curves_figure", lambda *args, **kwargs: drawn.append(1) or original(*args,
                                                                                                        **kwargs))
    at = open_page()
    for key, value in TINY.items():
        at.select_slider(key=key).set_value(value)
    at.button(key="live_start").click().run()
    rerun_until(at, lambda a: int(metrics(a).get("step", 0)) >= 2 and a.get("plotly_chart"), "the first curves")
    at.button(key="live_pause").click().run()
    rerun_until(at, lambda a: metrics(a)["state"] == "paused", "the pause")
    drawn.clear()
    for _ in range(3):  # clicks on a paused run: its history file does not change
        at.run()
        assert not at.exception, at.exception
    assert len(drawn) <= 1 and at.get("plotly_chart")
    at.button(key="live_stop").click().run()


@pytest.mark.slow
def test_a_second_tab_waits_in_the_queue(runs):
    runs.submit("another tab", LiveSettings(width=8, batch_size=16, num_images=256, latent_dim=16),
                alive=lambda: True)
    at = open_page()
    for key, value in TINY.items():
        at.select_slider(key=key).set_value(value)
    at.button(key="live_start").click().run()
    assert not at.exception
    assert any("number 1 in the queue" in i.value for i in at.info)
    assert at.selectbox(key="live_dataset").disabled
    at.button(key="live_leave").click().run()
    assert runs.position(at.session_state["live_owner"]) is None and at.button(key="live_start")
    runs.stop("another tab")


def test_fashion_mnist_says_how_to_install_it(runs, monkeypatch, tmp_path):
    from training.data import fashion_mnist

    monkeypatch.setattr(fashion_mnist, "DEFAULT_ROOTS", (tmp_path / "nowhere",))
    at = open_page()
    at.selectbox(key="live_dataset").set_value("fashion-mnist").run()
    assert not at.exception
    assert any("apt-get install dataset-fashion-mnist" in w.value for w in at.warning)


@pytest.mark.slow
def test_a_missing_dataset_says_what_to_do_and_a_vae_opens_in_the_replay(runs):
    at = open_page()
    at.selectbox(key="live_dataset").set_value("celeba").run()
    at.button(key="live_start").click().run()
    rerun_until(at, lambda a: any("could not start" in c.value for c in a.caption), "the refusal")
    assert any("Folder of your datasets" in c.value for c in at.caption) and metrics(at)["state"] == "failed"
    at.button(key="live_clear").click().run()
    at.selectbox(key="live_dataset").set_value("toyfaces")
    at.radio(key="live_family").set_value("vae").run()
    for key, value in TINY.items():
        at.select_slider(key=key).set_value(value)
    at.select_slider(key="live_kl_weight").set_value(1e-3)
    at.button(key="live_start").click().run()
    rerun_until(at, lambda a: int(metrics(a).get("step", 0)) >= 2, "the VAE's first steps")
    at.button(key="live_stop").click().run()
    at.button(key="live_open_replay").click().run()
    assert not at.exception and at.title[0].value == "Training replay"
    assert at.sidebar.selectbox(key="bundle_select").value.startswith("live · toyfaces VAE")
