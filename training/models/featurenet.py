"""The feature network: a small CNN attribute classifier per dataset whose penultimate layer is our "Inception".

We cannot download Inception weights, so each dataset gets its own classifier trained on its real training
images to predict its labels (one head per attribute). The global-average-pooled output of its last conv block
is the feature space of our Fréchet distance and precision/recall; its held-out accuracy says how much the
features know about the things a viewer would check (hair colour, glasses, ...).

This module only holds the network and its config (the model registry builds it from a bundle like any model);
training and evaluation live in training.metrics (train_featurenet.py, evaluate.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from training.errors import LatentExplorerError

MIN_IMAGE_SIZE = 16
MAX_IMAGE_SIZE = 256
MAX_WIDTH = 512


@dataclass
class FeatureNetConfig:
    image_size: int = 64
    channels: int = 3
    width: int = 32  # channels of the first conv; the feature vector has 4 * width entries
    # Number of values of each attribute, in the dataset's attribute order. A 2-valued attribute gets one
    # logit (binary cross-entropy); more values get a softmax head.
    heads: list = field(default_factory=lambda: [2])

    def validate(self) -> None:
        problems = []
        if not MIN_IMAGE_SIZE <= self.image_size <= MAX_IMAGE_SIZE:
            problems.append(f"image_size must be between {MIN_IMAGE_SIZE} and {MAX_IMAGE_SIZE}, got {self.image_size}")
        if self.channels not in (1, 3):
            problems.append(f"channels must be 1 or 3, got {self.channels}")
        if not 4 <= self.width <= MAX_WIDTH:
            problems.append(f"width must be between 4 and {MAX_WIDTH}, got {self.width}")
        if not self.heads or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 2 for k in self.heads):
            problems.append(f"heads must list at least one attribute with >= 2 values each, got {self.heads!r}")
        if problems:
            raise LatentExplorerError("invalid feature network config: " + "; ".join(problems))

    @property
    def feature_dim(self) -> int:
        return 4 * self.width

    @property
    def downsamplings(self) -> int:
        """Stride-2 blocks that bring the image to about 4x4 (4 at 64x64, 3 at 32x32, 2 at 28x28)."""
        return max(1, int(math.log2(self.image_size)) - 2)


def _block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class FeatureNet(nn.Module):
    """image (B, C, H, W) in [-1, 1] -> features (B, 4 * width) -> one logit vector per attribute."""

    def __init__(self, config: FeatureNetConfig):
        super().__init__()
        config.validate()
        self.config = config
        w = config.width
        # 32, 32, 64, 128, 128 channels at 64px: full resolution stays narrow (eyes are a few pixels wide, so
        # the first conv runs at full resolution, but it is the expensive one on a CPU).
        widths = [w * min(2 ** max(k - 1, 0), 4) for k in range(config.downsamplings + 1)]
        layers = _block(config.channels, widths[0], 1)
        for a, b in zip(widths, widths[1:]):
            layers += _block(a, b, 2)
        layers += _block(widths[-1], config.feature_dim, 1)
        self.body = nn.Sequential(*layers)
        self.heads = nn.ModuleList(nn.Linear(config.feature_dim, 1 if k == 2 else k) for k in config.heads)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer (global average pool of the last conv block): what FD and P/R compare."""
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f = self.features(x)
        return [head(f) for head in self.heads]

    def loss(self, logits: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """Sum over attributes: binary cross-entropy for 2-valued ones, cross-entropy for the rest."""
        total = logits[0].new_zeros(())
        for a, (out, k) in enumerate(zip(logits, self.config.heads)):
            target = labels[:, a]
            if k == 2:
                total = total + F.binary_cross_entropy_with_logits(out.squeeze(1), target.float())
            else:
                total = total + F.cross_entropy(out, target)
        return total

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted label rows (B, A), int64, in the dataset's encoding."""
        return logits_to_labels(self(x), self.config.heads)


def logits_to_labels(logits: list[torch.Tensor], heads: list[int]) -> torch.Tensor:
    columns = [(out.squeeze(1) > 0).long() if k == 2 else out.argmax(dim=1) for out, k in zip(logits, heads)]
    return torch.stack(columns, dim=1)


def to_input(x: torch.Tensor, config: FeatureNetConfig, quantise: bool = True) -> torch.Tensor:
    """Fit images in [-1, 1] to the feature network: same channel count and size, quantised to 8 bits.

    Quantising generated images to 256 levels makes them exactly what a saved PNG would hold, so real
    (uint8) and generated images reach the network through the same path. quantise=False keeps the gradient
    (rounding has none), for optimising an image's code against its features.
    """
    x = x.float().clamp(-1, 1)
    if quantise:
        x = ((x + 1) * 127.5).round() / 127.5 - 1
    if x.shape[1] != config.channels:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] == 3:
            x = x.mean(dim=1, keepdim=True)
        else:
            raise LatentExplorerError(f"cannot feed {x.shape[1]}-channel images to the feature network")
    if x.shape[-1] != config.image_size or x.shape[-2] != config.image_size:
        x = F.interpolate(x, size=(config.image_size, config.image_size), mode="bilinear", antialias=True,
                          align_corners=False)
    return x


def build_networks(config: FeatureNetConfig, training: bool = False) -> dict[str, nn.Module]:
    """The model registry's builder: a feature network bundle holds one network, "featurenet"."""
    return {"featurenet": FeatureNet(config)}
