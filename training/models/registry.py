"""Which networks make up each model family, and how to build them from a bundle's config.

Families and their networks (names are the prefixes of the tensors in weights.safetensors):

| family    | config          | built for the explorer     | added for training |
|-----------|-----------------|----------------------------|--------------------|
| "dcgan"   | DCGANConfig     | generator                  | discriminator      |
| "vae"     | VAEConfig       | encoder, decoder           | (nothing)          |
| "cgan"    | CGANConfig      | generator (z, labels)      | discriminator (real/fake + one classifier per condition) |
| "infogan" | InfoGANConfig   | generator (z, codes)       | discriminator (real/fake + Q head) |
| "featurenet" | FeatureNetConfig | featurenet (evaluation classifier for training.metrics; no generator) | (nothing) |

`GENERATOR_NAME[family]` names the network that maps z (B, latent_dim) to images in [-1, 1]; every one of
them accepts `net(z)` alone and exposes `first_layer_preactivation(z)` and `first_batchnorm`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from torch import nn

from training.errors import LatentExplorerError
from training.models import cgan, dcgan, featurenet, infogan, vae

FAMILIES = ("dcgan", "vae", "cgan", "infogan", "featurenet")
# The network that turns a latent code into an image, per family.
GENERATOR_NAME = {"dcgan": "generator", "vae": "decoder", "cgan": "generator", "infogan": "generator"}
_CONFIGS = {"dcgan": dcgan.DCGANConfig, "vae": vae.VAEConfig, "cgan": cgan.CGANConfig,
            "infogan": infogan.InfoGANConfig, "featurenet": featurenet.FeatureNetConfig}
_BUILDERS = {"dcgan": dcgan.build_networks, "vae": vae.build_networks, "cgan": cgan.build_networks,
             "infogan": infogan.build_networks, "featurenet": featurenet.build_networks}


@dataclass(frozen=True)
class Capabilities:
    """What a family can do, asked by every caller instead of comparing family names.

    conditional: the generator takes condition rows (`labels`) described by the bundle's `conditions`;
    info_codes: the generator takes InfoGAN codes (`codes`) described by the bundle's code layout;
    has_encoder: images can be encoded to codes (x -> (mu, logvar)); generates: it has a generator at all;
    loop: the training loop that trains it ("gan", "vae" or None when it is not trained by `train`);
    pages: the explorer pages that apply to it (ids: sample, sweep, conditions, codes, directions, vae_map,
    compare, interpolate, arithmetic, replay; sweep, interpolate and arithmetic feed z alone).
    """

    generates: bool
    conditional: bool = False
    info_codes: bool = False
    has_encoder: bool = False
    loop: str | None = None
    pages: frozenset[str] = frozenset()

    @property
    def generator_input(self) -> str | None:
        """The keyword the generator takes besides z: "labels" (condition rows, described by the bundle's
        `conditions`), "codes" (InfoGAN codes, described by the bundle's `codes`) or None."""
        return "labels" if self.conditional else "codes" if self.info_codes else None


_GENERATOR_PAGES = frozenset({"sample", "compare", "replay"})
# The generator takes a code z alone on these pages.
_Z_ONLY_PAGES = frozenset({"sweep", "interpolate", "directions", "arithmetic", "photo"})
CAPABILITIES = {
    "dcgan": Capabilities(generates=True, loop="gan", pages=_GENERATOR_PAGES | _Z_ONLY_PAGES),
    "vae": Capabilities(generates=True, has_encoder=True, loop="vae",
                        pages=_GENERATOR_PAGES | _Z_ONLY_PAGES | {"vae_map"}),
    "cgan": Capabilities(generates=True, conditional=True, loop="gan", pages=_GENERATOR_PAGES | {"conditions"}),
    "infogan": Capabilities(generates=True, info_codes=True, loop="gan", pages=_GENERATOR_PAGES | {"codes"}),
    "featurenet": Capabilities(generates=False),
}
# The families `python -m training train` trains (the others are trained by their own command or imported).
TRAINABLE = tuple(family for family in FAMILIES if CAPABILITIES[family].loop is not None)


def capabilities(family: str) -> Capabilities:
    if family not in CAPABILITIES:
        raise LatentExplorerError(f"unknown model family {family!r} (known: {', '.join(FAMILIES)})")
    return CAPABILITIES[family]


def config_class(family: str) -> type:
    """The family's config dataclass (DCGANConfig, VAEConfig, ...)."""
    if family not in _CONFIGS:
        raise LatentExplorerError(f"unknown model family {family!r} (known: {', '.join(FAMILIES)})")
    return _CONFIGS[family]


def trains_as_vae(family: str) -> bool:
    """True for the families the VAE loop trains (one loss, an encoder and a decoder, no discriminator)."""
    return capabilities(family).loop == "vae"


def model_config(family: str, data: dict):
    """Rebuild the config dataclass, refusing unknown or missing fields instead of guessing."""
    cls = config_class(family)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise LatentExplorerError(f"unknown {family} config fields: {', '.join(unknown)}")
    defaults = cls()
    values = dict(data)
    for f in fields(cls):
        if f.name not in values:
            continue
        expected = type(getattr(defaults, f.name))
        value = values[f.name]
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            if abs(value) > 1e300:  # float() of a 400-digit integer raises OverflowError
                raise LatentExplorerError(f"{family} config field {f.name!r} is out of range")
            values[f.name] = float(value)  # JSON writes 1.0 as 1 in some tools; that is still a float field
        elif not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            raise LatentExplorerError(f"{family} config field {f.name!r} must be {expected.__name__}")
    config = cls(**values)
    config.validate()
    return config


def build_networks(family: str, data: dict, training: bool = False) -> dict[str, nn.Module]:
    """Fresh (untrained) networks for a family: what the explorer needs, plus the rest when training."""
    config = model_config(family, data)
    return _BUILDERS[family](config, training=training)
