"""A conditional DCGAN in the style of ACGAN (Odena et al. 2017), as in the conditional-GAN lab on anime faces.

The generator reads z concatenated with the condition: one-hot slots for a categorical attribute (hair
colour with 5 or 12 values), a single 0/1 slot for a binary one (smiling, glasses). The discriminator is the
DCGAN body with a real/fake head plus one auxiliary classifier head per conditioning attribute (a softmax
over the values for a categorical attribute, one sigmoid logit for a binary one).

Interface the explorer relies on (the generator keeps the one of `training.models.dcgan`):

* `generator(z, labels=None)`: z float (B, latent_dim); labels int64 (B, A), one column per conditioning
  attribute in the order of `config.conditions`, holding value indices exactly as the dataset encodes them
  (for the default, conditioning on every dataset attribute, a dataset label row as is). `labels=None`
  means `generator.default_labels(B)`: a deterministic balanced cycle that walks through every combination
  (the first attribute changes fastest), so `generator(z)` alone already shows every condition.
* `generator.first_layer_preactivation(z, labels=None)` and `generator.first_batchnorm`.
* `generator.conditions` (tuple of `Attribute`) and `generator.condition_index(name)` to set one column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from training.attributes import Attribute
from training.errors import LatentExplorerError
from training.models import dcgan


@dataclass
class CGANConfig:
    latent_dim: int = 100
    image_size: int = 64
    channels: int = 3
    g_width: int = 64
    d_width: int = 64
    g_activation: str = "relu"
    # The attributes the model is conditioned on, as {"name": ..., "values": [...]} (Attribute.to_json()).
    conditions: list = field(default_factory=list)

    @staticmethod
    def for_dataset(attributes: tuple[Attribute, ...], names: list[str] | None = None, **sizes) -> CGANConfig:
        """Condition on the named dataset attributes (all of them when names is None), in dataset order."""
        known = [a.name for a in attributes]
        if not attributes:
            raise LatentExplorerError("a conditional GAN needs a labelled dataset, and this one has no attributes")
        if names is None:
            names = known
        unknown = [n for n in names if n not in known]
        if unknown:
            raise LatentExplorerError(
                f"the dataset has no attribute {', '.join(map(repr, unknown))}; it has {', '.join(known)}"
            )
        chosen = [a.to_json() for a in attributes if a.name in names]
        return CGANConfig(conditions=chosen, **sizes)

    def attributes(self) -> tuple[Attribute, ...]:
        return tuple(Attribute.from_json(a) for a in self.conditions)

    @property
    def condition_dim(self) -> int:
        return sum(condition_width(a) for a in self.attributes())

    def dcgan_config(self) -> dcgan.DCGANConfig:
        return dcgan.DCGANConfig(latent_dim=self.latent_dim, image_size=self.image_size, channels=self.channels,
                                 g_width=self.g_width, d_width=self.d_width, g_activation=self.g_activation,
                                 condition_dim=self.condition_dim if self._conditions_ok() else 0)

    def _conditions_ok(self) -> bool:
        try:
            return all(len(a.values) >= 2 for a in self.attributes())
        except (KeyError, TypeError, AttributeError):
            return False

    def validate(self) -> None:
        if not self.conditions:
            raise LatentExplorerError(
                "invalid conditional GAN config: conditions is empty; name at least one attribute"
            )
        if not self._conditions_ok():
            raise LatentExplorerError(
                "invalid conditional GAN config: each condition needs a 'name' and at least two 'values'"
            )
        names = [a.name for a in self.attributes()]
        if len(set(names)) != len(names):
            raise LatentExplorerError(f"invalid conditional GAN config: repeated condition in {names}")
        self.dcgan_config().validate("conditional GAN")


def condition_width(attribute: Attribute) -> int:
    """Generator input slots for one attribute: 1 for a binary one (0/1), one-hot otherwise."""
    return 1 if attribute.is_binary else len(attribute.values)


def encode_conditions(labels: torch.Tensor, attributes: tuple[Attribute, ...]) -> torch.Tensor:
    """int64 (B, A) value indices -> float (B, condition_dim) generator input."""
    parts = []
    for j, attribute in enumerate(attributes):
        column = labels[:, j]
        if attribute.is_binary:
            parts.append(column.float().unsqueeze(1))
        else:
            parts.append(F.one_hot(column, len(attribute.values)).float())
    return torch.cat(parts, dim=1)


def check_labels(labels: torch.Tensor, attributes: tuple[Attribute, ...], batch: int) -> None:
    if labels.dim() != 2 or labels.shape != (batch, len(attributes)):
        raise LatentExplorerError(
            f"labels must be one row of {len(attributes)} value indices ({', '.join(a.name for a in attributes)}) "
            f"per code: expected shape ({batch}, {len(attributes)}), got {tuple(labels.shape)}"
        )
    if labels.dtype != torch.int64:
        raise LatentExplorerError(f"labels must be int64 value indices, got {labels.dtype}")
    sizes = torch.tensor([len(a.values) for a in attributes], device=labels.device)
    if bool(((labels < 0) | (labels >= sizes)).any()):
        raise LatentExplorerError(
            "label value out of range: " + ", ".join(f"{a.name} takes 0..{len(a.values) - 1}" for a in attributes)
        )


def balanced_labels(n: int, attributes: tuple[Attribute, ...]) -> torch.Tensor:
    """Row i counts i in mixed radix over the attribute sizes (first attribute fastest): every combination
    appears once per cycle, so each value of each attribute is equally represented over a full cycle."""
    rows = torch.arange(n)
    columns = []
    stride = 1
    for attribute in attributes:
        k = len(attribute.values)
        columns.append((rows // stride) % k)
        stride *= k
    return torch.stack(columns, dim=1)


class ConditionalGenerator(dcgan.Generator):
    """(z, labels) -> image in [-1, 1]; the DCGAN generator with the condition appended to its input."""

    def __init__(self, config: CGANConfig):
        config.validate()
        super().__init__(config.dcgan_config())
        self.conditions = config.attributes()

    def condition_index(self, name: str) -> int:
        for j, attribute in enumerate(self.conditions):
            if attribute.name == name:
                return j
        raise LatentExplorerError(f"this model is not conditioned on {name!r}; it knows "
                                  f"{', '.join(a.name for a in self.conditions)}")

    def default_labels(self, n: int) -> torch.Tensor:
        return balanced_labels(n, self.conditions)

    def _input(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if labels is None:
            labels = self.default_labels(z.shape[0])
        check_labels(labels, self.conditions, z.shape[0])
        condition = encode_conditions(labels.to(z.device), self.conditions).to(z.dtype)
        return torch.cat([z.reshape(z.shape[0], -1), condition], dim=1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(self._input(z, labels))

    def first_layer_preactivation(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return super().first_layer_preactivation(self._input(z, labels))


class ACDiscriminator(dcgan.Discriminator):
    """image -> real/fake logit (forward) or (logit, [one classifier output per condition]) (heads)."""

    def __init__(self, config: CGANConfig):
        config.validate()
        super().__init__(config.dcgan_config())
        self.conditions = config.attributes()
        self.aux = nn.ModuleList(
            nn.Conv2d(self.feature_channels, 1 if a.is_binary else len(a.values), 4, 1, 0) for a in self.conditions
        )

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h = self.main(x)
        aux = [head(h).flatten(1) for head in self.aux]
        return self.head(h).view(-1), [a.view(-1) if a.shape[1] == 1 else a for a in aux]


def classification_loss(aux: list[torch.Tensor], labels: torch.Tensor, attributes: tuple[Attribute, ...],
                        value_weights: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Mean over conditions of BCE (binary) or cross-entropy (categorical), so the classification weight means
    the same thing whatever the number of conditions. value_weights (one tensor of per-value weights per
    condition, see balancing_weights) turns each condition's mean into a weighted mean over the batch."""
    losses = []
    for j, (out, attribute) in enumerate(zip(aux, attributes)):
        target = labels[:, j]
        if attribute.is_binary:
            each = F.binary_cross_entropy_with_logits(out, target.float(), reduction="none")
        else:
            each = F.cross_entropy(out, target, reduction="none")
        if value_weights is None:
            losses.append(each.mean())
        else:
            weights = value_weights[j].to(each.device)[target]
            losses.append((weights * each).sum() / weights.sum().clamp_min(1e-12))
    return torch.stack(losses).mean()


