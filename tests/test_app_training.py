"""The training replay page (AppTest on the shipped DCGAN) and the maths behind it (loss story, experiment table)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from explorer.logic.real_images import real_images
from explorer.logic.replay import (
    NOT_EVALUATED,
    differing_options,
    experiment_table,
    explain_losses,
    loss_story,
    smooth,
    summarise_metrics,
    value_at,
)
from training.errors import LatentExplorerError

APP = str(Path(__file__).resolve().parent.parent / "explorer" / "app.py")


def game_history(n: int = 500) -> dict:
    """A GAN-like history: G's loss starts high and keeps oscillating, D drifts towards the equilibrium."""
    rng = np.random.default_rng(0)
    t = np.arange(1, n + 1)
    wave = np.sin(t / 15)
    return {
        "step": t.tolist(),
        "loss_g": (3 - t / n + 0.8 * wave + rng.normal(0, 0.3, n)).tolist(),
        "loss_d": (0.6 + t / n * 0.5 - 0.3 * wave + rng.normal(0, 0.1, n)).tolist(),
        "d_real": np.linspace(0.9, 0.65, n).tolist(),
        "d_fake": np.linspace(0.1, 0.35, n).tolist(),
    }


def test_smoothing_keeps_length_and_averages_the_trailing_window():
    assert np.allclose(smooth([1, 2, 3, 4, 5], 2), [1, 1.5, 2.5, 3.5, 4.5])
    assert np.allclose(smooth([4.0, 2.0], 1), [4.0, 2.0])
    assert len(smooth(np.arange(100.0), 500)) == 100


def test_loss_story_numbers_and_explanation():
    history = game_history()
    s = loss_story(history)
    g = np.array(history["loss_g"])
    assert s.rows == 500 and s.steps == 500
    assert s.g_first.mean == pytest.approx(g[:100].mean()) and s.g_last.std == pytest.approx(g[400:].std())
    assert s.gap_first == pytest.approx(0.75, abs=0.01) and s.gap_last == pytest.approx(0.35, abs=0.01)
    assert s.correlation < -0.2  # one player's gain is the other's loss
    text = explain_losses(s)
    assert f"{s.g_first.mean:.2f}" in text and f"{s.g_last.mean:.2f}" in text
    assert "opposite directions" in text and "shrank (0.75 → 0.35)" in text
    assert f"2 ln 2 = {2 * math.log(2):.2f}" in text
    assert value_at(history, "d_real", 250) == pytest.approx(history["d_real"][249])
    assert value_at(history, "loss_g", 0) is None  # step 0 (the untrained snapshot) has no losses


def test_no_story_without_gan_losses():
    assert loss_story({}) is None
    assert loss_story({"step": [1, 2], "recon": [1.0, 0.5], "kl": [0.1, 0.2]}) is None


def test_metrics_summary_reads_the_evaluation_format():
    metrics = {
        "metrics_version": 1, "samples": 5000, "seed": 0, "k": 3, "timings": {"x": 1.0},
        "feature_network": {"name": "toyfaces · featurenet", "feature_dim": 128},
        "fd_precision_recall": {
            "model": {"latent": "N(0, 1)", "fd": 12.5, "precision": 0.7, "recall": 0.6},
            "normal_minus10": {"fd": 300.0, "precision": 0.0, "recall": 0.0},
            "real_floor": {"fd": 1.5, "precision": 0.9, "recall": 0.9},
        },
        "reconstruction": {"mse": 0.04, "images": 100},
    }
    assert summarise_metrics(metrics) == {"FD": 12.5, "precision": 0.7, "recall": 0.6, "FD at N(-10,1)": 300.0,
                                          "FD floor (real)": 1.5, "reconstruction MSE": 0.04,
                                          "feature network": "toyfaces · featurenet"}
    assert summarise_metrics({"fid": {"value": 20.0, "num_samples": 100}}) == {"fid": 20.0}


