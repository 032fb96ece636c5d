"""How much images change: per-pixel differences between two batches, or between the images of one batch. The
conditional-GAN pairs and the InfoGAN code sweeps read their effects with these (pixels on the [0, 1] scale)."""

from __future__ import annotations

import torch


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
