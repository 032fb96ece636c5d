"""Conditional generation: label rows for a conditional GAN, the "10 pairs" (same z, one attribute changed),
InfoGAN code grids, and how often a feature network recognises the attribute that was asked for.

Pure functions on tensors (no Streamlit). A conditional generator is called as `generator(z, labels)` with
int64 label rows (B, A) in the order of its `conditions`; an InfoGAN generator as `generator(z, codes)` with
codes built by `generator.make_codes(categories, continuous)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.attributes import Attribute
from training.errors import LatentExplorerError


def generate_with(generator: nn.Module, z: torch.Tensor, batch: int = 256, **extra: torch.Tensor) -> torch.Tensor:
    """generator(z, **extra) in eval mode without gradients, in chunks; extra tensors are split like z."""
    generator.eval()
    out = []
    with torch.no_grad():
        for start in range(0, z.shape[0], batch):
            chunk = {k: v[start:start + batch] for k, v in extra.items()}
            out.append(generator(z[start:start + batch], **chunk))
    return torch.cat(out)


def value_index(attribute: Attribute, value: str) -> int:
    if value not in attribute.values:
        raise LatentExplorerError(f"{attribute.name} has no value {value!r}; it takes {', '.join(attribute.values)}")
    return attribute.values.index(value)


def condition_rows(conditions: tuple[Attribute, ...], chosen: dict[str, str], n: int) -> torch.Tensor:
    """n identical label rows (n, A), int64, asking for the chosen value of every condition (first value when
    an attribute is not in `chosen`)."""
    unknown = set(chosen) - {a.name for a in conditions}
    if unknown:
        raise LatentExplorerError(f"the model is not conditioned on {', '.join(sorted(unknown))}; it takes "
                                  f"{', '.join(a.name for a in conditions)}")
    row = [value_index(a, chosen[a.name]) if a.name in chosen else 0 for a in conditions]
    return torch.tensor([row] * n, dtype=torch.int64).reshape(n, len(conditions))


def pair_rows(conditions: tuple[Attribute, ...], chosen: dict[str, str], attribute: str, first: str, second: str,
              n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two label batches that differ only in `attribute` (first value vs second value)."""
    names = [a.name for a in conditions]
    if attribute not in names:
        raise LatentExplorerError(f"the model is not conditioned on {attribute!r}; it takes {', '.join(names)}")
    a = conditions[names.index(attribute)]
    value_index(a, first), value_index(a, second)  # both must exist
    if first == second:
        raise LatentExplorerError(f"pick two different values of {attribute} to compare")
    return (condition_rows(conditions, {**chosen, attribute: first}, n),
            condition_rows(conditions, {**chosen, attribute: second}, n))


def mean_abs_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean |a - b| per pixel, on the [0, 1] pixel scale (images come in [-1, 1])."""
    return float((a.double() - b.double()).abs().mean() / 2)


def between_faces(images: torch.Tensor) -> float:
    """Mean |x_i - x_j| per pixel over distinct pairs of images (different z, same condition), [0, 1] scale."""
    n = images.shape[0]
    if n < 2:
        return float("nan")
    flat = images.reshape(n, -1).double() / 2
    total = sum(float((flat[i] - flat[i + 1:]).abs().mean(dim=1).sum()) for i in range(n - 1))
    return total / (n * (n - 1) / 2)


@dataclass(frozen=True)
class Pairs:
    """The same codes generated twice, with one attribute at two values."""

    attribute: str
    first: str
    second: str
    first_images: torch.Tensor
    second_images: torch.Tensor
    pair_change: float  # mean |difference| per pixel between the two images of a pair ([0, 1] scale)
    face_change: float  # the same between different codes with the same condition (how different faces are)

    @property
    def ratio(self) -> float:
        """How much the attribute changes an image, relative to changing the face (z)."""
        return self.pair_change / self.face_change if self.face_change > 0 else float("nan")


def attribute_pairs(generator: nn.Module, z: torch.Tensor, conditions: tuple[Attribute, ...], chosen: dict[str, str],
                    attribute: str, first: str, second: str) -> Pairs:
    """The smile-conditional GAN lab's "10 pairs": generator(z, labels with attribute = first) beside
    generator(z, ... = second)."""
    rows_a, rows_b = pair_rows(conditions, chosen, attribute, first, second, z.shape[0])
    a = generate_with(generator, z, labels=rows_a)
    b = generate_with(generator, z, labels=rows_b)
    return Pairs(attribute, first, second, a, b, mean_abs_difference(a, b),
                 float(np.nanmean([between_faces(a), between_faces(b)])))


def explain_pairs(p: Pairs, recognised_first: float | None = None, recognised_second: float | None = None,
                  chance: float | None = None) -> str:
    """The pairs in words; `chance` (1 / number of values) lets it say when the feature network finds the asked-for
    values no more often than guessing would."""
    n = p.first_images.shape[0]
    parts = [f"Each of the {n} pairs uses one code z twice, once with {p.attribute} = {p.first} and once with "
             f"{p.attribute} = {p.second}. The two images of a pair differ by {p.pair_change:.2g} per pixel on "
             f"average, while two different codes differ by {p.face_change:.2g}: the condition changes "
             f"{p.ratio:.0%} as much as changing the code z does."]
    if p.ratio < 0.05:
        parts.append("The generator hardly listens to this condition (it may have learned to ignore it).")
    elif p.ratio < 0.6:
        parts.append("The condition changes a part of the picture while z keeps the rest: the same picture, with "
                     "and without the attribute.")
    else:
        parts.append("The condition changes most of the picture, so the pairs do not look like the same picture: the "
                     "generator entangles this attribute with everything else.")
    if recognised_first is not None and recognised_second is not None:
        parts.append(f"The feature network recognises {p.attribute} = {p.first} in {recognised_first:.0%} of the "
                     f"first images and {p.attribute} = {p.second} in {recognised_second:.0%} of the second.")
        if chance is not None and max(recognised_first, recognised_second) < chance + 0.15:
            parts.append(f"That is hardly better than guessing ({chance:.0%}): whatever changes between the rows, the "
                         f"generator has not learned to draw {p.attribute} on request.")
    return " ".join(parts)


# --- feature network -----------------------------------------------------------------------------------------

def featurenet_path(checkpoints: str | Path, dataset: str) -> Path | None:
    """checkpoints/<dataset>/featurenet when it holds a bundle, else None."""
    path = Path(checkpoints) / dataset / "featurenet"
    return path if (path / "config.json").is_file() else None


def featurenet_column(net_attributes: tuple[Attribute, ...], attribute: Attribute) -> int | None:
    """The feature network's head for this attribute (same name and values), or None when it has none."""
    for j, a in enumerate(net_attributes):
        if a.name == attribute.name and a.values == attribute.values:
            return j
    return None


