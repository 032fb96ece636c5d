"""One record per model family: everything the package and the app need to know about it.

Adding a family means adding its model file (training/models/) and one `Family` record below; nothing else
compares family names.

Families and their networks (names are the prefixes of the tensors in weights.safetensors):

| family    | config          | built for the explorer     | added for training |
|-----------|-----------------|----------------------------|--------------------|
| "dcgan"   | DCGANConfig     | generator                  | discriminator      |
| "vae"     | VAEConfig       | encoder, decoder           | (nothing)          |
| "cgan"    | CGANConfig      | generator (z, labels)      | discriminator (real/fake + one classifier per condition) |
| "infogan" | InfoGANConfig   | generator (z, codes)       | discriminator (real/fake + Q head) |
| "featurenet" | FeatureNetConfig | featurenet (evaluation classifier for training.metrics; no generator) | (nothing) |

`generator_name(family)` names the network that maps z (B, latent_dim) to images in [-1, 1]; every one of
them accepts `net(z)` alone and exposes `first_layer_preactivation(z)` and `first_batchnorm`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from torch import nn

from training.errors import LatentExplorerError
from training.models import cgan, dcgan, featurenet, infogan, vae


@dataclass(frozen=True)
class Capabilities:
    """What a family can do, asked by every caller instead of comparing family names.

    conditional: the generator takes condition rows (`labels`) described by the bundle's `conditions`;
    info_codes: the generator takes InfoGAN codes (`codes`) described by the bundle's code layout;
    has_encoder: images can be encoded to codes (x -> (mu, logvar)); generates: it has a generator at all;
    adversarial: trained against a discriminator (its history has D's numbers; the GAN loop trains it);
    trainable: `python -m training train` trains it (the others have their own command or are imported);
    pages: the explorer pages that apply to it (ids: sample, sweep, conditions, codes, directions, vae_map,
    compare, interpolate, arithmetic, replay, photo; sweep, interpolate and arithmetic feed z alone).
    """

    generates: bool
    conditional: bool = False
    info_codes: bool = False
    has_encoder: bool = False
    adversarial: bool = False
    trainable: bool = False
    pages: frozenset[str] = frozenset()

    @property
    def generator_input(self) -> str | None:
        """The keyword the generator takes besides z: "labels" (condition rows, described by the bundle's
        `conditions`), "codes" (InfoGAN codes, described by the bundle's `codes`) or None."""
        return "labels" if self.conditional else "codes" if self.info_codes else None


@dataclass(frozen=True)
class Family:
    """A model family. `steps` and `game` name classes as "module:Class" and are imported only when training:
    the training loops import this registry, so it cannot import them."""

    name: str
    display: str  # how the app and messages name it ("conditional GAN")
    config: type  # its config dataclass, saved in every bundle's config.json as "model"
    build: Callable[..., dict[str, nn.Module]]  # build(config, training=False) -> networks by name
    capabilities: Capabilities
    generator: str | None = None  # the network that maps codes to images
    steps: str | None = None  # its training step: set up with (family, dataset, ...), then `steps(step)` per step
    game: str | None = None  # the adversarial families: their inputs and losses inside the GAN loop
    history_keys: Callable[[Any], tuple[str, ...]] = lambda config: ()  # the curves its training logs
    live_knobs: tuple[str, ...] = ()  # what a paused Train live run may change; () when Train live does not offer it

    def steps_class(self) -> type:
        return _resolve(self.steps, f"{self.name} has no training step")

    def game_class(self) -> type:
        return _resolve(self.game, f"{self.name} is not trained adversarially")


def _resolve(target: str | None, missing: str):
    if target is None:
        raise LatentExplorerError(missing)
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


GAN_HISTORY = ("loss_g", "loss_d", "d_real", "d_fake")
_GAN_KNOBS = ("lr_g", "lr_d", "d_ratio", "label_smoothing", "label_flip", "noise")
_GENERATOR_PAGES = frozenset({"sample", "compare", "replay"})
# The generator takes a code z alone on these pages.
Z_ONLY_PAGES = frozenset({"sweep", "interpolate", "directions", "arithmetic", "photo"})


def _infogan_history(config) -> tuple[str, ...]:
    return GAN_HISTORY + ("loss_info",) + (("info_acc",) if config.categorical_codes else ())


_RECORDS = (
    Family("dcgan", "DCGAN", dcgan.DCGANConfig, dcgan.build_networks,
           Capabilities(generates=True, adversarial=True, trainable=True, pages=_GENERATOR_PAGES | Z_ONLY_PAGES),
           generator="generator", steps="training.loops.gan:AdversarialSteps", game="training.loops.gan:Game",
           history_keys=lambda config: GAN_HISTORY, live_knobs=_GAN_KNOBS),
    Family("vae", "VAE", vae.VAEConfig, vae.build_networks,
           Capabilities(generates=True, has_encoder=True, trainable=True,
                        pages=_GENERATOR_PAGES | Z_ONLY_PAGES | {"vae_map"}),
           generator="decoder", steps="training.loops.vae:VAESteps",
           history_keys=lambda config: ("loss", "recon", "kl"), live_knobs=("lr_g", "lr_d", "kl_weight")),
    Family("cgan", "conditional GAN", cgan.CGANConfig, cgan.build_networks,
           Capabilities(generates=True, conditional=True, adversarial=True, trainable=True,
                        pages=_GENERATOR_PAGES | {"conditions"}),
           generator="generator", steps="training.loops.gan:AdversarialSteps",
           game="training.loops.gan:ConditionalGame",
           history_keys=lambda config: GAN_HISTORY + ("class_real", "class_fake", "acc_real", "acc_fake"),
           live_knobs=_GAN_KNOBS + ("class_weight",)),
    Family("infogan", "InfoGAN", infogan.InfoGANConfig, infogan.build_networks,
           Capabilities(generates=True, info_codes=True, adversarial=True, trainable=True,
                        pages=_GENERATOR_PAGES | {"codes"}),
           generator="generator", steps="training.loops.gan:AdversarialSteps", game="training.loops.gan:InfoGame",
           history_keys=_infogan_history),
    Family("featurenet", "feature network", featurenet.FeatureNetConfig, featurenet.build_networks,
           Capabilities(generates=False)),
)
_BY_NAME = {record.name: record for record in _RECORDS}
FAMILIES = tuple(_BY_NAME)
# The families `python -m training train` trains (the others are trained by their own command or imported).
TRAINABLE = tuple(record.name for record in _RECORDS if record.capabilities.trainable)
# The families Train live offers.
LIVE = tuple(record.name for record in _RECORDS if record.live_knobs)


def family(name: str) -> Family:
    if name not in _BY_NAME:
        raise LatentExplorerError(f"unknown model family {name!r} (known: {', '.join(FAMILIES)})")
    return _BY_NAME[name]


def capabilities(name: str) -> Capabilities:
    return family(name).capabilities


def config_class(name: str) -> type:
    """The family's config dataclass (DCGANConfig, VAEConfig, ...)."""
    return family(name).config


def generator_name(name: str) -> str | None:
    """The network that turns a latent code into an image; None for a family without one."""
    return family(name).generator


def first_family_for(page: str) -> str:
    """The first family a page applies to: the one whose `--model` a page suggests training."""
    return next(record.name for record in _RECORDS if page in record.capabilities.pages)


def trains_as_vae(name: str) -> bool:
    """True for the families trained with one loss, an encoder and a decoder and no discriminator."""
    caps = capabilities(name)
    return caps.trainable and not caps.adversarial


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
    return _BY_NAME[family].build(config, training=training)
