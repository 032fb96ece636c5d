"""Training replay: loss curves read as a two-player game, and the table of a dataset's experiments."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.logic.curves import DRAWN_POINTS, downsample_curves
from training.bundle import read_config, read_metrics
from training.errors import LatentExplorerError

# History keys the loss plot knows, in display order, with their labels.
GAN_SERIES = {"loss_g": "G loss", "loss_d": "D loss", "d_real": "D(x)", "d_fake": "D(G(z))"}
VAE_SERIES = {"loss": "VAE loss", "recon": "reconstruction", "kl": "KL"}
# What the conditional GAN and InfoGAN loops add.
EXTRA_SERIES = {"class_real": "class loss (real)", "class_fake": "class loss (fake)",
                "acc_real": "class accuracy (real)", "acc_fake": "class accuracy (fake)",
                "loss_info": "info loss", "info_acc": "info accuracy"}
SERIES_LABELS = {**GAN_SERIES, **VAE_SERIES, **EXTRA_SERIES}
# Curves that are probabilities or accuracies (drawn on their own 0..1 panel).
PROBABILITY_KEYS = ("d_real", "d_fake", "acc_real", "acc_fake", "info_acc")
# At the game's equilibrium D outputs 0.5 everywhere: D's BCE loss is 2 ln 2, G's non-saturating loss ln 2.
EQUILIBRIUM_LOSS_D = 2 * math.log(2)
EQUILIBRIUM_LOSS_G = math.log(2)
NOT_EVALUATED = "not evaluated"


def smooth(values: np.ndarray | list[float], window: int) -> np.ndarray:
    """Trailing moving average over `window` steps (shorter at the start, so the curve keeps its length)."""
    x = np.asarray(values, dtype=float)
    if window <= 1 or x.size == 0:
        return x
    csum = np.cumsum(np.insert(x, 0, 0.0))
    idx = np.arange(1, x.size + 1)
    start = np.maximum(idx - window, 0)
    return (csum[idx] - csum[start]) / (idx - start)


def series(history: dict, keys: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """The curves of a history as float arrays the length of history['step']: the given keys, or every
    numeric curve (known ones first, in SERIES_LABELS order)."""
    steps = history.get("step") or []
    if keys is None:
        keys = {**SERIES_LABELS, **{k: k for k in history if k != "step" and k not in SERIES_LABELS}}
    out = {}
    for k in keys:
        values = history.get(k)
        if isinstance(values, list) and len(values) == len(steps) > 0:
            try:
                out[k] = np.asarray(values, dtype=float)
            except (TypeError, ValueError):
                continue
    return out


@dataclass(frozen=True)
class Window:
    """Mean and spread of one curve over a slice of training."""

    mean: float
    std: float

    @staticmethod
    def of(x: np.ndarray) -> Window:
        return Window(float(np.mean(x)), float(np.std(x)))


@dataclass(frozen=True)
class LossStory:
    steps: int  # last step in the history
    rows: int
    fraction: float
    g_first: Window
    g_last: Window
    d_first: Window
    d_last: Window
    real_first: Window  # D(x)
    real_last: Window
    fake_first: Window  # D(G(z))
    fake_last: Window
    correlation: float  # between the smoothed G and D losses (negative: one wins what the other loses)

    @property
    def gap_first(self) -> float:
        return self.real_first.mean - self.fake_first.mean

    @property
    def gap_last(self) -> float:
        return self.real_last.mean - self.fake_last.mean


def loss_story(history: dict, fraction: float = 0.2, smooth_window: int = 50) -> LossStory | None:
    """The numbers behind the explanation; None when the history has no GAN losses (or too few rows)."""
    curves = series(history, GAN_SERIES)
    if set(curves) != set(GAN_SERIES) or len(curves["loss_g"]) < 10:
        return None
    n = len(curves["loss_g"])
    k = max(2, int(round(n * fraction)))
    first, last = slice(0, k), slice(n - k, n)

    def windows(key: str) -> tuple[Window, Window]:
        return Window.of(curves[key][first]), Window.of(curves[key][last])

    g, d = smooth(curves["loss_g"], smooth_window), smooth(curves["loss_d"], smooth_window)
    corr = float(np.corrcoef(g, d)[0, 1]) if np.std(g) > 0 and np.std(d) > 0 else float("nan")
    return LossStory(int(history["step"][-1]), n, fraction, *windows("loss_g"), *windows("loss_d"),
                     *windows("d_real"), *windows("d_fake"), corr)


def explain_losses(s: LossStory) -> str:
    """Why these curves do not fall like a classifier's, with this run's numbers."""
    pct = f"{s.fraction:.0%}"
    change = (s.g_last.mean - s.g_first.mean) / abs(s.g_first.mean) if s.g_first.mean else 0.0
    if change < -0.25:
        trend = f"fell by {-change:.0%}"
    elif change > 0.25:
        trend = f"rose by {change:.0%}"
    else:
        trend = "stayed about level"
    spread = s.g_last.std / s.g_first.std if s.g_first.std > 0 else float("nan")
    parts = [
        "A classifier's loss falls steadily towards 0 because its target never moves. A GAN's two losses are a "
        "game score: each network is judged by the other, and both keep improving.",
        f"Here the generator's loss averaged {s.g_first.mean:.2f} (± {s.g_first.std:.2f}) over the first {pct} of "
        f"the {s.steps} steps and {s.g_last.mean:.2f} (± {s.g_last.std:.2f}) over the last {pct}: it {trend}, and "
        f"its spread at the end is still {spread:.0%} of its spread at the start. The discriminator's loss went "
        f"from {s.d_first.mean:.2f} (± {s.d_first.std:.2f}) to {s.d_last.mean:.2f} (± {s.d_last.std:.2f}).",
    ]
    if math.isfinite(s.correlation) and s.correlation < -0.2:
        parts.append(f"The smoothed G and D losses move in opposite directions (correlation {s.correlation:.2f}): "
                     "when one network gains, the other loses.")
    change_gap = abs(s.gap_last) - abs(s.gap_first)
    movement = ("shrank" if change_gap < -0.02 else "grew" if change_gap > 0.02 else "hardly changed")
    parts.append(
        f"D(x), D's average verdict on real images, went from {s.real_first.mean:.2f} to {s.real_last.mean:.2f}, and "
        f"D(G(z)), its verdict on fakes, from {s.fake_first.mean:.2f} to {s.fake_last.mean:.2f}: the gap between "
        f"them {movement} ({s.gap_first:.2f} → {s.gap_last:.2f}). At the game's equilibrium D could not tell them "
        f"apart and would say 0.5 for both (D loss 2 ln 2 = {EQUILIBRIUM_LOSS_D:.2f}, G loss ln 2 = "
        f"{EQUILIBRIUM_LOSS_G:.2f})."
    )
    if s.real_last.mean > 0.8 and s.fake_last.mean < 0.2:
        parts.append(f"This discriminator is still winning clearly (it gives fakes {s.fake_last.mean:.2f}), which is "
                     f"why G's loss stays high at {s.g_last.mean:.2f}; only the snapshots show whether the samples "
                     "improve.")
    elif abs(s.real_last.mean - 0.5) < 0.15 and abs(s.fake_last.mean - 0.5) < 0.15:
        parts.append("Both verdicts sit near 0.5: the players are close to a stalemate, which is what a good GAN "
                     "run looks like, and not a loss near 0.")
    parts.append("So judge progress by the snapshots, not by whether the loss goes down.")
    return " ".join(parts)


@dataclass(frozen=True)
class VAEStory:
    steps: int
    fraction: float
    recon_first: Window
    recon_last: Window
    kl_first: Window
    kl_last: Window


def vae_story(history: dict, fraction: float = 0.2) -> VAEStory | None:
    curves = series(history, VAE_SERIES)
    if "recon" not in curves or "kl" not in curves or len(curves["recon"]) < 10:
        return None
    n = len(curves["recon"])
    k = max(2, int(round(n * fraction)))
    return VAEStory(int(history["step"][-1]), fraction, Window.of(curves["recon"][:k]), Window.of(curves["recon"][-k:]),
                    Window.of(curves["kl"][:k]), Window.of(curves["kl"][-k:]))


def explain_vae_losses(s: VAEStory) -> str:
    """A VAE's losses do behave like a classifier's: one network, one fixed target. Said with this run's numbers."""
    pct = f"{s.fraction:.0%}"
    drop = 1 - s.recon_last.mean / s.recon_first.mean if s.recon_first.mean else 0.0
    parts = [f"A VAE is one model with a fixed target (rebuild the input, keep the codes close to N(0,1)), so its "
             f"loss falls like a classifier's: the reconstruction error went from {s.recon_first.mean:.4f} over the "
             f"first {pct} of the {s.steps} steps to {s.recon_last.mean:.4f} over the last {pct} "
             f"({drop:.0%} lower)."]
    if s.kl_last.mean > s.kl_first.mean:
        parts.append(f"The KL term rose from {s.kl_first.mean:.2f} to {s.kl_last.mean:.2f}: the encoder spends more "
                     "of the latent space to reconstruct better, the trade-off the KL coefficient sets.")
    else:
        parts.append(f"The KL term went from {s.kl_first.mean:.2f} to {s.kl_last.mean:.2f}.")
    return " ".join(parts)


