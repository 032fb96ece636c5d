"""Interpolation between two codes: a straight line cuts through the prior's empty middle, a great circle does not."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.logic.diagnostics import NormReference, nonfinite_count
from training.bundle import Bundle
from training.errors import LatentExplorerError
from training.latent import sampling
from training.latent.priors import sample_latents

METHODS = ("linear", "spherical")


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(1 - t) z0 + t z1 for each t: codes (d,), t (k,) -> (k, d)."""
    t = t.to(z0.dtype).unsqueeze(1)
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation: the direction turns along the great circle at constant speed while the length
    moves linearly from |z0| to |z1|, so no code on the path is shorter than the shorter end (White 2016
    uses the same great-circle walk; scaling the length separately keeps that true for unequal norms too)."""
    t = t.to(z0.dtype).unsqueeze(1)
    n0, n1 = z0.norm(), z1.norm()
    if n0 == 0 or n1 == 0:
        return lerp(z0, z1, t.squeeze(1))
    u0, u1 = z0 / n0, z1 / n1
    omega = torch.arccos(torch.clamp(u0 @ u1, -1.0, 1.0))
    if omega < 1e-6:  # (nearly) the same direction: the great circle is a point
        direction = u0.expand(t.shape[0], -1)
    elif torch.pi - omega < 1e-6:
        raise LatentExplorerError("the two codes point in opposite directions: every great circle joins them, "
                                  "so spherical interpolation is undefined")
    else:
        direction = (torch.sin((1 - t) * omega) * u0 + torch.sin(t * omega) * u1) / torch.sin(omega)
    return direction * ((1 - t) * n0 + t * n1)


def interpolate(z0: torch.Tensor, z1: torch.Tensor, steps: int, method: str) -> torch.Tensor:
    """`steps` codes from z0 to z1 inclusive, (steps, d)."""
    if steps < 2:
        raise LatentExplorerError(f"an interpolation needs at least 2 steps (got {steps})")
    if method not in METHODS:
        raise LatentExplorerError(f"unknown interpolation {method!r}; choose one of {', '.join(METHODS)}")
    if z0.shape != z1.shape or z0.dim() != 1:
        raise LatentExplorerError(f"both ends must be single codes of the same size, got {tuple(z0.shape)} and "
                                  f"{tuple(z1.shape)}")
    t = torch.linspace(0, 1, steps, dtype=torch.float64)
    path = (lerp if method == "linear" else slerp)(z0.double(), z1.double(), t)
    return path.to(z0.dtype)


@dataclass(frozen=True)
class PathComparison:
    t: np.ndarray
    linear_norms: np.ndarray
    spherical_norms: np.ndarray
    end_norms: tuple[float, float]
    angle_degrees: float  # between the two end codes
    reference: NormReference  # the training prior's norms
    prior: str

    @property
    def linear_min(self) -> float:
        return float(self.linear_norms.min())

    @property
    def spherical_min(self) -> float:
        return float(self.spherical_norms.min())

    @property
    def linear_dip(self) -> float:
        """How much shorter the shortest linear code is than the shorter end (0.29 for orthogonal equal ends)."""
        return 1 - self.linear_min / min(self.end_norms)

    @property
    def spherical_dip(self) -> float:
        return 1 - self.spherical_min / min(self.end_norms)


def compare_paths(z0: torch.Tensor, z1: torch.Tensor, reference: NormReference, prior: str,
                  points: int = 101) -> PathComparison:
    """Code norms along both paths, finely sampled (the plot and the sentence use the same numbers)."""
    linear = interpolate(z0.double(), z1.double(), points, "linear").norm(dim=1).numpy()
    spherical = interpolate(z0.double(), z1.double(), points, "spherical").norm(dim=1).numpy()
    cos = float(torch.nn.functional.cosine_similarity(z0.double(), z1.double(), dim=0))
    return PathComparison(
        t=np.linspace(0, 1, points), linear_norms=linear, spherical_norms=spherical,
        end_norms=(float(z0.double().norm()), float(z1.double().norm())),
        angle_degrees=float(np.degrees(np.arccos(np.clip(cos, -1, 1)))), reference=reference, prior=prior,
    )


def explain_paths(c: PathComparison) -> str:
    """One paragraph from the numbers: how deep the straight line dips, in the prior's own units."""
    ref = c.reference
    lin_z = ref.zscore(c.linear_min)
    sph_z = ref.zscore(c.spherical_min)
    where = int(np.argmin(c.linear_norms))
    parts = [f"The two codes have norms {c.end_norms[0]:.1f} and {c.end_norms[1]:.1f} and are {c.angle_degrees:.0f}° "
             f"apart; {c.prior} codes have norms {ref.mean:.1f} ± {ref.std:.2f}."]
    if c.linear_dip > 0.01:
        parts.append(f"The straight line shrinks to {c.linear_min:.1f} at t = {c.t[where]:.2f}, {c.linear_dip:.0%} "
                     f"shorter than the shorter end and {abs(lin_z):.1f} standard deviations "
                     f"{'below' if lin_z < 0 else 'above'} the typical norm: the middle of the path passes through "
                     f"a shell of lengths that {c.prior} almost never produces, so the generator rarely saw such "
                     "codes.")
    else:
        parts.append(f"The straight line barely dips (to {c.linear_min:.1f}), because the two codes point in nearly "
                     "the same direction.")
    sph_z = 0.0 if abs(sph_z) < 0.05 else sph_z  # no "-0.0"
    parts.append(f"The spherical path never drops below {c.spherical_min:.1f} ({sph_z:+.1f} standard deviations from "
                 "the typical norm), so every code on it has the length of a typical training code.")
    return " ".join(parts)


@dataclass(frozen=True)
class Interpolation:
    """Both paths between the codes of two seeds, the images along them and the norms behind the plot."""

    seeds: tuple[int, int]
    paths: dict[str, torch.Tensor]  # method -> codes (steps, d)
    images: dict[str, torch.Tensor]  # method -> images (steps, C, H, W)
    comparison: PathComparison

    @property
    def steps(self) -> int:
        return int(self.paths["linear"].shape[0])

    @property
    def nonfinite_images(self) -> int:
        return sum(nonfinite_count(x) for x in self.images.values())

    def code_norms(self, method: str) -> list[float]:
        """The norm of every code along one path, left to right."""
        return self.paths[method].double().norm(dim=1).tolist()


def end_code(bundle: Bundle, seed: int) -> torch.Tensor:
    """The code a seed gives under the bundle's prior (one end of a path)."""
    return sample_latents(bundle.prior, 1, bundle.latent_dim, seed=seed)[0]


def interpolation(bundle: Bundle, seed_a: int, seed_b: int, steps: int, reference: NormReference,
                  z0: torch.Tensor | None = None, z1: torch.Tensor | None = None) -> Interpolation:
    """The codes of seed_a and seed_b under the bundle's prior (or the given end codes, e.g. a photo's) joined
    both ways, decoded by its generator."""
    z0 = end_code(bundle, seed_a) if z0 is None else z0
    z1 = end_code(bundle, seed_b) if z1 is None else z1
    comparison = compare_paths(z0, z1, reference, bundle.prior.label)
    paths = {method: interpolate(z0, z1, steps, method) for method in METHODS}
    images = {method: sampling.decode(bundle, path) for method, path in paths.items()}
    return Interpolation((seed_a, seed_b), paths, images, comparison)
