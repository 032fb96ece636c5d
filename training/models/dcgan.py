"""The DCGAN of the PyTorch tutorial (Radford et al. 2015), with width, latent size and image size configurable.

At 64x64 with the tutorial's widths the parameter names (main.0.weight, main.1.running_mean, ...)
are exactly the tutorial's, which is what lets us import a student's own netG.pth.

Interface every family's generator keeps (the explorer relies on it; vae, cgan and infogan reuse
`Generator` so they inherit it):

* `generator(z)` with z float (B, latent_dim) returns images (B, C, S, S) in [-1, 1]; any extra input a
  family has (conditions, InfoGAN codes) is an optional keyword argument with a deterministic default;
* `generator.first_layer_preactivation(z)` is what the first BatchNorm sees for those codes, and
  `generator.first_batchnorm` is that BatchNorm (its running statistics describe the training inputs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from training.errors import LatentExplorerError

IMAGE_SIZES = (32, 64, 128)
ACTIVATIONS = ("relu", "leaky_relu")
MAX_LATENT_DIM = 4096  # refuse absurd configs before allocating anything
MAX_WIDTH = 1024


@dataclass
class DCGANConfig:
    latent_dim: int = 100  # the tutorial's nz
    image_size: int = 64
    channels: int = 3
    g_width: int = 64  # ngf
    d_width: int = 64  # ndf
    g_activation: str = "relu"  # the conditional-GAN lab compares ReLU with LeakyReLU in the generator
    condition_dim: int = 0  # extra generator inputs appended to z (conditional GAN, InfoGAN codes)

    def validate(self, what: str = "DCGAN") -> None:
        problems = []
        if self.image_size not in IMAGE_SIZES:
            problems.append(f"image_size must be one of {IMAGE_SIZES}, got {self.image_size}")
        if not 1 <= self.latent_dim <= MAX_LATENT_DIM:
            problems.append(f"latent_dim must be between 1 and {MAX_LATENT_DIM}, got {self.latent_dim}")
        for name in ("g_width", "d_width"):
            if not 4 <= getattr(self, name) <= MAX_WIDTH:
                problems.append(f"{name} must be between 4 and {MAX_WIDTH}, got {getattr(self, name)}")
        if self.channels not in (1, 3):
            problems.append(f"channels must be 1 or 3, got {self.channels}")
        if self.g_activation not in ACTIVATIONS:
            problems.append(f"g_activation must be one of {ACTIVATIONS}, got {self.g_activation!r}")
        if not 0 <= self.condition_dim <= MAX_LATENT_DIM:
            problems.append(f"condition_dim must be between 0 and {MAX_LATENT_DIM}, got {self.condition_dim}")
        if problems:
            raise LatentExplorerError(f"invalid {what} config: " + "; ".join(problems))

    @property
    def upsamplings(self) -> int:
        """Stride-2 layers between the 4x4 seed and the output (4 at 64x64, as in the tutorial)."""
        return int(math.log2(self.image_size)) - 2


def _activation(name: str) -> nn.Module:
    return nn.ReLU(True) if name == "relu" else nn.LeakyReLU(0.2, inplace=True)


class Generator(nn.Module):
    """z (B, latent_dim [+ condition_dim]) -> image (B, C, H, W) in [-1, 1]."""

    def __init__(self, config: DCGANConfig):
        super().__init__()
        config.validate()
        self.config = config
        mults = [2 ** k for k in reversed(range(config.upsamplings))]  # 8, 4, 2, 1 at 64x64
        in_dim = config.latent_dim + config.condition_dim
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(in_dim, config.g_width * mults[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(config.g_width * mults[0]),
            _activation(config.g_activation),
        ]
        for a, b in zip(mults, mults[1:]):
            layers += [
                nn.ConvTranspose2d(config.g_width * a, config.g_width * b, 4, 2, 1, bias=False),
                nn.BatchNorm2d(config.g_width * b),
                _activation(config.g_activation),
            ]
        layers += [nn.ConvTranspose2d(config.g_width, config.channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.view(z.shape[0], -1, 1, 1))

    def first_layer_preactivation(self, z: torch.Tensor) -> torch.Tensor:
        """What the first BatchNorm sees: the collapse diagnostics compare it with the BN's running stats."""
        return self.main[0](z.view(z.shape[0], -1, 1, 1))

    @property
    def first_batchnorm(self) -> nn.BatchNorm2d:
        return self.main[1]


def discriminator_body(config: DCGANConfig) -> nn.Sequential:
    """The tutorial discriminator without its last layer: image (B, C, S, S) -> features (B, F, 4, 4).

    The conditional GAN's and InfoGAN's discriminators and the VAE's encoder all read images with it.
    """
    mults = [2 ** k for k in range(config.upsamplings)]  # 1, 2, 4, 8 at 64x64
    layers: list[nn.Module] = [
        nn.Conv2d(config.channels, config.d_width, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2, inplace=True),
    ]
    for a, b in zip(mults, mults[1:]):
        layers += [
            nn.Conv2d(config.d_width * a, config.d_width * b, 4, 2, 1, bias=False),
            nn.BatchNorm2d(config.d_width * b),
            nn.LeakyReLU(0.2, inplace=True),
        ]
    return nn.Sequential(*layers)


def body_channels(config: DCGANConfig) -> int:
    """Channels of the body's 4x4 feature map (d_width * 8 at 64x64)."""
    return config.d_width * 2 ** (config.upsamplings - 1)


class Discriminator(nn.Module):
    """image -> features (B, d_width * 8 * ...) -> one real/fake logit.

    The tutorial ends in nn.Sigmoid with BCELoss; we return the logit and train with
    BCEWithLogitsLoss, which is the same loss computed without overflow. `features` is
    exposed so conditional and InfoGAN heads can share the body.
    """

    def __init__(self, config: DCGANConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.main = discriminator_body(config)
        self.feature_channels = body_channels(config)
        self.head = nn.Conv2d(self.feature_channels, 1, 4, 1, 0, bias=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.main(x)).view(-1)


def weights_init(module: nn.Module) -> None:
    """The tutorial's init: conv weights ~ N(0, 0.02), BatchNorm weights ~ N(1, 0.02), biases 0."""
    name = module.__class__.__name__
    if "Conv" in name:
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build_networks(config: DCGANConfig, training: bool = False) -> dict[str, nn.Module]:
    """The generator, plus the discriminator when training."""
    networks: dict[str, nn.Module] = {"generator": Generator(config)}
    if training:
        networks["discriminator"] = Discriminator(config)
    return networks
