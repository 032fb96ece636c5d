"""VAE vs GAN on the same latent settings: one table of numbers per model, and the sentence they support.

The textbook story (the VAE lab's comparison) is "blurry but faithful" against "sharp but partial": a VAE's
decoder averages over what a code could mean, so its samples are soft but spread over the whole data set (high
recall); a GAN's samples are crisp and realistic (high precision) but may cover only part of the data (lower
recall). The explanation here is built from the measured numbers and says so when a pair of models does not follow it;
it names a difference in the evaluation's scores only where their intervals do not overlap (training.metrics.wording).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from explorer.logic.diagnostics import FEATURES, Diagnostics, explain_nonfinite, rounded
from explorer.logic.real_images import real_images
from explorer.logic.replay import summarise_metrics
from explorer.logic.sample import sample_and_diagnose
from explorer.logic.sharpness import mean_sharpness, sharpness_spread
from training.bundle import Bundle
from training.errors import LatentExplorerError
from training.latent.priors import LatentDistribution
from training.metrics import scoring, wording
from training.metrics.intervals import Estimate
from training.metrics.manifold import SCORES
from training.models import registry
from training.recipes.experiments import ROOT_NAME as EXPERIMENTS_FOLDER


@dataclass(frozen=True)
class ModelScores:
    name: str
    family: str
    diagnostics: Diagnostics  # of the batch drawn from the chosen distribution
    sharpness: float  # mean variance of the Laplacian of that batch (NaN when its pixels are not all finite)
    precision: float | None = None  # from metrics.json (the model at its training prior)
    recall: float | None = None
    fd: float | None = None
    reconstruction_mse: float | None = None
    feature_network: str | None = None
    estimates: dict[str, Estimate] = field(default_factory=dict)  # k-NN scores with their 95% intervals
    sharpness_spread: float = float("nan")  # standard error of the batch's mean sharpness


@dataclass(frozen=True)
class ModelBatch:
    """One model's batch under the chosen distribution, diagnosed, and how sharp its images are."""

    images: torch.Tensor
    diagnostics: Diagnostics
    sharpness: float  # NaN when its pixels are not all finite
    sharpness_spread: float = float("nan")  # its standard error


def model_batch(bundle: Bundle, dist: LatentDistribution, n: int, seed: int) -> ModelBatch:
    batch = sample_and_diagnose(bundle, dist, n, seed)
    # NaN or infinite pixels have no sharpness (clamped, infinity would even look like a sharp edge).
    if batch.diagnostics.nonfinite_images:
        return ModelBatch(batch.images, batch.diagnostics, float("nan"))
    return ModelBatch(batch.images, batch.diagnostics, mean_sharpness(batch.images), sharpness_spread(batch.images))


def model_scores(name: str, bundle: Bundle, batch: ModelBatch) -> ModelScores:
    """The batch's numbers beside the ones in the bundle's metrics.json."""
    m = metric_scores(bundle.metrics)
    return ModelScores(name=name, family=bundle.family, diagnostics=batch.diagnostics, sharpness=batch.sharpness,
                       precision=m["precision"], recall=m["recall"], fd=m["fd"],
                       reconstruction_mse=m["reconstruction_mse"], feature_network=m["feature_network"],
                       estimates=m["estimates"], sharpness_spread=batch.sharpness_spread)


# Real images the sharpness figures are divided by: on CelebA the mean over 64 of them moves by about 5% from
# one set to another, so a page's 32 would make "% of real images" wobble; over 256 it moves by about 2.5%.
REAL_FOR_SHARPNESS = 256


def real_sharpness(dataset: dict, n: int, data_root: str | None) -> tuple[float | None, str | None]:
    """(mean sharpness of n real images, None), or (None, why there are no real images)."""
    try:
        return mean_sharpness(real_images(dataset, n, data_root)), None
    except LatentExplorerError as exc:
        return None, str(exc)


