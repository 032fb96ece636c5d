"""A network (a real one, or a stand-in a test builds) wrapped as a loaded bundle, for the functions that take one."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from training.bundle import Bundle
from training.models import registry


def bundle_of(network: nn.Module, family: str = "dcgan", latent_dim: int = 100, encoder: nn.Module | None = None,
              model: dict | None = None, prior: dict | None = None) -> Bundle:
    """A Bundle whose generator (the VAE's decoder) is `network`; `model` adds config fields (a conditional GAN's
    "conditions", an InfoGAN's whole config)."""
    config = {"family": family, "name": f"test {family}", "model": {"latent_dim": latent_dim, **(model or {})},
              "dataset": {"name": "toyfaces"}}
    if prior is not None:
        config["prior"] = prior
    networks = {registry.generator_name(family): network}
    if encoder is not None:
        networks["encoder"] = encoder
    return Bundle(Path("."), config, networks)
