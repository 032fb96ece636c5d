"""A training run whose samples collapsed is called collapsed, first, in its experiment verdict, and its calmer loss
is not read as "steadier"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.logic import run_collapse
from explorer.logic.experiments import ExperimentRun, verdict
from explorer.logic.run_collapse import collapse_against, collapsed_by_scores


def scores(fd: float, precision: float, recall: float, coverage: float | None = None) -> dict:
    model = {"fd": fd, "precision": precision, "recall": recall}
    if coverage is not None:
        model["coverage"] = coverage
    return {"fd_precision_recall": {"model": model, "real_floor": {"fd": 1.0}}}


def history(swing: float, steps: int = 200) -> dict:
    """G's loss around 1.0, jumping by `swing` from step to step."""
    rng = np.random.default_rng(0)
    return {"step": list(range(steps)), "loss_g": (1.0 + swing * rng.standard_normal(steps)).tolist(),
            "loss_d": [1.0] * steps}


def run(name: str, metrics: dict, swing: float) -> ExperimentRun:
    config = {"family": "dcgan", "experiment": {"group": "noise", "run": name, "label": name, "baseline": "normal"}}
    return ExperimentRun(Path(f"/runs/{name}"), config, history(swing), metrics)


@pytest.fixture
def features(monkeypatch):
    """Samples' features without weights: "normal" varied, "uniform" one image 32 times, "calm" varied."""
    rng = torch.Generator().manual_seed(0)
    made = {"normal": torch.randn(32, 16, dtype=torch.float64, generator=rng),
            "calm": torch.randn(32, 16, dtype=torch.float64, generator=rng),
            "uniform": torch.randn(1, 16, dtype=torch.float64, generator=rng).expand(32, 16)
            + 0.001 * torch.randn(32, 16, dtype=torch.float64, generator=rng)}
    monkeypatch.setattr(run_collapse, "run_features", lambda path: made.get(Path(path).name))
    return made


def test_a_collapsed_run_is_named_collapsed_first(features):
    base = run("normal", scores(17.0, 0.97, 0.05, 0.51), swing=0.5)
    collapsed = run("uniform", scores(59.9, 1.0, 0.0, 0.04), swing=0.25)
    text = verdict(collapsed, base)
    assert text.startswith("Collapsed: its 32 samples hold 1 distinct image, 0% as varied as the baseline's")
    assert "less stable, not steadier" in text and "(steadier)" not in text
    assert "swings 2.0x less, because G stopped moving away from its one image" in text
    assert text.index("Collapsed") < text.index("Worse FD")
    # A varied run with the same calmer loss is still "steadier", and not collapsed.
    calm = verdict(run("calm", scores(18.0, 0.97, 0.05, 0.5), swing=0.25), base)
    assert "Collapsed" not in calm and "(steadier)" in calm
    # Against another run, by name.
    assert verdict(collapsed, run("calm", {}, 0.5), against="calm").startswith(
        "Collapsed: its 32 samples hold 1 distinct image, 0% as varied as calm's")


def test_the_more_varied_run_is_the_reference(features):
    assert collapse_against("/runs/uniform", "/runs/normal").collapsed
    assert collapse_against("/runs/normal", "/runs/uniform").share == pytest.approx(1.0)
    assert collapse_against("/runs/missing", "/runs/normal") is None


def test_without_samples_the_scores_decide(monkeypatch):
    monkeypatch.setattr(run_collapse, "run_features", lambda path: None)
    assert collapsed_by_scores(scores(59.9, 1.0, 0.0, 0.04)["fd_precision_recall"]["model"])
    # Recall near zero is common for the small shipped runs whose samples are varied (label flipping: 0.003).
    assert not collapsed_by_scores(scores(24.5, 0.99, 0.003, 0.37)["fd_precision_recall"]["model"])
    assert not collapsed_by_scores({"precision": 0.5, "recall": 0.0})
    base = run("normal", scores(17.0, 0.97, 0.05, 0.51), swing=0.5)
    assert verdict(run("uniform", scores(59.9, 1.0, 0.0, 0.04), 0.25), base).startswith(
        "Collapsed: its samples are realistic but cover almost none of the real images (recall 0.00 at precision "
        "1.00 and coverage 0.04)")
    assert verdict(base, base).startswith("The baseline")


@pytest.mark.skipif(not (Path(__file__).resolve().parent.parent / "checkpoints" / "experiments" / "noise-and-labels"
                         / "uniform-0-1" / "config.json").exists(), reason="the shipped experiment runs are not here")
def test_the_shipped_uniform_noise_run_is_called_collapsed():
    from explorer.logic.experiments import baseline_of, find_groups

    runs = find_groups(Path(__file__).resolve().parent.parent / "checkpoints" / "experiments")["noise-and-labels"]
    base = baseline_of(runs)
    said = {r.name: verdict(r, base) for r in runs}
    assert said["uniform-0-1"].startswith("Collapsed:") and "less stable" in said["uniform-0-1"]
    assert not any(text.startswith("Collapsed") for name, text in said.items() if name != "uniform-0-1")
