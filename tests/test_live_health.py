"""The Train live page's verdicts and curves, from made-up numbers."""

from __future__ import annotations

import numpy as np

from explorer.logic.train_live import (
    STARTING,
    WARMUP,
    curves_figure,
    describe_change,
    diversity_ratio,
    health,
    state_line,
)


def gan_history(steps: int, d_real: float, d_fake: float) -> dict:
    return {"step": list(range(1, steps + 1)), "loss_g": [1.0] * steps, "loss_d": [1.2] * steps,
            "d_real": [d_real] * steps, "d_fake": [d_fake] * steps}


def faces(n: int, seed: int, spread: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (1, 32, 32, 3))
    return np.clip(base + spread * rng.normal(0, 60, (n, 32, 32, 3)), 0, 255).astype(np.uint8)


def test_verdicts_follow_the_numbers():
    assert health(gan_history(STARTING - 1, 0.7, 0.3), None).verdict == "starting"
    healthy = health(gan_history(WARMUP, 0.7, 0.35), 0.9)
    assert healthy.verdict == "healthy" and "D(x) = 0.70, D(G(z)) = 0.35" in healthy.sentence
    assert "90% as varied" in healthy.sentence and healthy.level == "ok"
    assert health(gan_history(WARMUP, 0.95, 0.02), 0.9).verdict == "D winning"
    won = health(gan_history(WARMUP, 0.999, 1e-4), 0.9)
    assert won.verdict == "D has won" and won.level == "error"
    assert health(gan_history(WARMUP, 0.7, 0.3), 0.1).verdict == "mode collapse"
    assert health(gan_history(WARMUP - 1, 0.7, 0.3), 0.1).verdict == "healthy"  # too early to judge variety
    broken = gan_history(WARMUP, 0.7, 0.3)
    broken["loss_g"][-1] = float("nan")
    assert health(broken, 0.9).verdict == "diverged"


def test_the_worker_guard_speaks_first():
    history = gan_history(WARMUP, 0.7, 0.3)
    assert health(history, 0.9, "diverged", "rewound to step 75").sentence == "rewound to step 75"
    assert health(history, 0.9, "d_won").verdict == "D has won"


def test_a_vae_is_judged_by_its_reconstruction_and_variety():
    history = {"step": list(range(1, WARMUP + 1)), "loss": [0.1] * WARMUP, "recon": [0.05] * WARMUP,
               "kl": [30.0] * WARMUP}
    verdict = health(history, 0.7)
    assert verdict.verdict == "healthy" and "reconstruction 0.0500" in verdict.sentence
    assert "less variety" in verdict.sentence


def test_diversity_is_relative_to_real_images():
    real = faces(64, 0, 1.0)
    assert 0.9 < diversity_ratio(real, real) < 1.1
    assert diversity_ratio(faces(64, 1, 0.05), real) < 0.25  # near-identical samples
    assert diversity_ratio(None, real) is None


def test_curves_mark_every_knob_change():
    changes = [{"step": 40, "changes": {"lr_g": [2e-4, 1e-3]}},
               {"step": 70, "changes": {"d_ratio": ["1", "1/2"], "noise": ["N(0,1)", "U(-1,1)"]}}]
    figure = curves_figure(gan_history(100, 0.7, 0.3), changes, "dcgan")
    texts = [a.text for a in figure.layout.annotations]
    assert "lr G 0.0002 → 0.001" in texts and "D updates per G update 1 → 1/2, training noise N(0,1) → U(-1,1)" in texts
    assert sum(1 for s in figure.layout.shapes if s.x0 in (40, 70)) == 4  # a dashed line on both panels
    assert describe_change(changes[0], "vae") == "lr decoder 0.0002 → 0.001"
    assert curves_figure({}, [], "dcgan") is None


def test_state_lines_say_what_happens():
    assert state_line({"state": "running", "step": 12, "steps_per_second": 3.25}) == "Training: step 12, 3.2 steps/s."
    assert "could not start: no images" in state_line({"state": "failed", "message": "no images"})