def balancing_weights(labels: torch.Tensor, attributes: tuple[Attribute, ...]) -> list[torch.Tensor]:
    """Per condition, weight 1 / (number of values x share of the value in labels): every value then carries the
    same total weight in a batch drawn from these labels (a value absent from them keeps weight 1)."""
    weights = []
    for j, attribute in enumerate(attributes):
        k = len(attribute.values)
        share = torch.bincount(labels[:, j].long(), minlength=k).double() / max(len(labels), 1)
        weights.append(torch.where(share > 0, 1 / (k * share.clamp_min(1e-12)), torch.ones_like(share)).float())
    return weights


def predict(aux: list[torch.Tensor], attributes: tuple[Attribute, ...]) -> torch.Tensor:
    """Classifier outputs -> int64 (B, A) predicted value indices."""
    columns = [(out > 0).long() if a.is_binary else out.argmax(dim=1) for out, a in zip(aux, attributes)]
    return torch.stack(columns, dim=1)


def classification_accuracy(aux: list[torch.Tensor], labels: torch.Tensor, attributes: tuple[Attribute, ...]) -> float:
    """Fraction of (image, attribute) pairs classified correctly."""
    return float((predict(aux, attributes) == labels).float().mean())


def build_networks(config: CGANConfig, training: bool = False) -> dict[str, nn.Module]:
    networks: dict[str, nn.Module] = {"generator": ConditionalGenerator(config)}
    if training:
        networks["discriminator"] = ACDiscriminator(config)
    return networks
