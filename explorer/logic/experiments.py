"""The Experiments page's numbers: the shipped experiment groups, each run's metrics and divergence record, and a
verdict per run computed from those numbers against its group's baseline (never written by hand)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from explorer.logic.replay import SERIES_LABELS, series, smooth, summarise_metrics
from explorer.logic.run_collapse import collapse_against, collapsed_by_scores
from training.bundle import (
    EXPERIMENT_KEY,
    Bundle,
    config_problems,
    find_bundles,
    read_config,
    read_history,
    read_metrics,
)
from training.errors import LatentExplorerError
from training.loops.divergence import D_WON_THRESHOLD
from training.models import registry
from training.recipes.experiments import GROUPS

# Relative differences smaller than these are not worth a sentence.
RATE_TOLERANCE = 0.05  # precision, recall, attribute accuracy (absolute, on a 0..1 scale)
MSE_TOLERANCE = 0.05  # reconstruction MSE (relative)
PAGE_TITLES = {"sample": "Sample the latent space", "sweep": "Mean sweep", "attributes": "Attributes",
               "vae_map": "VAE latent map", "compare": "VAE vs GAN", "interpolate": "Interpolation",
               "replay": "Training replay"}
HIDDEN_GAP = 0.3  # D's classifier reads the attributes in this much more of the fakes than the feature network
SWING_RATIO = 1.5  # G's loss swings this much more (or less) than the baseline's: "steadier" / "less steady"


@dataclass
class ExperimentRun:
    """One run of a group, read without its weights: config, history, metrics, snapshots."""

    path: Path
    config: dict
    history: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    title: str | None = None  # how a model from outside the group is named (an imported generator's display name)

    @property
    def experiment(self) -> dict:
        return self.config.get(EXPERIMENT_KEY) or {}

    @property
    def name(self) -> str:
        return str(self.experiment.get("run") or self.path.name)

    @property
    def label(self) -> str:
        return str(self.title or self.experiment.get("label") or self.name)

    @property
    def is_baseline(self) -> bool:
        return self.name == self.experiment.get("baseline")

    @property
    def stopped(self) -> dict | None:
        stopped = self.experiment.get("stopped")
        return stopped if isinstance(stopped, dict) else None

    def bundle(self) -> Bundle:
        return Bundle(path=self.path, config=self.config, networks={}, history=self.history, metrics=self.metrics)

    def snapshots(self) -> dict[int, Path]:
        return self.bundle().snapshot_paths()


def _read_optional(read: Callable[[Path], dict], path: Path) -> dict:
    """A run's history or metrics, with the checks load_bundle makes; {} when the file is missing or refused (the
    run is still listed: its config was readable)."""
    try:
        return read(path)
    except LatentExplorerError:
        return {}


def read_run(path: str | Path, title: str | None = None) -> ExperimentRun:
    path = Path(path)
    return ExperimentRun(path, read_config(path), _read_optional(read_history, path),
                         _read_optional(read_metrics, path), title)


def scored_outsiders(models: dict[str, str]) -> list[ExperimentRun]:
    """Models from outside a group (display name -> folder: the generators a visitor imported and scored) as runs
    the group's own can be compared with; the unreadable and the unscored are left out."""
    found = []
    for name, path in models.items():
        try:
            run = read_run(path, title=name)
        except LatentExplorerError:
            continue
        if _fd(run.metrics) is not None:
            found.append(run)
    return found


def find_groups(root: str | Path) -> dict[str, list[ExperimentRun]]:
    """Group name -> its runs (baseline first, then in the recipe's order) for every experiment bundle under root."""
    groups: dict[str, list[ExperimentRun]] = {}
    for path in find_bundles(root):
        try:
            run = read_run(path)
        except LatentExplorerError:
            continue
        if run.experiment.get("group"):
            groups.setdefault(str(run.experiment["group"]), []).append(run)
    known = list(GROUPS)

    def order(run: ExperimentRun) -> tuple[int, int, str]:
        recipe = GROUPS.get(run.experiment["group"])
        names = [r.name for r in recipe.runs] if recipe else []
        return (0 if run.is_baseline else 1, names.index(run.name) if run.name in names else len(names), run.name)

    return {g: sorted(runs, key=order) for g, runs in sorted(groups.items(), key=lambda kv: (
        known.index(kv[0]) if kv[0] in known else len(known), kv[0]))}