@dataclass(frozen=True)
class Pairing:
    """The models that can be compared: display name -> (folder, config) of every readable one, and which of
    them are VAEs (they encode) and which GANs (trained by the GAN loop)."""

    known: dict[str, tuple[str, dict]]

    def _with(self, wanted) -> list[str]:
        out = []
        for name, (_, config) in self.known.items():
            try:
                if wanted(registry.capabilities(config["family"])):
                    out.append(name)
            except LatentExplorerError:
                continue
        return out

    @property
    def vaes(self) -> list[str]:
        return self._with(lambda c: c.has_encoder)

    @property
    def gans(self) -> list[str]:
        return self._with(lambda c: c.adversarial)

    def dataset_of(self, name: str) -> str | None:
        return self.known[name][1]["dataset"].get("name")

    def name_of(self, path: str) -> str | None:
        return next((n for n, (p, _) in self.known.items() if p == path), None)

    def gans_like(self, vae: str) -> list[str]:
        """The GANs trained on the VAE's dataset, the dataset's own models before experiment runs, and among each
        the unconditional ones (the DCGAN) first: like the VAE, they make an image from z alone, so the pair
        differs only by how it was trained."""
        same = [n for n in self.gans if self.dataset_of(n) == self.dataset_of(vae)]
        return self._models_first(sorted(same, key=lambda n: not self._z_only(n)))

    def _z_only(self, name: str) -> bool:
        try:
            found = registry.capabilities(self.known[name][1]["family"])
        except LatentExplorerError:
            return False
        return not (found.conditional or found.info_codes)

    def vaes_like(self, gan: str) -> list[str]:
        return self._models_first([n for n in self.vaes if self.dataset_of(n) == self.dataset_of(gan)])

    def _models_first(self, names: list[str]) -> list[str]:
        """Experiment runs (bundles under an experiments/ folder: small variants trained to compare one change) after
        the models a dataset ships as its own, so the page opens on the pair a teacher means."""
        return sorted(names, key=lambda n: EXPERIMENTS_FOLDER in Path(self.known[n][0]).parts)

    def missing(self) -> str | None:
        """"VAE", "GAN", "VAE and no GAN" when the page has nothing to compare; None when it has."""
        gone = [w for w, have in (("VAE", self.vaes), ("GAN", self.gans)) if not have]
        return " and no ".join(gone) or None


def verdict_tone(vae: ModelScores, gan: ModelScores, distribution: str) -> str:
    """"error" (NaN pixels), "success" (at a training prior) or "warning" for the sentence's box."""
    if "non-finite" in (vae.diagnostics.verdict, gan.diagnostics.verdict):
        return "error"
    return "success" if distribution in (vae.diagnostics.prior, gan.diagnostics.prior) else "warning"


def metric_scores(metrics: dict) -> dict[str, float | str | None]:
    """precision, recall, FD, reconstruction MSE and feature network name from a bundle's metrics.json
    (None where it does not have them). The VAE's held-out reconstruction written by training counts too."""
    summary = summarise_metrics(metrics or {})
    mse = summary.get("reconstruction MSE")
    holdout = (metrics or {}).get("holdout_reconstruction") or {}
    if mse is None and isinstance(holdout.get("mse"), (int, float)):
        mse = float(holdout["mse"])

    def number(key: str) -> float | None:
        value = summary.get(key)
        return float(value) if isinstance(value, (int, float)) else None

    model = ((metrics or {}).get("fd_precision_recall") or {}).get("model") or {}
    estimates = {name: e for name in SCORES if (e := scoring.estimate(model, name)) is not None}
    return {"precision": number("precision"), "recall": number("recall"), "fd": number("FD"),
            "reconstruction_mse": mse, "feature_network": summary.get("feature network"), "estimates": estimates}


