"""Attribute directions in latent space: where codes of faces with an attribute sit relative to those without.

Two estimates of the same idea, both pure functions on arrays:

* the difference of mean codes (mean of the codes with the attribute minus mean of those without), the
  "smile vector" of latent arithmetic (White 2016);
* the normal of a logistic-regression boundary that separates the two groups (scikit-learn), which ignores
  directions along which the groups merely differ in spread.

A walk moves codes along the unit direction in steps of the gap between the two groups' means, so t = 1
adds about what separates an average face without the attribute from an average face with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.logic.held_out import HeldOutCodes
from explorer.logic.recognition import FeatureNetwork, predict_labels, recognition_rate
from training.attributes import Attribute
from training.bundle import Bundle
from training.errors import LatentExplorerError
from training.latent import sampling
from training.latent.priors import sample_latents

METHODS = {"mean difference": "mean_difference", "logistic regression": "logistic_regression"}
MIN_GROUP = 2  # codes needed on each side of the attribute to estimate anything
WALK_EVAL = 64  # codes per position for the recognition numbers (the picture shows the first few)
LABELLED_SEED = 12345  # the generated samples that the feature network labels
PRIOR_NORM_SEED = 1


def attribute_target(labels: np.ndarray, attributes: tuple[Attribute, ...], name: str, value: str) -> np.ndarray:
    """Boolean (N,): which label rows have attribute `name` equal to `value` (a categorical value vs the rest)."""
    names = [a.name for a in attributes]
    if name not in names:
        raise LatentExplorerError(f"no attribute {name!r}; the labels have {', '.join(names) or 'none'}")
    j = names.index(name)
    values = attributes[j].values
    if value not in values:
        raise LatentExplorerError(f"{name} has no value {value!r}; it takes {', '.join(values)}")
    return np.asarray(labels)[:, j] == values.index(value)


def default_attribute(labels: np.ndarray, attributes: tuple[Attribute, ...], preferred: str = "smiling") -> str:
    """The attribute a page opens on: `preferred` (any case: toyfaces' "smiling", CelebA's "Smiling") when both
    sides of it have MIN_GROUP codes, else the attribute whose smaller side is largest, so the first view shows a
    direction rather than "too few codes" (512 generated CelebA faces hold 1 that the feature network calls
    smiling). A binary attribute is split at "yes", another at its first value, as the page does."""
    labels = np.asarray(labels)

    def smaller_side(j: int) -> int:
        value = 1 if attributes[j].is_binary else 0
        hits = int((labels[:, j] == value).sum())
        return min(hits, len(labels) - hits)

    names = [a.name for a in attributes]
    first = next((j for j, n in enumerate(names) if n.lower() == preferred.lower()), None)
    if first is not None and smaller_side(first) >= MIN_GROUP:
        return names[first]
    return names[max(range(len(names)), key=smaller_side)]


def _groups(codes: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes = np.asarray(codes, dtype=np.float64)
    target = np.asarray(target, dtype=bool)
    if codes.ndim != 2 or target.shape != (codes.shape[0],):
        raise LatentExplorerError(f"codes must be (N, d) with one target per code, got {codes.shape} and "
                                  f"{target.shape}")
    return codes[target], codes[~target]


def mean_difference(codes: np.ndarray, target: np.ndarray) -> np.ndarray:
    """mean(codes with the attribute) - mean(codes without it), (d,), not normalised."""
    pos, neg = _groups(codes, target)
    if len(pos) < 1 or len(neg) < 1:
        raise LatentExplorerError("both groups need at least one code")
    return pos.mean(axis=0) - neg.mean(axis=0)


def logistic_normal(codes: np.ndarray, target: np.ndarray, c: float = 1.0, seed: int = 0) -> np.ndarray:
    """The weight vector of a logistic regression predicting the attribute from the code, (d,), pointing
    towards the codes with the attribute."""
    from sklearn.linear_model import LogisticRegression

    pos, neg = _groups(codes, target)
    if len(pos) < 1 or len(neg) < 1:
        raise LatentExplorerError("both groups need at least one code")
    model = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    model.fit(np.asarray(codes, dtype=np.float64), np.asarray(target, dtype=bool))
    return model.coef_[0].astype(np.float64)


@dataclass(frozen=True)
class Direction:
    """A unit direction for one attribute value, with the numbers that say how well it separates the codes."""

    attribute: str
    value: str
    method: str
    vector: np.ndarray  # unit length, (d,)
    gap: float  # mean projection of the codes with the attribute minus that of the codes without (> 0)
    separation: float  # gap / pooled std of the projections (Cohen's d): above 2 the groups barely overlap
    accuracy: float  # share of codes on the correct side of the midpoint between the two groups' projections
    n_with: int
    n_without: int

    @property
    def label(self) -> str:
        return f"{self.attribute} = {self.value}"


def attribute_direction(codes: np.ndarray, target: np.ndarray, method: str = "mean difference",
                        attribute: str = "attribute", value: str = "yes", seed: int = 0) -> Direction:
    """The direction from codes without the attribute towards codes with it, by `method` (a key of METHODS)."""
    if method not in METHODS:
        raise LatentExplorerError(f"unknown direction method {method!r}; choose one of {', '.join(METHODS)}")
    pos, neg = _groups(codes, target)
    if len(pos) < MIN_GROUP or len(neg) < MIN_GROUP:
        raise LatentExplorerError(
            f"{len(pos)} codes have {attribute} = {value} and {len(neg)} do not; a direction needs at least "
            f"{MIN_GROUP} on each side (use more codes, or pick a more common value)"
        )
    raw = mean_difference(codes, target) if method == "mean difference" else logistic_normal(codes, target, seed=seed)
    norm = float(np.linalg.norm(raw))
    if not np.isfinite(norm) or norm == 0:
        raise LatentExplorerError(f"the codes with and without {attribute} = {value} do not differ on average, so "
                                  "there is no direction to walk along")
    vector = raw / norm
    p_pos, p_neg = pos @ vector, neg @ vector
    gap = float(p_pos.mean() - p_neg.mean())
    if gap < 0:  # a logistic normal can, in degenerate cases, point away from the group means: flip it
        vector, p_pos, p_neg, gap = -vector, -p_pos, -p_neg, -gap
    pooled = np.sqrt((p_pos.var(ddof=1) * (len(p_pos) - 1) + p_neg.var(ddof=1) * (len(p_neg) - 1))
                     / (len(p_pos) + len(p_neg) - 2))
    midpoint = (p_pos.mean() + p_neg.mean()) / 2
    correct = int((p_pos > midpoint).sum() + (p_neg <= midpoint).sum())
    return Direction(attribute=attribute, value=value, method=method, vector=vector, gap=gap,
                     separation=float(gap / pooled) if pooled > 0 else float("inf"),
                     accuracy=correct / (len(p_pos) + len(p_neg)), n_with=len(p_pos), n_without=len(p_neg))


def direction_cosine(a: Direction, b: Direction) -> float:
    """How much two estimates of an attribute's direction agree (1: the same direction)."""
    return float(a.vector @ b.vector)


