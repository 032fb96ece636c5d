"""What an InfoGAN's unlabelled codes came to mean, in numbers: for each value of a categorical code, which class
the dataset's feature network sees in its images and how often; for each continuous code, how much turning it
changes the images and whether it changes their class. The sentences are computed from those numbers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.logic.codes import CodeSetting, code_sweep, sweep_change
from explorer.logic.image_change import between_faces
from training.bundle import Bundle
from training.latent.priors import sample_latents
from training.models.featurenet import FeatureNet, to_input

PURE = 0.5  # a categorical value "means a class" when at least half of its images are that class
KEPT = 0.8  # a continuous code "keeps the class" when at least this share of images keep theirs from -1 to +1
STILL = 0.01  # image change per step below which a code does nothing visible ([0, 1] pixel scale)
ALIKE = 0.25  # a categorical code dominates z when two z of one value differ by less than this share of its step


@dataclass(frozen=True)
class CodeFinding:
    code: str
    kind: str
    change: float  # mean |difference| per pixel between neighbouring values ([0, 1] scale)
    purity: float | None  # categorical: mean share of each value's most frequent class
    classes: list[str]  # categorical: each value's most frequent class; continuous: empty
    kept: float | None  # continuous: share of images whose class is the same at -1 and +1
    sentence: str

    def row(self) -> dict[str, object]:
        return {"code": self.code, "kind": self.kind, "image change per step": round(self.change, 4),
                "class purity": None if self.purity is None else round(self.purity, 3),
                "class kept from -1 to +1": None if self.kept is None else round(self.kept, 3),
                "classes of its values": ", ".join(self.classes)}


def _classes(net: FeatureNet, images: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return net.predict(to_input(images, net.config))[:, 0].numpy()


def _categorical(code: str, columns: list[torch.Tensor], predicted: list[np.ndarray], names: list[str],
                 change: float) -> CodeFinding:
    tops, shares = [], []
    for p in predicted:
        counts = np.bincount(p, minlength=len(names))
        tops.append(int(counts.argmax()))
        shares.append(float(counts.max() / max(len(p), 1)))
    purity = float(np.mean(shares))
    pure = [names[t] for t, s in zip(tops, shares) if s >= PURE]
    distinct = sorted(set(pure), key=pure.index)
    chance = 1 / len(names)
    if change < STILL:
        sentence = f"{code} barely changes the images ({change:.3f} per step): it means nothing visible."
    elif len(distinct) >= 2:
        sentence = (f"{code} picks the class: {len(pure)} of its {len(columns)} values give mostly one class "
                    f"({len(distinct)} different: {', '.join(distinct)}); on average {purity:.0%} of a value's "
                    f"images share a class, against {chance:.0%} by chance.")
    else:
        sentence = (f"{code} changes the images ({change:.3f} per step) but does not pick a class: on average "
                    f"{purity:.0%} of a value's images share one, against {chance:.0%} by chance.")
    between = float(np.nanmean([between_faces(c) for c in columns]))
    if change >= STILL and between < ALIKE * change:
        sentence += (f" Different z barely matter next to it ({between:.3f} between two z of one value, against "
                     f"{change:.3f} between two values): the images of one value are nearly alike.")
    return CodeFinding(code, "categorical", change, purity, [names[t] for t in tops], None, sentence)


def _continuous(code: str, predicted: list[np.ndarray], change: float, between: float) -> CodeFinding:
    kept = float(np.mean(predicted[0] == predicted[-1]))
    if change < STILL:
        sentence = f"{code} barely changes the images ({change:.3f} per step): it means nothing visible."
    elif kept >= KEPT:
        sentence = (f"{code} changes the images ({change:.3f} per step; two different z differ by {between:.3f}) "
                    f"and keeps the class of {kept:.0%} of them from -1 to +1: a style within a class (look at the "
                    "sweep to name it: thickness, shade, width...).")
    else:
        sentence = (f"{code} changes the images ({change:.3f} per step) and the class of {1 - kept:.0%} of them "
                    "from -1 to +1: it mixes style and class.")
    return CodeFinding(code, "continuous", change, None, [], kept, sentence)


def code_findings(bundle: Bundle, net: FeatureNet, class_names: list[str], n: int = 64,
                  seed: int = 0) -> list[CodeFinding]:
    """One finding per code, each swept with the other codes at their defaults and the same n codes z."""
    z = sample_latents(bundle.prior, n, bundle.latent_dim, seed=seed)
    findings = []
    for entry in bundle.codes:
        _, columns = code_sweep(bundle, z, entry["name"], CodeSetting())
        change = sweep_change(columns)
        predicted = [_classes(net, c) for c in columns]
        if entry["kind"] == "categorical":
            findings.append(_categorical(entry["name"], columns, predicted, class_names, change))
        else:
            findings.append(_continuous(entry["name"], predicted, change, between_faces(columns[0])))
    return findings