def refused_runs(root: str | Path) -> dict[str, str]:
    """Folder -> the one sentence saying why, for every bundle under root whose config cannot be read (an
    experiment record of the wrong shape, say): find_groups leaves them out, the page says so."""
    return config_problems(find_bundles(root))


def group_title(runs: list[ExperimentRun]) -> str:
    return str(runs[0].experiment.get("title") or runs[0].experiment.get("group"))


def baseline_of(runs: list[ExperimentRun]) -> ExperimentRun | None:
    return next((r for r in runs if r.is_baseline), None)


# --- the numbers of one run ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Divergence:
    """What the history says about blowing up: the guard's stop, non-finite values, the discriminator winning."""

    stopped_at: int | None
    reason: str | None
    last_step: int | None
    all_finite: bool
    lowest_d_fake: float | None
    longest_d_won: int  # most consecutive steps with D(G(z)) below the guard's threshold

    def sentence(self) -> str:
        if self.stopped_at is not None:
            return f"diverged at step {self.stopped_at}"
        if not self.all_finite:
            return "non-finite losses in its history"
        if self.last_step is None:
            return "no history"
        won = (f"; D(G(z)) lowest {self.lowest_d_fake:.2g}, below {D_WON_THRESHOLD:g} for at most "
               f"{self.longest_d_won} steps in a row" if self.lowest_d_fake is not None else "")
        return f"no: finite losses through step {self.last_step}{won}"


def divergence(run: ExperimentRun) -> Divergence:
    curves = series(run.history)
    steps = run.history.get("step") or []
    finite = all(bool(np.isfinite(v).all()) for v in curves.values())
    d_fake = curves.get("d_fake")
    longest = current = 0
    if d_fake is not None:
        for value in d_fake:
            current = current + 1 if value < D_WON_THRESHOLD else 0
            longest = max(longest, current)
    stopped = run.stopped or {}
    return Divergence(stopped.get("step"), stopped.get("message"), int(steps[-1]) if steps else None, finite,
                      float(np.nanmin(d_fake)) if d_fake is not None and d_fake.size else None, longest)


def fd_noise(metrics: dict) -> tuple[float | None, str]:
    """How big an FD difference sampling alone can make, and where that number comes from: the metric's own
    uncertainty when metrics.json has one, else the FD between two sets of real images (the floor), which is
    what a perfect model would score at this sample size."""
    model = (metrics.get("fd_precision_recall") or {}).get("model") or {}
    for key in ("fd_ci", "fd_interval"):
        interval = model.get(key)
        if isinstance(interval, (list, tuple)) and len(interval) == 2 and all(
                isinstance(v, (int, float)) for v in interval):
            return abs(float(interval[1]) - float(interval[0])) / 2, "half its confidence interval"
    for key in ("fd_std", "fd_se"):
        if isinstance(model.get(key), (int, float)):
            return 2 * float(model[key]), "twice its standard error"
    floor = ((metrics.get("fd_precision_recall") or {}).get("real_floor") or {}).get("fd")
    if isinstance(floor, (int, float)):
        return float(floor), "the FD of real against real images at this sample size"
    return None, ""


