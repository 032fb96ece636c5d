"""The training config every loop reads (saved in the bundle's config.json as "training") and the device it names."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from training.errors import LatentExplorerError
from training.latent.priors import LatentDistribution
from training.loops import speed

DEFAULT_SNAPSHOT_STEPS = (0, 200, 1000, 2500, 5000, 10000, 20000)
SNAPSHOT_SAMPLES = 64
# Measured by the run and written by Run.finish() into the training section; not part of the recipe.
RUNTIME_FIELDS = ("seconds", "device_used", "images_per_second")
# Options added after bundles were shipped, with the value that reproduces what those bundles did without them.
ADDED_FIELDS = {"balance_classes": False}


@dataclass
class TrainConfig:
    """Everything about how a model was trained; saved in the bundle's config.json (section "training")."""

    steps: int = 5000
    batch_size: int = 128  # the tutorial's
    lr_g: float = 2e-4  # generator (VAE: decoder)
    lr_d: float = 2e-4  # discriminator (VAE: encoder)
    beta1: float = 0.5
    beta2: float = 0.999
    seed: int = 0
    noise: dict = field(default_factory=lambda: {"kind": "normal", "mean": 0.0, "std": 1.0})
    snapshot_steps: tuple[int, ...] = DEFAULT_SNAPSHOT_STEPS
    checkpoint_every: int = 500
    device: str = "auto"
    # Balance of the two players (the anime lab halves D's update frequency: d_every=2).
    d_every: int = 1  # update D on every k-th step only
    d_steps: int = 1  # D updates (each on a fresh batch) on a step where D is updated
    # Label tricks for D's real/fake targets (the VAE lab's GAN part).
    label_smoothing: float = 0.0  # one-sided: D's target for real images is 1 - label_smoothing
    label_flip: float = 0.0  # probability that each of D's real/fake targets is swapped
    class_weight: float = 1.0  # conditional GAN: loss = adversarial + class_weight * classification
    # ACGAN's D also learns to classify fakes by their requested labels. On toyfaces that let G and D agree on
    # invisible codes (D "saw" 98% of requested hair colours; an independent classifier saw chance), so by
    # default D's classifier learns from real images only and G must draw attributes a real-image classifier sees.
    classify_fakes: bool = False
    # Conditional GAN: weigh each attribute value's classification loss by the inverse of its share of the training
    # labels. CelebA's Eyeglasses (6%) or Blond_Hair (15%) are otherwise a rounding error in the loss, and the
    # shipped cGAN drew glasses for only a third of the faces asked to wear them.
    balance_classes: bool = False
    info_weight: float = 1.0  # InfoGAN: loss = adversarial + info_weight * Q's code likelihood loss
    diverge_patience: int = 1000  # stop when D(G(z)) < 1e-3 for this many consecutive steps
    holdout_fraction: float = 0.1  # VAE: share of the dataset held out for test MSE and latents.npz
    # Speed options (loops/speed.py): how each step's arithmetic runs; weights, optimizer state and losses stay fp32.
    precision: str = "fp32"  # "bf16": forward passes under bf16 autocast
    channels_last: bool = False  # networks and real batches in NHWC memory order (faster convolutions on CPUs)

    def validate(self) -> None:
        if self.steps < 1:
            raise LatentExplorerError(f"--steps must be at least 1 (got {self.steps})")
        if self.batch_size < 2:
            raise LatentExplorerError(
                f"--batch-size must be at least 2 (BatchNorm needs a batch), got {self.batch_size}"
            )
        for name in ("lr_g", "lr_d"):
            if not 0 < getattr(self, name) < 1:
                raise LatentExplorerError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise LatentExplorerError(f"--{name} must be in [0, 1), got {getattr(self, name)}")
        if self.checkpoint_every < 1:
            raise LatentExplorerError(f"--checkpoint-every must be at least 1 (got {self.checkpoint_every})")
        for name, top in (("d_every", 1000), ("d_steps", 100)):
            if not 1 <= getattr(self, name) <= top:
                raise LatentExplorerError(f"--{name.replace('_', '-')} must be between 1 and {top}, "
                                          f"got {getattr(self, name)}")
        for name in ("label_smoothing", "label_flip"):
            if not 0 <= getattr(self, name) < 0.5:
                raise LatentExplorerError(f"--{name.replace('_', '-')} must be in [0, 0.5), got {getattr(self, name)}")
        for name in ("class_weight", "info_weight"):
            if not (math.isfinite(getattr(self, name)) and 0 <= getattr(self, name) <= 1e6):
                raise LatentExplorerError(f"--{name.replace('_', '-')} must be between 0 and 1e6, "
                                          f"got {getattr(self, name)}")
        if self.diverge_patience < 1:
            raise LatentExplorerError(f"--diverge-patience must be at least 1 (got {self.diverge_patience})")
        if not 0 < self.holdout_fraction < 0.9:
            raise LatentExplorerError(f"--holdout-fraction must be in (0, 0.9), got {self.holdout_fraction}")
        if self.precision not in speed.PRECISIONS:
            raise LatentExplorerError(f"--precision must be one of {', '.join(speed.PRECISIONS)}, "
                                      f"got {self.precision!r}")
        if not isinstance(self.balance_classes, bool):
            raise LatentExplorerError(f"balance_classes must be true or false, got {self.balance_classes!r}")
        if not isinstance(self.channels_last, bool):
            raise LatentExplorerError(f"channels_last must be true or false, got {self.channels_last!r}")
        LatentDistribution.from_json(self.noise)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LatentExplorerError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    return torch.device(name)
