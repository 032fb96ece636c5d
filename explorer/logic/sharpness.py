"""Sharpness of images as the variance of their Laplacian: blurry images have weak edges, so a low variance.

The usual blur detector (Pech-Pacheco et al. 2000; OpenCV's `cv2.Laplacian(grey, cv2.CV_64F).var()`): convert to
grey on the 0-255 scale, convolve with the 3x3 Laplacian [[0, 1, 0], [1, -4, 1], [0, 1, 0]] (no padding, so
borders add nothing), and take the variance over the pixels of each image.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights, as OpenCV's RGB -> grey


def grey_255(images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) in [-1, 1] -> (B, 1, H, W) grey on 0..255."""
    x = (images.detach().double().clamp(-1, 1) + 1) * 127.5
    if x.shape[1] == 3:
        weights = torch.tensor(LUMA, dtype=torch.float64).view(1, 3, 1, 1)
        return (x * weights).sum(dim=1, keepdim=True)
    return x.mean(dim=1, keepdim=True)


def laplacian_variance(images: torch.Tensor) -> np.ndarray:
    """Variance of the Laplacian of each image, (B,); higher is sharper."""
    if images.dim() != 4 or images.shape[-1] < 3 or images.shape[-2] < 3:
        raise ValueError(f"expected images (B, C, H, W) of at least 3x3 pixels, got {tuple(images.shape)}")
    response = F.conv2d(grey_255(images), LAPLACIAN.view(1, 1, 3, 3))
    return response.flatten(1).var(dim=1, unbiased=False).numpy()


def mean_sharpness(images: torch.Tensor) -> float:
    """The batch's mean variance of the Laplacian."""
    return float(laplacian_variance(images).mean())