def g_loss_swing(run: ExperimentRun) -> float | None:
    """Standard deviation of G's loss over the second half of training, around its own 20-step average: how
    much it jumps from step to step, the "steadiness" the labs looked at."""
    g = series(run.history).get("loss_g")
    if g is None or g.size < 40:
        return None
    half = g[g.size // 2:]
    return float(np.std(half - smooth(half, 20)))


def code_statistics(run: ExperimentRun) -> dict[str, float] | None:
    """How the VAE's held-out code means (mu, what latents.npz stores) spread: N(0,1) has |mean| 0 and std 1 per
    dimension. A strong KL weight pulls the means towards 0 (std below 1) and leaves the rest to the encoder's
    sigma; how far each image's code distribution is from N(0,1) is the KL curve's job."""
    if not registry.capabilities(run.config.get("family", "")).has_encoder:
        return None
    try:
        latents = run.bundle().latents()
    except LatentExplorerError:
        return None
    if latents is None or "codes" not in latents:
        return None
    codes = np.asarray(latents["codes"], dtype=np.float64)
    return {"mu |mean| per dim": float(np.abs(codes.mean(axis=0)).mean()),
            "mu std per dim": float(codes.std(axis=0).mean())}


def final_value(run: ExperimentRun, key: str, window: int = 50) -> float | None:
    values = series(run.history).get(key)
    if values is None or values.size == 0:
        return None
    return float(np.mean(values[-window:]))


def numbers(run: ExperimentRun) -> dict[str, object]:
    """The metrics-table row of one run."""
    summary = summarise_metrics(run.metrics)
    row: dict[str, object] = {"run": run.label, "diverged?": divergence(run).sentence()}
    noise, _ = fd_noise(run.metrics)
    for key in ("FD", "precision", "recall"):
        if key in summary:
            row[key] = summary[key]
    if noise is not None and "FD" in row:
        row["FD noise ±"] = noise
    accuracies = [v for k, v in summary.items() if k.startswith("accuracy ") and isinstance(v, float)]
    if accuracies:
        row["attribute accuracy"] = float(np.mean(accuracies))
        chance = attribute_chance(run.metrics)
        if chance is not None:
            row["accuracy by chance"] = chance
    fooled = final_value(run, "acc_fake")
    if fooled is not None:
        row["D's classifier on fakes"] = fooled
    if "reconstruction MSE" in summary:
        row["reconstruction MSE"] = summary["reconstruction MSE"]
    if registry.trains_as_vae(run.config.get("family", "")):
        for key in ("recon", "kl"):
            value = final_value(run, key)
            if value is not None:
                row[f"final {SERIES_LABELS.get(key, key)}"] = value
        row.update(code_statistics(run) or {})
    swing = g_loss_swing(run)
    if swing is not None:
        row["G loss swing"] = swing
    row["steps"] = run.config.get("step")
    row.setdefault("FD", "not evaluated")
    return row


def attribute_chance(metrics: dict) -> float | None:
    """The attribute accuracy a generator that ignores its conditions would get, averaged over the attributes."""
    rows = ((metrics.get("attribute_accuracy") or {}).get("attributes") or {}).values()
    chances = [float(r["chance"]) for r in rows if isinstance(r, dict) and isinstance(r.get("chance"), (int, float))]
    return float(np.mean(chances)) if chances else None


# --- the verdict ---------------------------------------------------------------------------------------------
def _fd(metrics: dict) -> float | None:
    value = summarise_metrics(metrics).get("FD")
    return value if isinstance(value, float) and math.isfinite(value) else None


def _compare_rate(name: str, run: dict, base: dict) -> str | None:
    a, b = run.get(name), base.get(name)
    if not isinstance(a, float) or not isinstance(b, float) or abs(a - b) <= RATE_TOLERANCE:
        return None
    return f"{name} {'higher' if a > b else 'lower'} ({a:.2f} vs {b:.2f})"


def verdict(run: ExperimentRun, baseline: ExperimentRun | None, against: str = "the baseline") -> str:
    """One or two sentences on the run, computed from its numbers and its baseline's (or any other run's, named
    by `against`)."""
    div = divergence(run)
    if div.stopped_at is not None:
        first = (div.reason or "").split(": ", 1)[-1].split(". ")[0]
        return f"Diverged at step {div.stopped_at}: {first}. Its bundle is the last good one it wrote."
    parts = []
    collapsed = collapse_sentence(run, baseline, against)
    if collapsed:  # before anything else: a collapsed run's other numbers read as if it were merely worse
        parts.append(collapsed)
    if not div.all_finite:
        parts.append("Its history holds non-finite losses.")
    fd = _fd(run.metrics)
    if fd is None:
        return " ".join(parts + ["Not evaluated: run `python -m training evaluate` on it."])
    if baseline is None or run.path == baseline.path:
        noise, _ = fd_noise(run.metrics)
        extra = f" (±{noise:.2f} from sampling alone)" if noise is not None else ""
        parts.append(f"The baseline the other runs are compared with: FD {fd:.2f}{extra}; "
                     f"did not diverge ({div.sentence().removeprefix('no: ')}).")
        row = numbers(run)
        accuracy, chance = row.get("attribute accuracy"), row.get("accuracy by chance")
        if isinstance(accuracy, float) and isinstance(chance, float) and accuracy - chance <= RATE_TOLERANCE:
            parts.append(f"Its conditions are not learnt yet: attribute accuracy {accuracy:.2f}, chance "
                         f"{chance:.2f}.")
        return " ".join(parts)
    base_fd = _fd(baseline.metrics)
    if base_fd is None:
        return " ".join(parts + [f"FD {fd:.2f}; {against} is not evaluated, so there is nothing to compare."])
    noise = max((n for n in (fd_noise(run.metrics)[0], fd_noise(baseline.metrics)[0]) if n is not None),
                default=0.0)
    delta = fd - base_fd
    if abs(delta) <= noise:
        parts.append(f"Cannot tell apart from {against} by FD ({fd:.2f} vs {base_fd:.2f}; sampling alone "
                     f"moves FD by ±{noise:.2f}).")
    else:
        share = f", {abs(delta) / base_fd:.0%}" if base_fd > 0 else ""  # an FD of 0: no share of it
        parts.append(f"{'Better' if delta < 0 else 'Worse'} FD than {against} by {abs(delta):.2f} "
                     f"({fd:.2f} vs {base_fd:.2f}{share}).")
    row, base_row = numbers(run), numbers(baseline)
    details = [d for d in (_compare_rate(n, row, base_row) for n in ("precision", "recall", "attribute accuracy"))
               if d]
    a, b = row.get("reconstruction MSE"), base_row.get("reconstruction MSE")
    if isinstance(a, float) and isinstance(b, float) and abs(a - b) > MSE_TOLERANCE * b:
        details.append(f"{'blurrier' if a > b else 'sharper'} reconstructions (MSE {a:.4f} vs {b:.4f})")
    kl = f"final {SERIES_LABELS.get('kl', 'kl')}"
    a, b = row.get(kl), base_row.get(kl)
    if isinstance(a, float) and isinstance(b, float) and abs(a - b) > MSE_TOLERANCE * max(b, 1e-6):
        details.append(f"codes {'further from' if a > b else 'closer to'} the N(0,1) prior (KL {a:.1f} vs {b:.1f} "
                       "per image)")
    a, b = row.get("G loss swing"), base_row.get("G loss swing")
    if isinstance(a, float) and isinstance(b, float) and b > 0:
        if a > SWING_RATIO * b:
            details.append(f"G's loss swings {a / b:.1f}x as much (less steady)")
        elif a < b / SWING_RATIO and collapsed:
            details.append(f"G's loss swings {b / a:.1f}x less, because G stopped moving away from its one image, "
                           "not because training is steadier")
        elif a < b / SWING_RATIO:
            details.append(f"G's loss swings {b / a:.1f}x less (steadier)")
    if details:
        parts.append(details[0][0].upper() + "; ".join(details)[1:] + ".")
    parts += hidden_attributes(row)
    return " ".join(parts)


def _model_scores(metrics: dict) -> dict:
    return ((metrics or {}).get("fd_precision_recall") or {}).get("model") or {}


def collapse_sentence(run: ExperimentRun, baseline: ExperimentRun | None, against: str = "the baseline") -> str:
    """"Collapsed: ..." when the run's samples are nearly one image, measured against the other run (its
    baseline, or the run named by `against`) in the dataset's feature network, or, when no samples can be measured,
    by its scores; "" otherwise."""
    scores = _model_scores(run.metrics)
    recall = scores.get("recall")
    quoted = (f"; recall {recall:.2f} at precision {scores['precision']:.2f}"
              if isinstance(recall, (int, float)) and isinstance(scores.get("precision"), (int, float)) else "")
    story = ("its decoder draws nearly the same image whatever the code, so the codes carry almost nothing."
             if registry.trains_as_vae(run.config.get("family", "")) else
             "G found one output that fools D and stays there (mode collapse), so this setting made training "
             "less stable, not steadier.")
    found = None if baseline is None or run.path == baseline.path else collapse_against(run.path, baseline.path)
    if found is not None:
        if not found.collapsed:
            return ""
        count = f"{found.distinct} distinct image{'' if found.distinct == 1 else 's'}"
        return (f"Collapsed: its {found.count} samples hold {count}, {found.share:.0%} as varied as {against}'s "
                f"in the dataset's feature network{quoted}: {story}")
    if collapsed_by_scores(scores):
        coverage = scores.get("coverage")
        covered = f" and coverage {coverage:.2f}" if isinstance(coverage, (int, float)) else ""
        return (f"Collapsed: its samples are realistic but cover almost none of the real images (recall "
                f"{scores['recall']:.2f} at precision {scores['precision']:.2f}{covered}): {story}")
    return ""


def hidden_attributes(row: dict[str, object]) -> list[str]:
    """A conditional generator that satisfies D's classifier with patterns no other network reads: the
    classification loss won over the picture."""
    fooled, seen = row.get("D's classifier on fakes"), row.get("attribute accuracy")
    if not isinstance(fooled, float) or not isinstance(seen, float) or fooled - seen <= HIDDEN_GAP:
        return []
    return [f"D's own classifier finds the requested attributes in {fooled:.0%} of the fakes, the independent "
            f"feature network in {seen:.0%}: for the other {fooled - seen:.0%}, G paints patterns only D reads "
            "instead of the attributes."]


def common_steps(runs: list[ExperimentRun]) -> list[int]:
    """Snapshot steps for the slider: every step any run has (a run that stopped early lacks the late ones)."""
    return sorted({step for run in runs for step in run.snapshots()})


def nearest_snapshot(snapshots: dict[int, Path], step: int) -> int | None:
    """The step shown for a run at the slider's step: that step, else the last one before it."""
    before = [s for s in snapshots if s <= step]
    return max(before) if before else None


def overlay(runs: list[ExperimentRun], key: str, window: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Run label -> (steps, smoothed curve) of one history key, for every run that recorded it."""
    out = {}
    for run in runs:
        values = series(run.history).get(key)
        if values is not None:
            out[run.label] = (np.asarray(run.history["step"], dtype=float), smooth(values, window))
    return out


def curve_keys(runs: list[ExperimentRun]) -> list[str]:
    """History keys every run of the group recorded, known ones first."""
    keys = [list(series(r.history)) for r in runs if r.history]
    if not keys:
        return []
    return [k for k in keys[0] if all(k in other for other in keys[1:])]


def missing_parts(run: ExperimentRun) -> str:
    """What a run does not ship, and what that costs, in one sentence."""
    shipped = run.config.get("networks_shipped")
    notes = []
    family = run.config.get("family")
    capabilities = registry.capabilities(family) if family in registry.FAMILIES else None
    pages = [title for page, title in PAGE_TITLES.items() if capabilities and page in capabilities.pages]
    if shipped:
        notes.append(f"ships only its {' and '.join(shipped)} (float16), so it cannot be trained further")
    if pages:
        notes.append(f"opens on {', '.join(pages)}")
    if not run.metrics:
        notes.append("has no metrics.json")
    if not run.snapshots():
        notes.append("has no snapshots")
    return "; ".join(notes) or "complete bundle"


def held_out_positions(run: ExperimentRun, n: int) -> np.ndarray | None:
    """Dataset positions of the first n held-out images of a VAE run (latents.npz), the same for every run of a
    group trained on the same data and seed; None when the run keeps none."""
    try:
        latents = run.bundle().latents()
    except LatentExplorerError:
        return None
    if not latents or "indices" not in latents:
        return None
    return np.asarray(latents["indices"][:n], dtype=np.int64)