def _num(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _significant(value: float | None, digits: int = 4) -> float | None:
    """Rounded to significant digits: sharpness spans 0.01 (an untrained model) to thousands. None (an empty
    cell) when unknown or not finite."""
    return None if value is None or not math.isfinite(value) else float(f"{float(value):.{digits}g}")


def comparison_rows(models: list[ModelScores], real_sharpness: float | None = None) -> list[dict]:
    """One row per model for the table (numbers rounded, None where unknown)."""
    rows = []
    for m in models:
        d = m.diagnostics
        rows.append({
            "model": m.name,
            "family": m.family,
            "sharpness (Laplacian variance)": _significant(m.sharpness),
            "sharpness vs real images": _significant(m.sharpness / real_sharpness if real_sharpness else None, 2),
            "output diversity": rounded(d.diversity, 3),
            "diversity vs its own prior samples": rounded(d.diversity_ratio, 3),
            "mean pairwise cosine of codes": rounded(d.cosine, 3),
            "saturated pixels": rounded(d.saturated, 3),
            "verdict": d.verdict,
            "precision": rounded(m.precision, 3),
            "recall": rounded(m.recall, 3),
            **{name: rounded(m.estimates[name].value, 3) if name in m.estimates else None
               for name in ("density", "coverage")},
            "95% intervals": "; ".join(f"{name} {m.estimates[name].low:.2f}–{m.estimates[name].high:.2f}"
                                       for name in SCORES if name in m.estimates) or None,
            "FD": rounded(m.fd, 2),
            "reconstruction MSE": rounded(m.reconstruction_mse, 4),
        })
    return rows


def against_real(gan: ModelScores, real_sharpness: float) -> str:
    """The GAN's sharpness against real images', in words that do not call a batch's luck or a checkerboard
    "sharper than real"."""
    share = gan.sharpness / real_sharpness
    how = ("measured after a light blur, so a GAN's pixel-level checkerboard does not count as detail")
    if share <= 1:
        return f"The GAN's edges are {share:.0%} as strong as real images' ({how})."
    luck = 2 * gan.sharpness_spread / real_sharpness if math.isfinite(gan.sharpness_spread) else 0.0
    if share - 1 <= luck:
        return (f"The GAN's edges measure {share:.0%} of real images' ({how}), within what another batch of "
                f"{gan.diagnostics.num_samples} samples could show (±{luck:.0%}): about as sharp as real images, "
                "not sharper.")
    return (f"The GAN's edges measure {share:.0%} of real images' ({how}); more than real photos usually means "
            "hard, saturated edges rather than more detail.")


def _from_the_images(vae: Diagnostics, gan: Diagnostics) -> str:
    """What the batches alone say about variety, when the bundles hold no precision/recall."""
    if vae.diversity_measure == gan.diversity_measure == FEATURES:
        return (f"From the images alone, as the dataset's feature network tells them apart: the VAE's first "
                f"{vae.judged_samples} samples hold {vae.distinct_images} distinct images, the GAN's first "
                f"{gan.judged_samples} hold {gan.distinct_images}.")
    return (f"From the images alone: the VAE's samples differ from each other by {vae.diversity:.3f}, the GAN's by "
            f"{gan.diversity:.3f} (mean distance between 16x16-pooled images).")


def explain_comparison(vae: ModelScores, gan: ModelScores, distribution: str,
                       real_sharpness: float | None = None) -> str:
    """Blurry-but-faithful vs sharp-but-partial, as far as these numbers show it."""
    broken = [(role, m) for role, m in (("VAE", vae), ("GAN", gan)) if m.diagnostics.verdict == "non-finite"]
    if broken:
        return " ".join([f"{role} ({m.name}): {explain_nonfinite(m.diagnostics)}" for role, m in broken]
                        + [f"So under z ~ {distribution} this page has no sharpness or diversity to compare."])
    parts = []
    real = f"; real images: {_num(real_sharpness)}" if real_sharpness else ""
    if gan.sharpness > 1.2 * vae.sharpness:
        parts.append(f"The GAN's samples are {gan.sharpness / max(vae.sharpness, 1e-9):.1f}x sharper than the VAE's "
                     f"(edge strength {_num(gan.sharpness)} vs {_num(vae.sharpness)}{real}): the VAE's "
                     "decoder is trained to minimise squared error, so where a code could mean several images it "
                     "paints their average, which is blurry.")
    elif vae.sharpness > 1.2 * gan.sharpness:
        parts.append(f"Here the VAE's samples are the sharper ones (edge strength {_num(vae.sharpness)} vs "
                     f"{_num(gan.sharpness)}{real}), against the usual story; a GAN early in training, or one that "
                     "collapsed, can be smoother than a VAE.")
    else:
        parts.append(f"Both models are about as sharp (edge strength {_num(vae.sharpness)} vs "
                     f"{_num(gan.sharpness)}{real}).")
    if real_sharpness:
        parts.append(against_real(gan, real_sharpness))
    saturated = [(role, m) for role, m in (("VAE", vae), ("GAN", gan))
                 if m.diagnostics.saturated > m.diagnostics.prior_saturated + 0.05]
    if saturated:
        parts.append("Part of that sharpness is saturation, not detail: " + " and ".join(
            f"{m.diagnostics.saturated:.0%} of the {role}'s pixels" for role, m in saturated)
            + " are pinned at black or white, which draws hard edges.")
    sentence = wording.comparison_sentence(vae.estimates, gan.estimates)
    if sentence is not None:
        parts.append(sentence)
    elif None not in (vae.precision, vae.recall, gan.precision, gan.recall):
        parts.append(wording.without_intervals(
            f"precision {vae.precision:.3g} / recall {vae.recall:.3g} for the VAE, {gan.precision:.3g} / "
            f"{gan.recall:.3g} for the GAN"))
    else:
        missing = [m.name for m in (vae, gan) if m.precision is None or m.recall is None]
        parts.append(f"No precision/recall for {' and '.join(missing)} (run `python -m training evaluate "
                     f"--write` on the bundle to add them). {_from_the_images(vae.diagnostics, gan.diagnostics)}")
    if distribution not in (vae.diagnostics.prior, gan.diagnostics.prior) or \
            "healthy" not in (vae.diagnostics.verdict, gan.diagnostics.verdict):
        parts.append(f"Under z ~ {distribution}, the VAE's batch is {vae.diagnostics.verdict} "
                     f"({vae.diagnostics.diversity_ratio:.0%} of its prior's diversity) and the GAN's is "
                     f"{gan.diagnostics.verdict} ({gan.diagnostics.diversity_ratio:.0%}): both decoders only know "
                     "the region of codes they were trained on.")
    return " ".join(parts)
