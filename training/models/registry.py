"""Which networks make up each model family, and how to build them from a bundle's config."""

from __future__ import annotations

from dataclasses import fields

from torch import nn

from training.errors import LatentExplorerError
from training.models import dcgan

FAMILIES = ("dcgan",)
# The network that turns a latent code into an image, per family.
GENERATOR_NAME = {"dcgan": "generator"}
_CONFIGS = {"dcgan": dcgan.DCGANConfig}


def model_config(family: str, data: dict):
    """Rebuild the config dataclass, refusing unknown or missing fields instead of guessing."""
    cls = _CONFIGS[family]
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise LatentExplorerError(f"unknown {family} config fields: {', '.join(unknown)}")
    for f in fields(cls):
        if f.name in data and not isinstance(data[f.name], type(getattr(cls(), f.name))):
            expected = type(getattr(cls(), f.name)).__name__
            raise LatentExplorerError(f"{family} config field {f.name!r} must be {expected}")
    config = cls(**data)
    config.validate()
    return config


def build_networks(family: str, data: dict, training: bool = False) -> dict[str, nn.Module]:
    """Fresh (untrained) networks for a family. Only the generator unless training."""
    if family not in _CONFIGS:
        raise LatentExplorerError(f"unknown model family {family!r}")
    config = model_config(family, data)
    networks: dict[str, nn.Module] = {"generator": dcgan.Generator(config)}
    if training:
        networks["discriminator"] = dcgan.Discriminator(config)
    return networks