def predict_labels(net: nn.Module, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Feature-network label rows (B, A) for generated images in [-1, 1]."""
    from training.models.featurenet import to_input

    net.eval()
    with torch.no_grad():
        return torch.cat([net.predict(to_input(images[i:i + batch], net.config))
                          for i in range(0, images.shape[0], batch)])


def recognition_rate(predicted: torch.Tensor, column: int, value: int) -> float:
    """Share of images whose predicted label in `column` is `value`."""
    if predicted.shape[0] == 0:
        return float("nan")
    return float((predicted[:, column] == value).double().mean())


# --- InfoGAN codes -------------------------------------------------------------------------------------------

def info_codes(generator: nn.Module, layout: list[dict], n: int, categories: dict[str, int],
               continuous: dict[str, float]) -> torch.Tensor:
    """(n, code_dim) codes with every categorical code at its chosen value and every continuous one at its
    chosen position (defaults: value 0, position 0)."""
    cat = [c for c in layout if c["kind"] == "categorical"]
    con = [c for c in layout if c["kind"] == "continuous"]
    for c in cat:
        if not 0 <= int(categories.get(c["name"], 0)) < int(c["values"]):
            raise LatentExplorerError(f"{c['name']} takes values 0..{c['values'] - 1}")
    cat_t = torch.tensor([[int(categories.get(c["name"], 0)) for c in cat]] * n, dtype=torch.int64).reshape(n, len(cat))
    con_t = torch.tensor([[float(continuous.get(c["name"], 0.0)) for c in con]] * n,
                         dtype=torch.float32).reshape(n, len(con))
    return generator.make_codes(cat_t, con_t)


def code_sweep(generator: nn.Module, layout: list[dict], z: torch.Tensor, code: str, categories: dict[str, int],
               continuous: dict[str, float],
               positions: list[float] | None = None) -> tuple[list[str], list[torch.Tensor]]:
    """One column per value of `code` (every category, or the given positions of a continuous code), one row
    per z; the other codes stay as chosen. Returns (column labels, images per column (n, C, H, W))."""
    entry = next((c for c in layout if c["name"] == code), None)
    if entry is None:
        raise LatentExplorerError(f"this InfoGAN has no code {code!r}; it has {', '.join(c['name'] for c in layout)}")
    columns, labels = [], []
    if entry["kind"] == "categorical":
        for v in range(int(entry["values"])):
            codes = info_codes(generator, layout, z.shape[0], {**categories, code: v}, continuous)
            columns.append(generate_with(generator, z, codes=codes))
            labels.append(f"{code} = {v}")
    else:
        for p in positions if positions is not None else np.linspace(entry["low"], entry["high"], 5).tolist():
            codes = info_codes(generator, layout, z.shape[0], categories, {**continuous, code: float(p)})
            columns.append(generate_with(generator, z, codes=codes))
            labels.append(f"{code} = {p:+.2f}")
    return labels, columns


def sweep_change(columns: list[torch.Tensor]) -> float:
    """Mean |difference| per pixel between neighbouring columns of a code sweep ([0, 1] scale)."""
    if len(columns) < 2:
        return 0.0
    return float(np.mean([mean_abs_difference(a, b) for a, b in zip(columns, columns[1:])]))
