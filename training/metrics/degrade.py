"""Harmless artifacts: mild noise, blur, JPEG and colour jitter of real images (pixels in [-1, 1]).

A person still calls such an image real, so a feature space fit for "realistic" must keep it near its original:
the metrics study scores degraded real images against the real floor, and the feature network trains on them.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

# The study's "mild" settings: what a phone photo, a saved JPEG or a screen would do to an image.
MILD = {"noise": 0.05, "blur": 0.7, "jpeg": 75, "colour": 0.1}  # std (pixels in [-1, 1]), sigma (px), quality, ±share


def gaussian_noise(x: torch.Tensor, std: float | torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return (x + std * torch.randn(x.shape, generator=generator)).clamp(-1, 1)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur, edges replicated (radius 2 sigma, at least one pixel)."""
    radius = max(1, int(np.ceil(2 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-t ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    padded = F.pad(x.float(), (radius,) * 4, mode="replicate")
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1).contiguous(), groups=c)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1).contiguous(), groups=c)


def jpeg(x: torch.Tensor, quality: int | list[int]) -> torch.Tensor:
    """Each image saved as a JPEG of `quality` (one for all, or one per image) and read back."""
    qualities = [int(quality)] * len(x) if isinstance(quality, (int, np.integer)) else [int(q) for q in quality]
    pixels = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    out = []
    for image, q in zip(pixels, qualities):
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="JPEG", quality=q)
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())))
        out.append(decoded.reshape(image.shape))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 127.5 - 1


def colour_jitter(x: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Per image, brightness, contrast and (colour images) saturation each scaled by a factor in 1 ± strength."""
    b = len(x)

    def factor() -> torch.Tensor:
        return 1 + strength * (2 * torch.rand(b, 1, 1, 1, generator=generator) - 1)

    y = (x + 1) / 2  # [0, 1]
    y = y * factor()
    mean = y.mean(dim=(1, 2, 3), keepdim=True)
    y = mean + (y - mean) * factor()
    if x.shape[1] == 3:
        grey = y.mean(dim=1, keepdim=True)
        y = grey + (y - grey) * factor()
    return (y.clamp(0, 1) * 2 - 1)


def degrade(x: torch.Tensor, name: str, seed: int = 0) -> torch.Tensor:
    """One of the MILD degradations of a batch, seeded."""
    generator = torch.Generator().manual_seed(seed)
    if name == "noise":
        return gaussian_noise(x, MILD["noise"], generator)
    if name == "blur":
        return gaussian_blur(x, MILD["blur"])
    if name == "jpeg":
        return jpeg(x, MILD["jpeg"])
    if name == "colour":
        return colour_jitter(x, MILD["colour"], generator)
    raise ValueError(f"unknown degradation {name!r} (known: {', '.join(MILD)})")