def write_config(folder: Path, name: str | None, lr_g: float) -> Path:
    """Only config.json: the experiment table never opens the weights."""
    folder.mkdir(parents=True)
    config = {"format_version": 1, "family": "dcgan", "model": {"latent_dim": 100, "g_width": 32},
              "training": {"steps": 5000, "batch_size": 64, "lr_g": lr_g, "noise": {"kind": "normal", "mean": 0.0,
                                                                                    "std": 1.0},
                           "snapshot_steps": [0, 200], "device": "auto"},
              "dataset": {"name": "toyfaces", "num_images": 30000}, "step": 5000}
    if name:
        config["name"] = name
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_experiment_table_compares_options_and_marks_missing_metrics(tmp_path):
    base = write_config(tmp_path / "base", None, 2e-4)
    low = write_config(tmp_path / "low", "low lr", 5e-5)
    (low / "metrics.json").write_text(json.dumps({"fd_precision_recall": {"model": {"fd": 33.3}}}))
    rows = experiment_table([base, low, tmp_path / "missing"])
    assert [r["model"] for r in rows] == ["toyfaces/dcgan", "low lr"]
    assert rows[0]["FD"] == NOT_EVALUATED and rows[1]["FD"] == 33.3 and rows[0]["status"] == "finished"
    assert rows[1]["lr G"] == 5e-5 and rows[0]["batch"] == 64 and rows[0]["training noise"] == "N(0, 1)"
    assert "snapshot_steps" not in rows[0] and "device" not in rows[0]  # bookkeeping, not the experiment
    assert differing_options(rows) == ["FD", "lr G"]
    assert experiment_table([base])[0]["metrics"] == NOT_EVALUATED


def test_real_images_for_toyfaces_a_local_folder_and_a_clear_message_otherwise(tmp_path):
    from PIL import Image

    real = real_images({"name": "toyfaces", "image_size": 16, "source": {"seed": 3, "num_images": 50}}, 4)
    assert real.shape == (4, 3, 16, 16) and real.min() >= -1 and real.max() <= 1
    for i in range(3):
        Image.new("RGB", (48, 40), (40 * i, 90, 200)).save(tmp_path / f"{i}.png")
    local = real_images({"name": "folder", "image_size": 32, "source": {"name": "folder"}}, 16, str(tmp_path))
    assert local.shape == (3, 3, 32, 32)
    with pytest.raises(LatentExplorerError, match="not shipped"):
        real_images({"name": "celeba", "image_size": 64, "source": {"path": str(tmp_path / "gone")}}, 4)
    with pytest.raises(LatentExplorerError, match="imported without its training data"):
        real_images({"name": "imported"}, 4)


@pytest.fixture(scope="module")
def app():
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page("views/replay.py").run()
    # The procedural-faces DCGAN: its real images are drawn by our code, so the real-vs-generated part needs no
    # dataset on disk (the app opens on the CelebA DCGAN, whose faces are not shipped).
    at.sidebar.selectbox(key="bundle_select").set_value("toyfaces · DCGAN").run()
    assert not at.exception, at.exception
    return at


def metric(at, label: str):
    return next(m for m in at.metric if m.label == label)


def test_replay_every_snapshot_step(app):
    slider = app.select_slider(key="replay_step")
    steps = list(slider.options)
    assert steps[0] == "0" and len(steps) >= 3  # snapshots at 0, 200, 1000, ...
    for step in steps:
        app.select_slider(key="replay_step").set_value(int(step)).run()
        assert not app.exception
        assert any(h.value == f"At step {step}" for h in app.subheader)
        if step != "0":
            assert 0 <= float(metric(app, "D(x)").value) <= 1
    assert any("two-player" in m.value or "game" in m.value for m in app.markdown) or app.info


def test_loss_explanation_and_smoothing(app):
    text = next(i.value for i in app.info if "classifier's loss" in i.value)
    first = metric(app, "G loss, first 20%").value.split(" ± ")[0]
    assert f"averaged {first}" in text and "equilibrium" in text
    for window in (2, 500):
        app.slider(key="replay_window").set_value(window).run()
        assert not app.exception
        assert len(app.get("plotly_chart")) == 1
    app.checkbox(key="replay_smooth").set_value(False).run()
    assert not app.exception and app.slider(key="replay_window").disabled


def test_real_vs_generated_and_experiment_table(app):
    app.number_input(key="replay_seed").set_value(9).run()
    assert not app.exception
    assert any(s.value == "Real: toyfaces" for s in app.subheader)
    assert any(c.value.startswith("The first 16 training images") for c in app.caption)
    assert len(app.get("image")) >= 3  # snapshot, real grid, generated grid
    table = app.dataframe[0].value
    assert "dcgan" in set(table["family"]) and "lr G" in table.columns
    evaluated = [c for c in table.columns if c in ("FD", "metrics")]
    assert evaluated  # either the scores or "not evaluated"
