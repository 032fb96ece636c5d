"""PNG grids of images in [-1, 1]: the training snapshots and `python -m training sample`."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import torch
import torchvision.utils as vutils

from training.bundle.atomic import atomic_write_bytes


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8) -> None:
    """A PNG grid through torchvision's make_grid, as the tutorial does, written atomically."""
    from PIL import Image

    grid = vutils.make_grid(images.detach().cpu(), nrow=nrow, padding=2, normalize=True, value_range=(-1, 1))
    array = (grid.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy())
    buffer = BytesIO()
    Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
