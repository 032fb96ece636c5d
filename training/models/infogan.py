"""InfoGAN (Chen et al. 2016) on the DCGAN: categorical and continuous codes learned without labels
(the anime lab's bonus).

The generator reads z concatenated with the codes: one one-hot block per categorical code, then one slot per
continuous code, uniform on [-1, 1] during training. The discriminator is the DCGAN body with the real/fake
head plus the Q head, which guesses the codes back from an image; maximising that guess's likelihood (the
mutual-information lower bound) is what makes each code mean something. The Q loss is cross-entropy for a
categorical code and the Gaussian log-likelihood with unit variance (0.5 * squared error) for a continuous one.

Interface the explorer relies on (the generator keeps the one of `training.models.dcgan`):

* `generator(z, codes=None)`: z float (B, latent_dim); codes float (B, code_dim) laid out as
  `config.code_layout()` says (build them with `generator.make_codes(categories, continuous)`).
  `codes=None` means `generator.default_codes(B)`: categorical codes cycle through their values
  (row i takes value i mod size), continuous codes sit at 0, the centre of their training range.
* `config.code_layout()` / the bundle's `codes`: which generator input slots are which code, with absolute
  positions in the generator's input vector [z, codes] so the explorer can put a slider on each.
* `generator.first_layer_preactivation(z, codes=None)` and `generator.first_batchnorm`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from training.errors import LatentExplorerError
from training.models import dcgan

CONTINUOUS_RANGE = (-1.0, 1.0)
MAX_CODES = 64


@dataclass
class InfoGANConfig:
    latent_dim: int = 100  # incompressible noise; the codes come on top of it
    image_size: int = 64
    channels: int = 3
    g_width: int = 64
    d_width: int = 64
    g_activation: str = "relu"
    categorical_codes: list = field(default_factory=lambda: [10])  # number of values of each categorical code
    continuous_codes: int = 2
    q_width: int = 128  # hidden width of the Q head

    @property
    def code_dim(self) -> int:
        return sum(self.categorical_codes) + self.continuous_codes

    def dcgan_config(self) -> dcgan.DCGANConfig:
        return dcgan.DCGANConfig(latent_dim=self.latent_dim, image_size=self.image_size, channels=self.channels,
                                 g_width=self.g_width, d_width=self.d_width, g_activation=self.g_activation,
                                 condition_dim=self.code_dim if self._codes_ok() else 0)

    def _codes_ok(self) -> bool:
        return (all(isinstance(k, int) and not isinstance(k, bool) and 2 <= k <= 1024 for k in self.categorical_codes)
                and isinstance(self.continuous_codes, int) and 0 <= self.continuous_codes <= MAX_CODES
                and len(self.categorical_codes) <= MAX_CODES)

    def validate(self) -> None:
        if not self._codes_ok():
            raise LatentExplorerError(
                f"invalid InfoGAN config: categorical codes need 2 to 1024 values each (got {self.categorical_codes}) "
                f"and continuous_codes must be between 0 and {MAX_CODES} (got {self.continuous_codes})"
            )
        if not self.categorical_codes and not self.continuous_codes:
            raise LatentExplorerError("invalid InfoGAN config: it needs at least one categorical or continuous code")
        if not 4 <= self.q_width <= dcgan.MAX_WIDTH:
            raise LatentExplorerError(f"invalid InfoGAN config: q_width must be between 4 and {dcgan.MAX_WIDTH}")
        self.dcgan_config().validate("InfoGAN")

    def code_layout(self) -> list[dict]:
        """One entry per code: name, kind, and its [start, stop) slots in the generator input [z, codes]."""
        layout, start = [], self.latent_dim
        for i, k in enumerate(self.categorical_codes):
            layout.append({"name": f"category_{i + 1}", "kind": "categorical", "values": k,
                           "start": start, "stop": start + k})
            start += k
        for i in range(self.continuous_codes):
            layout.append({"name": f"continuous_{i + 1}", "kind": "continuous", "low": CONTINUOUS_RANGE[0],
                           "high": CONTINUOUS_RANGE[1], "start": start, "stop": start + 1})
            start += 1
        return layout


def make_codes(categories: torch.Tensor, continuous: torch.Tensor, config: InfoGANConfig) -> torch.Tensor:
    """int64 (B, n_categorical) value indices and float (B, n_continuous) values -> float (B, code_dim)."""
    if categories.shape[1:] != (len(config.categorical_codes),) or continuous.shape[1:] != (config.continuous_codes,):
        raise LatentExplorerError(
            f"this InfoGAN has {len(config.categorical_codes)} categorical and {config.continuous_codes} continuous "
            f"codes; got {tuple(categories.shape)} and {tuple(continuous.shape)}"
        )
    parts = [F.one_hot(categories[:, i], k).float() for i, k in enumerate(config.categorical_codes)]
    return torch.cat(parts + [continuous.float()], dim=1)


def sample_codes(n: int, config: InfoGANConfig, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Training codes: categories uniform over their values, continuous codes uniform on [-1, 1]."""
    categories = torch.stack([torch.randint(k, (n,), generator=generator) for k in config.categorical_codes], 1) \
        if config.categorical_codes else torch.zeros(n, 0, dtype=torch.int64)
    low, high = CONTINUOUS_RANGE
    continuous = torch.rand(n, config.continuous_codes, generator=generator) * (high - low) + low
    return categories, continuous


