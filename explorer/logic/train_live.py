"""The Train live page's maths: a health verdict from a live run's numbers, its curves with the knob changes marked,
and the words for its state. Pure functions (no Streamlit), so every verdict is tested without a browser."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import torch

from explorer.logic.curves import downsample_curves
from explorer.logic.diagnostics import image_diversity
from explorer.logic.figures import TEXT_PX, loss_figure
from explorer.logic.replay import (
    EQUILIBRIUM_LOSS_D,
    EQUILIBRIUM_LOSS_G,
    GAN_SERIES,
    PROBABILITY_KEYS,
    SERIES_LABELS,
    VAE_SERIES,
    series,
    smooth,
)
from training.loops.divergence import D_WON_THRESHOLD
from training.models import registry

RECENT = 50  # steps the verdict averages over
STARTING = 20  # steps before any verdict: too few numbers to judge
WARMUP = 100  # steps before diversity is judged: the untrained generator draws near-identical grey images
# The sampling page's verdicts: under 25% of the reference diversity is "collapsed", under 80% "reduced".
COLLAPSED, REDUCED = 0.25, 0.8
# D "winning": it calls almost every fake fake and almost every real image real.
D_WINNING_FAKE, D_WINNING_REAL = 0.05, 0.9
KNOB_LABELS = {"lr_g": "lr G", "lr_d": "lr D", "d_ratio": "D updates per G update",
               "label_smoothing": "label smoothing", "label_flip": "label flipping",
               "class_weight": "classification weight", "noise": "training noise", "kl_weight": "KL weight"}
VAE_KNOB_LABELS = {"lr_g": "lr decoder", "lr_d": "lr encoder"}


@dataclass(frozen=True)
class Health:
    verdict: str  # "starting", "healthy", "D winning", "D has won", "mode collapse", "diverged"
    sentence: str

    @property
    def level(self) -> str:
        """How the page shows it: "ok", "warning" or "error"."""
        return {"healthy": "ok", "starting": "ok", "D winning": "warning", "mode collapse": "warning"}.get(
            self.verdict, "error")


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float (N, C, H, W) in [-1, 1], as the models draw."""
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).float().div(127.5).sub(1)


def diversity_ratio(samples: np.ndarray | None, real: np.ndarray | None) -> float | None:
    """Diversity of the fixed-noise samples relative to as many real training images (the sampling page's
    measure: mean pairwise distance after pooling to about 16x16)."""
    if samples is None or real is None or len(samples) < 2 or len(real) < 2:
        return None
    reference = image_diversity(to_tensor(real))
    return image_diversity(to_tensor(samples)) / reference if reference > 0 else None


def _recent(history: dict, key: str) -> np.ndarray:
    values = history.get(key) or []
    return np.asarray(values[-RECENT:], dtype=float)


def health(history: dict, diversity: float | None, event: str | None = None, message: str = "") -> Health:
    """The run's health in one verdict and one sentence with its numbers. `event` is what the worker's divergence
    guard reported ("diverged": a NaN or infinite number; "d_won": D(G(z)) below 1e-3 for a long time)."""
    if event == "diverged":
        return Health("diverged", message or "A number became NaN or infinite: the run exploded.")
    if event == "d_won":
        return Health("D has won", message or "The discriminator rejects every fake: the generator gets no gradient.")
    steps = history.get("step") or []
    if len(steps) < STARTING:
        return Health("starting", f"{len(steps)} steps so far: too early to judge; watch the grid.")
    keys = [k for k in history if k != "step"]
    if any(not np.isfinite(_recent(history, k)).all() for k in keys):
        return Health("diverged", "A loss became NaN or infinite: the run exploded. Lower a learning rate.")
    if diversity is None:
        shown = ""
    elif len(steps) < WARMUP:
        shown = f"; variety is judged from step {WARMUP}"
    else:
        shown = f"; the samples are {diversity:.0%} as varied as real images"
    if "d_fake" in history:
        real, fake = float(_recent(history, "d_real").mean()), float(_recent(history, "d_fake").mean())
        numbers = f"D(x) = {real:.2f}, D(G(z)) = {fake:.2f} over the last {min(RECENT, len(steps))} steps{shown}"
        if fake < D_WON_THRESHOLD:
            return Health("D has won", f"The discriminator rejects every fake ({numbers}): the generator's gradient "
                                       "is vanishing. Pause, lower lr D or add label smoothing, and resume.")
        if fake < D_WINNING_FAKE and real > D_WINNING_REAL:
            return Health("D winning", f"The discriminator is winning clearly ({numbers}): the generator learns "
                                       "slowly. A lower lr D or one D update every other step evens the game.")
    else:
        numbers = (f"reconstruction {float(_recent(history, 'recon').mean()):.4f}, KL "
                   f"{float(_recent(history, 'kl').mean()):.1f} over the last {min(RECENT, len(steps))} steps{shown}")
    if diversity is not None and len(steps) >= WARMUP and diversity < COLLAPSED:
        return Health("mode collapse", f"The fixed-noise samples have collapsed: different codes give nearly the "
                                       f"same image ({numbers}).")
    if diversity is not None and len(steps) >= WARMUP and diversity < REDUCED:
        return Health("healthy", f"Learning, with less variety than the data ({numbers}).")
    return Health("healthy", f"Learning ({numbers}).")


