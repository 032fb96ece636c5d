"""A convolutional VAE whose encoder is the DCGAN discriminator's body and whose decoder is the DCGAN generator.

Sharing the DCGAN's shapes is deliberate: the explorer can put a VAE and a GAN side by side on the same
latent settings, and the decoder keeps the generator interface (see `training.models.dcgan`):
`decoder(z)` maps z (B, latent_dim) to images in [-1, 1] and exposes `first_layer_preactivation(z)` and
`first_batchnorm` for the collapse diagnostics. The prior is N(0, I) by construction (the KL term).

Loss per batch = recon + kl_weight * KL, where recon is the per-pixel mean of (x - x_hat)^2 with pixels in
[-1, 1] (or the per-pixel BCE on pixels mapped to [0, 1]) and KL = KL(q(z|x) || N(0, I)) summed over the
latent dimensions and averaged over the batch. On that scale the VAE lab's coefficients 1e-4 (faces) and
1e-5 (no faces: the codes drift off the prior) are the interesting comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from training.errors import LatentExplorerError
from training.models import dcgan

RECON_LOSSES = ("mse", "bce")


@dataclass
class VAEConfig:
    latent_dim: int = 100
    image_size: int = 64
    channels: int = 3
    g_width: int = 64  # decoder width (the generator's ngf)
    d_width: int = 64  # encoder width (the discriminator's ndf)
    g_activation: str = "relu"
    kl_weight: float = 1e-4
    recon_loss: str = "mse"

    def dcgan_config(self) -> dcgan.DCGANConfig:
        return dcgan.DCGANConfig(latent_dim=self.latent_dim, image_size=self.image_size, channels=self.channels,
                                 g_width=self.g_width, d_width=self.d_width, g_activation=self.g_activation)

    def validate(self) -> None:
        self.dcgan_config().validate("VAE")
        if not 0 <= self.kl_weight <= 1e3:
            raise LatentExplorerError(f"invalid VAE config: kl_weight must be between 0 and 1000, got {self.kl_weight}")
        if self.recon_loss not in RECON_LOSSES:
            raise LatentExplorerError(
                f"invalid VAE config: recon_loss must be one of {RECON_LOSSES}, got {self.recon_loss!r}"
            )


class Encoder(nn.Module):
    """image (B, C, S, S) -> (mu, logvar), each (B, latent_dim)."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        config.validate()
        body = config.dcgan_config()
        self.main = dcgan.discriminator_body(body)
        features = dcgan.body_channels(body)
        # A 4x4 convolution over the 4x4 feature map is a linear layer on the flattened features.
        self.mu = nn.Conv2d(features, config.latent_dim, 4, 1, 0)
        self.logvar = nn.Conv2d(features, config.latent_dim, 4, 1, 0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.main(x)
        # Clamping log-variance keeps exp() finite on a bad batch; real codes never get near +-20.
        return self.mu(h).flatten(1), self.logvar(h).flatten(1).clamp(-20.0, 20.0)


def decoder(config: VAEConfig) -> dcgan.Generator:
    """The decoder is literally the DCGAN generator (same parameter names, same diagnostics hooks)."""
    config.validate()
    return dcgan.Generator(config.dcgan_config())


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    eps = torch.randn(mu.shape, generator=generator).to(mu.device)
    return mu + eps * torch.exp(0.5 * logvar)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) summed over latent dimensions, averaged over the batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(dim=1).mean()


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-pixel mean; both tensors in [-1, 1]."""
    if kind == "mse":
        return F.mse_loss(x_hat, x)
    p = ((x_hat + 1) / 2).clamp(1e-6, 1 - 1e-6)
    return F.binary_cross_entropy(p, (x + 1) / 2)


def build_networks(config: VAEConfig, training: bool = False) -> dict[str, nn.Module]:
    """Encoder and decoder, always: the explorer needs both (latent map, reconstructions)."""
    del training
    return {"encoder": Encoder(config), "decoder": decoder(config)}