class InfoGenerator(dcgan.Generator):
    """(z, codes) -> image in [-1, 1]."""

    def __init__(self, config: InfoGANConfig):
        config.validate()
        super().__init__(config.dcgan_config())
        self.info_config = config

    def make_codes(self, categories: torch.Tensor, continuous: torch.Tensor) -> torch.Tensor:
        return make_codes(categories, continuous, self.info_config)

    def default_codes(self, n: int) -> torch.Tensor:
        rows = torch.arange(n)
        categories = torch.stack([rows % k for k in self.info_config.categorical_codes], 1) \
            if self.info_config.categorical_codes else torch.zeros(n, 0, dtype=torch.int64)
        return self.make_codes(categories, torch.zeros(n, self.info_config.continuous_codes))

    def _input(self, z: torch.Tensor, codes: torch.Tensor | None) -> torch.Tensor:
        if codes is None:
            codes = self.default_codes(z.shape[0])
        if codes.shape != (z.shape[0], self.info_config.code_dim):
            raise LatentExplorerError(
                f"codes must have shape ({z.shape[0]}, {self.info_config.code_dim}), got {tuple(codes.shape)}"
            )
        return torch.cat([z.reshape(z.shape[0], -1), codes.to(device=z.device, dtype=z.dtype)], dim=1)

    def forward(self, z: torch.Tensor, codes: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(self._input(z, codes))

    def first_layer_preactivation(self, z: torch.Tensor, codes: torch.Tensor | None = None) -> torch.Tensor:
        return super().first_layer_preactivation(self._input(z, codes))


class InfoDiscriminator(dcgan.Discriminator):
    """image -> real/fake logit (forward) or (logit, Q output (B, code_dim)) (heads)."""

    def __init__(self, config: InfoGANConfig):
        config.validate()
        super().__init__(config.dcgan_config())
        self.info_config = config
        self.q = nn.Sequential(
            nn.Conv2d(self.feature_channels, config.q_width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(config.q_width),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(config.q_width, config.code_dim, 1),
        )

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.main(x)
        return self.head(h).view(-1), self.q(h).flatten(1)


def info_loss(q: torch.Tensor, categories: torch.Tensor, continuous: torch.Tensor,
              config: InfoGANConfig) -> tuple[torch.Tensor, float]:
    """Q's negative log-likelihood of the codes (summed over codes, mean over the batch), and its accuracy
    on the categorical codes (nan when there are none)."""
    loss = q.new_zeros(())
    correct = []
    start = 0
    for i, k in enumerate(config.categorical_codes):
        logits = q[:, start:start + k]
        loss = loss + F.cross_entropy(logits, categories[:, i])
        correct.append((logits.argmax(1) == categories[:, i]).float().mean())
        start += k
    if config.continuous_codes:
        loss = loss + 0.5 * (q[:, start:] - continuous).pow(2).sum(1).mean()
    accuracy = float(torch.stack(correct).mean()) if correct else float("nan")
    return loss, accuracy


def build_networks(config: InfoGANConfig, training: bool = False) -> dict[str, nn.Module]:
    networks: dict[str, nn.Module] = {"generator": InfoGenerator(config)}
    if training:
        networks["discriminator"] = InfoDiscriminator(config)
    return networks
