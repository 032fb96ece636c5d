"""Pictures and numbers for the slides: download buttons under a grid (PNG at native size and enlarged x4 with
nearest neighbour, so a projector never blurs them) and a page's numbers as CSV.

The files are made only when a button is clicked (Streamlit calls `data` then), so a slider move pays nothing.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import streamlit as st
import torch

from explorer.logic.figures import image_grid

ENLARGED = 4  # the enlarged PNG: every pixel becomes a 4x4 block
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def file_stem(*parts: object) -> str:
    """A file name from its parts (model, distribution, seed, step ...): safe characters only, joined by '_'.
    N(-10,1) becomes N-10-1, "celeba · DCGAN" celeba-DCGAN."""
    cleaned = [re.sub("-{2,}", "-", _UNSAFE.sub("-", str(p))).strip("-.") for p in parts
               if p is not None and str(p) != ""]
    return "_".join(c for c in cleaned if c)[:150] or "latent-explorer"


def png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def grid_png(images: torch.Tensor, nrow: int, scale: int) -> bytes:
    """The page's grid as a PNG at `scale` x the images' native size (nearest neighbour)."""
    return png_bytes(image_grid(images, nrow=nrow, scale=scale))


def csv_text(rows: Sequence[Mapping[str, object]] | Mapping[str, Sequence[object]]) -> str:
    """Rows (a list of dicts, or a dict of columns) as CSV, the header from the keys."""
    if isinstance(rows, Mapping):
        columns = list(rows)
        length = max((len(v) for v in rows.values()), default=0)
        rows = [{c: (rows[c][i] if i < len(rows[c]) else "") for c in columns} for i in range(length)]
    rows = list(rows)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _buttons(native: Callable[[], bytes], enlarged: Callable[[], bytes], stem: str, key: str,
             numbers: Sequence[Mapping[str, object]] | Mapping[str, Sequence[object]] | None) -> None:
    columns = st.columns(3 if numbers is not None else 2, gap="small")
    columns[0].download_button("PNG, native size", native, f"{stem}.png", "image/png", key=f"{key}_png",
                               icon=":material/download:", on_click="ignore")
    columns[1].download_button(f"PNG, enlarged x{ENLARGED}", enlarged, f"{stem}_x{ENLARGED}.png", "image/png",
                               key=f"{key}_png4", icon=":material/download:", on_click="ignore")
    if numbers is not None:
        # numbers may be a function, so a long table (a history of millions of steps) is built only on a click.
        columns[2].download_button("numbers (CSV)", lambda: csv_text(numbers() if callable(numbers) else numbers),
                                   f"{stem}.csv", "text/csv",
                                   key=f"{key}_csv", icon=":material/table:", on_click="ignore")


def grid_downloads(images: torch.Tensor, stem: str, key: str, nrow: int = 8,
                   numbers: Sequence[Mapping[str, object]] | Mapping[str, Sequence[object]] | None = None) -> None:
    """Download buttons in a row: the images' grid as PNG (native size, x4) and, given, the numbers as CSV."""
    _buttons(lambda: grid_png(images, nrow, 1), lambda: grid_png(images, nrow, ENLARGED), stem, key, numbers)


def picture_downloads(draw: Callable[[int], np.ndarray], stem: str, key: str,
                      numbers: Sequence[Mapping[str, object]] | Mapping[str, Sequence[object]] | None = None) -> None:
    """The same buttons for a composed picture (labelled rows, a saved snapshot): `draw(scale)` makes it with its
    images at `scale` x their native size (1 and ENLARGED)."""
    _buttons(lambda: png_bytes(draw(1)), lambda: png_bytes(draw(ENLARGED)), stem, key, numbers)