def knob_label(knob: str, family: str) -> str:
    return (VAE_KNOB_LABELS if registry.trains_as_vae(family) else {}).get(knob, KNOB_LABELS.get(knob, knob))


def describe_change(change: dict, family: str) -> str:
    """'lr G 0.0002 → 0.001' for one recorded change (several knobs joined by commas)."""
    parts = [f"{knob_label(k, family)} {_shown(a)} → {_shown(b)}" for k, (a, b) in change["changes"].items()]
    return ", ".join(parts)


def _shown(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def curves_figure(history: dict, changes: list[dict], family: str, window: int = 10) -> go.Figure | None:
    """The loss curves (and D's outputs) smoothed over `window` steps, with a dashed line and a label at every
    knob change; None before the first step."""
    keys = VAE_SERIES if registry.trains_as_vae(family) else {k: v for k, v in SERIES_LABELS.items() if k in GAN_SERIES
                                               or k in ("class_real", "class_fake")}
    curves = series(history, keys)
    if not curves:
        return None
    steps = np.asarray(history["step"], dtype=float)
    # Smoothed at full length, then cut to a few thousand points per curve (lowest and highest per stretch).
    shown = downsample_curves(steps, {k: smooth(v, window) for k, v in curves.items()})
    equilibrium = {} if registry.trains_as_vae(family) else {"loss_d": EQUILIBRIUM_LOSS_D, "loss_g": EQUILIBRIUM_LOSS_G,
                                              "d_real": 0.5}
    fig = loss_figure(shown, SERIES_LABELS, equilibrium=equilibrium, probability_keys=PROBABILITY_KEYS)
    for change in changes:
        fig.add_vline(x=change["step"], line_dash="dash", line_color="#c0392b", row="all", col=1)
        fig.add_annotation(x=change["step"], y=1, yref="paper", text=describe_change(change, family),
                           showarrow=False, xanchor="left", yanchor="bottom", font=dict(size=TEXT_PX, color="#c0392b"))
    return fig


def state_line(status: dict) -> str:
    """What the run is doing, in words."""
    state = status.get("state", "?")
    step = status.get("step", 0)
    if state == "loading":
        return "Preparing the images and the networks…"
    if state == "running":
        return f"Training: step {step}, {status.get('steps_per_second', 0):.1f} steps/s."
    if state == "paused":
        return f"Paused after step {step}. Change a knob, then resume or take one step."
    if state == "saving":
        return f"Saving the run after step {step} as a model bundle…"
    if state == "done":
        return f"Stopped after step {step}."
    if state == "abandoned":
        return f"Ended after step {step}: {status.get('message', '')}."
    if state == "failed":
        return f"The run could not start: {status.get('message', '')}"
    return state


def time_left(status: dict) -> float:
    return max(0.0, float(status.get("time_limit", 0)) - float(status.get("elapsed", 0)))
