"""The conditional GAN's attributes: label rows that ask for chosen values, the grid of fixed codes with those
values, and the "10 pairs" (the same z generated twice with one attribute changed). No Streamlit here.

A conditional generator takes int64 label rows (B, A) in the order of the bundle's `conditions`;
training.latent.sampling
passes them along with the codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.logic.image_change import between_faces, mean_abs_difference
from training.attributes import Attribute
from training.bundle import Bundle
from training.errors import LatentExplorerError
from training.latent import sampling
from training.latent.priors import sample_latents
from training.latent.sampling import Samples


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

def conditional_grid(bundle: Bundle, chosen: dict[str, str], n: int, seed: int) -> Samples:
    """n codes from the bundle's prior (seed), every one asked for the chosen value of every condition."""
    return sampling.sample(bundle, bundle.prior, n, seed, labels=condition_rows(bundle.conditions, chosen, n))


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


def attribute_pairs(bundle: Bundle, z: torch.Tensor, chosen: dict[str, str], attribute: str, first: str,
                    second: str) -> Pairs:
    """The smile-conditional GAN lab's "10 pairs": generator(z, labels with attribute = first) beside
    generator(z, ... = second)."""
    rows_a, rows_b = pair_rows(bundle.conditions, chosen, attribute, first, second, z.shape[0])
    a = sampling.decode(bundle, z, labels=rows_a)
    b = sampling.decode(bundle, z, labels=rows_b)
    return Pairs(attribute, first, second, a, b, mean_abs_difference(a, b),
                 float(np.nanmean([between_faces(a), between_faces(b)])))


def seeded_pairs(bundle: Bundle, n: int, seed: int, chosen: dict[str, str], attribute: str, first: str,
                 second: str) -> Pairs:
    """attribute_pairs for n codes drawn from the bundle's prior with `seed`."""
    z = sample_latents(bundle.prior, n, bundle.latent_dim, seed=seed)
    return attribute_pairs(bundle, z, chosen, attribute, first, second)


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