@dataclass(frozen=True)
class HistoryCurves:
    """A history's curves as float arrays against its steps, converted from the JSON lists once: a long history
    took seconds to convert, and the page asked for the conversion several times a rerun."""

    steps: np.ndarray
    curves: dict[str, np.ndarray]

    @staticmethod
    def of(history: dict) -> HistoryCurves:
        curves = series(history)
        steps = np.asarray(history["step"], dtype=float) if curves else np.zeros(0)
        return HistoryCurves(steps, curves)

    def value_at(self, key: str, step: int, window: int = 1) -> float | None:
        """The curve's value at the row nearest to `step`, averaged over the `window` rows up to it (the
        trailing average `smooth` draws); None before the first row."""
        values = self.curves.get(key)
        if values is None or self.steps.size == 0 or step < self.steps[0]:
            return None
        i = int(np.argmin(np.abs(self.steps - step)))
        return float(np.mean(values[max(0, i + 1 - max(window, 1)):i + 1]))

    def drawn(self, window: int = 1, max_points: int = DRAWN_POINTS, first: int | None = None
              ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The curves (the `first` ones, or all) smoothed over `window` steps, then cut to at most `max_points`
        points each for the chart."""
        chosen = list(self.curves)[:first]
        return downsample_curves(self.steps, {k: smooth(self.curves[k], window) for k in chosen}, max_points)


def value_at(history: dict, key: str, step: int, window: int = 1) -> float | None:
    """A curve's (smoothed) value at the history row nearest to `step`; None before the first row."""
    return HistoryCurves.of(history).value_at(key, step, window)


# Training options that describe bookkeeping, not the experiment.
_SKIP_OPTIONS = {"snapshot_steps", "checkpoint_every", "device", "device_used", "images_per_second",
                 "precision", "channels_last"}  # how fast a run went, not what it learned
_OPTION_LABELS = {
    "steps": "steps", "batch_size": "batch", "lr_g": "lr G", "lr_d": "lr D", "beta1": "beta1", "beta2": "beta2",
    "seed": "seed", "noise": "training noise", "seconds": "train seconds", "latent_dim": "latent dim",
    "g_width": "G width", "d_width": "D width", "g_activation": "G activation", "num_images": "images",
}
_METRIC_META = ("num_", "samples", "seed", "version", "count", "seconds", "step")


def _label(key: str) -> str:
    return _OPTION_LABELS.get(key, key.replace("_", " "))


def _option_value(value: object) -> object:
    if isinstance(value, dict) and "kind" in value:
        from training.latent.priors import LatentDistribution

        try:
            return LatentDistribution.from_json(value).label
        except (LatentExplorerError, TypeError):
            return json.dumps(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return value


def flatten_metrics(metrics: dict, prefix: str = "") -> dict[str, float]:
    """Numeric results from a metrics.json of unknown layout, named by their path ({"fid": {"value": 12}} ->
    "fid"); bookkeeping numbers (sample counts, seeds, versions, timings) are left out."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if str(key) in ("timings", "versions", "bundle", "feature_network", "real"):
            continue
        name = f"{prefix}{key}" if key != "value" else prefix.rstrip(".")
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            if key != "value" and any(m in str(key) for m in _METRIC_META):
                continue
            if name:
                out[name] = float(value)
        elif isinstance(value, dict):
            out.update(flatten_metrics(value, f"{name}."))
    return out


# Rows of training.metrics.evaluate's "fd_precision_recall" table and the column names we give them.
_FD_ROWS = {"model": "", "normal_minus10": " at N(-10,1)", "uniform_0_1": " at U(0,1)", "real_floor": " floor (real)"}


def summarise_metrics(metrics: dict) -> dict[str, float | str]:
    """The comparable numbers of one metrics.json: FD / precision / recall of the model (and the references),
    attribute accuracy, reconstruction MSE, and the feature network they were computed with."""
    if not isinstance(metrics, dict) or not metrics:
        return {}
    table = metrics.get("fd_precision_recall")
    if not isinstance(table, dict):
        return flatten_metrics(metrics)
    out: dict[str, float | str] = {}
    for row, suffix in _FD_ROWS.items():
        values = table.get(row)
        if not isinstance(values, dict):
            continue
        names = ("fd", "precision", "recall") if row == "model" else ("fd",)
        for name in names:
            if isinstance(values.get(name), (int, float)):
                out[("FD" if name == "fd" else name) + suffix] = float(values[name])
    attributes = (metrics.get("attribute_accuracy") or {}).get("attributes") or {}
    for name, row in attributes.items():
        if isinstance(row, dict) and isinstance(row.get("accuracy"), (int, float)):
            out[f"accuracy {name}"] = float(row["accuracy"])
    reconstruction = metrics.get("reconstruction") or {}
    if isinstance(reconstruction.get("mse"), (int, float)):
        out["reconstruction MSE"] = float(reconstruction["mse"])
    network = metrics.get("feature_network") or {}
    if network.get("name"):
        out["feature network"] = str(network["name"])
    return out


def experiment_table(paths: list[str | Path]) -> list[dict[str, object]]:
    """One row per bundle: its name, the metrics in its metrics.json (or "not evaluated"), and every training
    and model option. Reads config and metrics only, never the weights. Unreadable bundles are skipped."""
    records = []
    for path in paths:
        try:
            config = read_config(path)
        except LatentExplorerError:
            continue
        try:
            metrics = summarise_metrics(read_metrics(path))
        except (LatentExplorerError, AttributeError, TypeError):
            metrics = {}
        options: dict[str, object] = {"family": config["family"]}
        for section in ("training", "model"):
            for key, value in (config.get(section) or {}).items():
                if key not in _SKIP_OPTIONS:
                    options[_label(key)] = _option_value(value)
        if "num_images" in config["dataset"]:
            options[_label("num_images")] = config["dataset"]["num_images"]
        options["status"] = run_status(config)
        name = config.get("name") or f"{config['dataset'].get('name', '?')}/{config['family']}"
        records.append((name, metrics, options))
    metric_names = list(dict.fromkeys(m for _, metrics, _ in records for m in metrics))
    rows = []
    for name, metrics, options in records:
        row: dict[str, object] = {"model": name}
        for m in metric_names:
            value = metrics.get(m, NOT_EVALUATED)
            row[m] = round(value, 4) if isinstance(value, float) else value
        if not metric_names:
            row["metrics"] = NOT_EVALUATED
        row.update(options)
        rows.append(row)
    return rows


def run_status(config: dict) -> str:
    """"finished", or where a run stopped early (diverged, the discriminator won, or interrupted)."""
    planned = (config.get("training") or {}).get("steps")
    step = config.get("step")
    if not isinstance(planned, int) or not isinstance(step, int):
        return "unknown"
    return "finished" if step >= planned else f"stopped at step {step} of {planned}"


def differing_options(rows: list[dict[str, object]]) -> list[str]:
    """The columns whose value differs between bundles: what each experiment changed."""
    if len(rows) < 2:
        return []
    keys = [k for k in rows[0] if k != "model"]
    return [k for k in keys if len({json.dumps(r.get(k), default=str) for r in rows}) > 1]