def walk(z: torch.Tensor, direction: Direction, t: float) -> torch.Tensor:
    """Codes moved t gaps along the direction: z + t * gap * unit vector, same shape and dtype as z."""
    step = torch.as_tensor(direction.vector * direction.gap * float(t), dtype=z.dtype)
    return z + step


def walk_positions(t: float, steps: int = 5) -> list[float]:
    """Symmetric positions from -|t| to |t| (0 included when steps is odd), rounded for labels."""
    if steps < 2:
        raise LatentExplorerError(f"a walk needs at least 2 positions (got {steps})")
    return [round(float(v), 4) for v in np.linspace(-abs(t), abs(t), steps)]


@dataclass(frozen=True)
class WalkStart:
    """The codes a walk starts from: the first `count` held-out codes, or `count` codes from the prior (seed)."""

    held_out: bool
    count: int
    seed: int = 0

    def describe(self, bundle: Bundle) -> str:
        return "encoded held-out images" if self.held_out else f"codes from {bundle.prior.label}"


@dataclass(frozen=True)
class LabelledCodes:
    """Codes with attribute labels, to find directions in: a VAE's encoded held-out images with their true labels,
    or generated samples labelled by the dataset's feature network."""

    codes: np.ndarray  # (N, d)
    labels: np.ndarray  # (N, A)
    attributes: tuple[Attribute, ...]
    description: str
    held: HeldOutCodes | None = None  # the held-out codes, whose images can start a walk

    @classmethod
    def held_out(cls, held: HeldOutCodes) -> LabelledCodes:
        return cls(held.codes, held.labels, held.attributes,
                   f"{len(held)} encoded held-out images with their true labels (latents.npz)", held)

    def walk_start(self, from_held_out: bool, faces: int, seed: int) -> WalkStart:
        """Which codes a walk starts from: the held-out codes (when asked and their images are there), else codes
        from the prior (seed); at least `faces` of them, and WALK_EVAL to score the walk."""
        held = self.held
        if from_held_out and held is not None and held.images is not None:
            return WalkStart(True, max(faces, min(WALK_EVAL, len(held))))
        return WalkStart(False, max(faces, WALK_EVAL), seed)

    def start_codes(self, start: WalkStart, bundle: Bundle) -> torch.Tensor:
        if start.held_out:
            return torch.from_numpy(self.codes[:start.count].copy())
        return sample_latents(bundle.prior, start.count, bundle.latent_dim, seed=start.seed)


