"""The InfoGAN's codes: the grid of fixed z with every code set by hand, one code swept at a time, and how much
each code changes the image compared with changing z. No Streamlit here.

An InfoGAN generator takes its structured codes as `info` (training.latent.sampling), built by
`generator.make_codes(categories, continuous)` from the bundle's code layout (`bundle.codes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from explorer.logic.image_change import between_faces, mean_abs_difference
from training.bundle import Bundle
from training.errors import LatentExplorerError
from training.latent import sampling
from training.latent.sampling import Samples

SWEPT_CODES = 8  # the z of the sweep grid: the first codes of the main grid


@dataclass(frozen=True)
class CodeSetting:
    """Every categorical code's value and every continuous code's position (left out: value 0, position 0)."""

    categories: dict[str, int] = field(default_factory=dict)
    continuous: dict[str, float] = field(default_factory=dict)

    def with_code(self, code: str, value: float, categorical: bool) -> CodeSetting:
        if categorical:
            return CodeSetting({**self.categories, code: int(value)}, self.continuous)
        return CodeSetting(self.categories, {**self.continuous, code: float(value)})

    def outside_training(self) -> list[str]:
        """The continuous codes set outside [-1, 1], the range the model was trained on."""
        return [k for k, v in self.continuous.items() if abs(v) > 1]

    def caption(self) -> str:
        return ", ".join([f"{k} = {v}" for k, v in self.categories.items()]
                         + [f"{k} = {v:+.1f}" for k, v in self.continuous.items()])


def info_codes(generator: torch.nn.Module, layout: list[dict], n: int, setting: CodeSetting) -> torch.Tensor:
    """(n, code_dim) codes, every row the chosen setting."""
    cat = [c for c in layout if c["kind"] == "categorical"]
    con = [c for c in layout if c["kind"] == "continuous"]
    for c in cat:
        if not 0 <= int(setting.categories.get(c["name"], 0)) < int(c["values"]):
            raise LatentExplorerError(f"{c['name']} takes values 0..{c['values'] - 1}")
    cat_t = torch.tensor([[int(setting.categories.get(c["name"], 0)) for c in cat]] * n,
                         dtype=torch.int64).reshape(n, len(cat))
    con_t = torch.tensor([[float(setting.continuous.get(c["name"], 0.0)) for c in con]] * n,
                         dtype=torch.float32).reshape(n, len(con))
    return generator.make_codes(cat_t, con_t)


def code_sweep(bundle: Bundle, z: torch.Tensor, code: str, setting: CodeSetting,
               positions: list[float] | None = None) -> tuple[list[str], list[torch.Tensor]]:
    """One column per value of `code` (every category, or the given positions of a continuous code), one row
    per z; the other codes stay as chosen. Returns (column labels, images per column (n, C, H, W))."""
    layout = bundle.codes
    entry = next((c for c in layout if c["name"] == code), None)
    if entry is None:
        raise LatentExplorerError(f"this InfoGAN has no code {code!r}; it has {', '.join(c['name'] for c in layout)}")
    categorical = entry["kind"] == "categorical"
    if categorical:
        values = list(range(int(entry["values"])))
    else:
        values = positions if positions is not None else np.linspace(entry["low"], entry["high"], 5).tolist()
    columns, labels = [], []
    for v in values:
        codes = info_codes(bundle.generator, layout, z.shape[0], setting.with_code(code, v, categorical))
        columns.append(sampling.decode(bundle, z, info=codes))
        labels.append(f"{code} = {v}" if categorical else f"{code} = {v:+.2f}")
    return labels, columns


def sweep_change(columns: list[torch.Tensor]) -> float:
    """Mean |difference| per pixel between neighbouring columns of a code sweep ([0, 1] scale)."""
    if len(columns) < 2:
        return 0.0
    return float(np.mean([mean_abs_difference(a, b) for a, b in zip(columns, columns[1:])]))


def code_grid(bundle: Bundle, n: int, seed: int, setting: CodeSetting) -> Samples:
    """n codes z from the bundle's prior (seed), every one with the chosen setting of the InfoGAN codes."""
    info = info_codes(bundle.generator, bundle.codes, n, setting)
    return sampling.sample(bundle, bundle.prior, n, seed, info=info)


@dataclass(frozen=True)
class CodeEffects:
    """One code swept over the first few codes z of the grid, and every code's effect on the image."""

    swept: str
    sweep_labels: list[str]
    sweep_columns: list[torch.Tensor]
    effects: list[dict]  # one row per code: code, kind, image change per step
    face_change: float  # mean per-pixel change between the grid's images (different z)

    def explain(self) -> str:
        if not self.face_change > 0:
            return "All images in the grid are identical, so the codes cannot be compared."
        strongest = max(self.effects, key=lambda e: e["image change per step"])
        step = strongest["image change per step"]
        return (f"Changing the code z changes the image by {self.face_change:.2g} per pixel. The code that matters "
                f"most is **{strongest['code']}**: one step of it changes the image by {step:.2g}, "
                f"{step / self.face_change:.0%} of a change of z. A code whose change stays near 0 was ignored by "
                "the generator.")


def code_effects(bundle: Bundle, grid: Samples, setting: CodeSetting, swept: str) -> CodeEffects:
    """Sweep `swept` over the grid's first SWEPT_CODES codes z, and measure every code's change per step."""
    zs = grid.codes[:SWEPT_CODES]
    labels, columns = code_sweep(bundle, zs, swept, setting)
    effects = []
    for c in bundle.codes:
        _, cols_c = code_sweep(bundle, zs, c["name"], setting)
        effects.append({"code": c["name"], "kind": c["kind"], "image change per step": round(sweep_change(cols_c), 4)})
    return CodeEffects(swept, labels, columns, effects, between_faces(grid.images))