def label_samples(bundle: Bundle, net: FeatureNetwork, n: int) -> LabelledCodes:
    """n codes from the bundle's prior, labelled by what the feature network sees in their images."""
    z = sample_latents(bundle.prior, n, bundle.latent_dim, seed=LABELLED_SEED)
    labels = predict_labels(net.network, sampling.decode(bundle, z))
    return LabelledCodes(z.numpy(), labels.numpy(), net.attributes,
                         f"{n} generated samples labelled by the feature network")


@dataclass(frozen=True)
class Walked:
    """Images along a direction, with the numbers that go with them."""

    positions: list[float]  # shown in the picture
    fine: list[float]  # scored and plotted (includes the shown ones)
    start_text: str  # what the walk started from
    images: dict[float, torch.Tensor]  # at every position of both lists
    recognised: dict[float, float]  # share of images in which the feature network sees the value ({}: no score)
    norms: dict[float, float]  # mean code norm at each fine position
    prior_norm: float  # mean norm of codes from the training prior


def walk_a_direction(bundle: Bundle, start: torch.Tensor, start_text: str, direction: Direction,
                     attribute: Attribute, value: str, positions: list[float], fine: list[float],
                     net: FeatureNetwork | None) -> Walked:
    """Walk the start codes along the direction; with a feature network that has this attribute's head, count how
    often it sees `value` at every position."""
    column = net.column(attribute) if net is not None else None
    images, recognised = {}, {}
    for t in sorted(set(positions) | set(fine)):
        images[t] = sampling.decode(bundle, walk(start, direction, t))
        if column is not None:
            predicted = predict_labels(net.network, images[t])
            recognised[t] = recognition_rate(predicted, column, attribute.values.index(value))
    norms = {t: float(walk(start, direction, t).double().norm(dim=1).mean()) for t in fine}
    prior_norm = sample_latents(bundle.prior, 512, bundle.latent_dim, seed=PRIOR_NORM_SEED).double().norm(dim=1)
    return Walked(positions, fine, start_text, images, recognised, norms, float(prior_norm.mean()))


def explain_direction(d: Direction, recognised: dict[float, float] | None = None,
                      norms: dict[float, float] | None = None, prior_norm: float | None = None) -> str:
    """A short paragraph from the numbers: how well the direction separates the codes, and what walking does."""
    parts = [f"Codes with {d.label} ({d.n_with}) sit {d.gap:.3g} further along this {d.method} direction than "
             f"codes without ({d.n_without}): {d.separation:.1f} standard deviations apart, and a cut halfway "
             f"between them sorts {d.accuracy:.0%} of the codes correctly."]
    if d.separation >= 2:
        parts.append("The attribute is written almost linearly into the latent space.")
    elif d.separation >= 0.8:
        parts.append("The groups overlap, so the direction carries the attribute only in part.")
    else:
        parts.append("The groups overlap heavily: this direction barely carries the attribute, so walking along "
                     "it mostly changes other things.")
    if recognised:
        ts = sorted(recognised)
        low, high = ts[0], ts[-1]
        zero = 0.0 if 0.0 in recognised else None
        middle = f", {recognised[zero]:.0%} at t = 0," if zero is not None else ""
        parts.append(f"The feature network finds {d.label} in {recognised[low]:.0%} of the images at t = {low:g}"
                     f"{middle} and in {recognised[high]:.0%} at t = {high:g}.")
        if recognised[high] - recognised[low] >= 0.3:
            parts.append("Walking the direction really turns the attribute on.")
        elif recognised[high] - recognised[low] <= 0.05:
            parts.append("The recognition rate hardly moves: the generator does not respond to this direction.")
    if norms and prior_norm:
        far = max(norms, key=lambda t: abs(norms[t] - prior_norm))
        if abs(norms[far] / prior_norm - 1) > 0.1:
            parts.append(f"Careful: at t = {far:g} the codes have norm {norms[far]:.1f} against {prior_norm:.1f} for "
                         "training codes, so part of any change comes from leaving the prior, not from the attribute.")
    return " ".join(parts)
