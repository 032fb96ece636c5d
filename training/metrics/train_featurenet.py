"""Train a dataset's feature network (an attribute classifier) and save it as a bundle with its held-out accuracy."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from training.data.base import ImageDataset
from training.data.location import portable_source
from training.errors import LatentExplorerError
from training.metrics import degrade
from training.models.featurenet import FeatureNet, FeatureNetConfig, logits_to_labels

PURPOSE = ("attribute classifier whose penultimate layer is the feature space of Latent Explorer's Fréchet "
           "distance and precision/recall (our stand-in for Inception, which we cannot download)")


MAX_NOISE = 0.15  # std of the added pixel noise, pixels in [-1, 1]
MAX_SHIFT = 2  # pixels
JPEG_QUALITY = (40, 95)
MAX_JITTER = 0.15
ARTIFACT_SHARE = 0.25
DAMAGE_KINDS = ("saturated", "noise", "dark")


@dataclass
class FeatureNetTrainConfig:
    steps: int = 1200  # the shipped toyfaces network: loss flat after ~600 steps, 100% held-out accuracy
    batch_size: int = 64
    lr: float = 2e-3  # Adam, cosine-decayed to 0 over the run
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "auto"
    # Train on lightly corrupted copies (pixel noise, a little blur, shifts of a few pixels, and with
    # "harmless" also JPEG and colour jitter) so the features care about what is drawn, not about the
    # high-frequency artefacts every young generator makes; without it a 100%-accurate classifier put every GAN
    # sample outside the real manifold (precision 0).
    augment: bool = True
    harmless: bool = True  # JPEG (quality 40-95) and colour jitter (±15%) among the augmentations
    # A quarter of each batch is damaged beyond a viewer's "still real" (saturated, drowned in noise, nearly
    # black) and a throw-away head learns to tell it from the rest on the features: the feature space must keep
    # that difference, so a collapsed, saturated batch no longer lands among real images.
    artifacts: bool = True
    # Which damage the artifact head learns to see. On 32 px grey garments, learning "noise" and "dark" made the
    # features flinch at mild noise, blur and brightness too; "saturated" alone is what a collapsed batch looks like.
    damage: tuple[str, ...] = DAMAGE_KINDS
    # Largest share of the 3x3 blur mixed into an image (uniform in [0, blur_share]). 0.6 stays just short of the
    # study's mild Gaussian blur (sigma 0.7, about a 0.6 share); Fashion-MNIST's thin strokes need the whole range
    # (1.0) for a blurred garment to keep its place among real ones.
    blur_share: float = 0.6
    # Weight of a loss pulling each augmented image's features onto its clean original's (0: off). The augmentations
    # alone teach the labels to ignore the corruptions, not the features: these are what the metrics compare.
    consistency: float = 0.0

    def validate(self) -> None:
        if self.steps < 1:
            raise LatentExplorerError(f"--steps must be at least 1 (got {self.steps})")
        if self.batch_size < 2:
            raise LatentExplorerError(
                f"--batch-size must be at least 2 (BatchNorm needs a batch), got {self.batch_size}"
            )
        if not 0 < self.lr < 1:
            raise LatentExplorerError(f"--lr must be between 0 and 1, got {self.lr}")
        unknown = set(self.damage) - set(DAMAGE_KINDS)
        if not self.damage or unknown:
            raise LatentExplorerError(f"--damage takes one or more of {', '.join(DAMAGE_KINDS)} (got "
                                      f"{', '.join(self.damage) or 'none'})")
        if self.consistency < 0 or (self.consistency and not self.augment):
            raise LatentExplorerError(f"--consistency must be 0 or more and needs augmentations (got "
                                      f"{self.consistency})")
        if not 0 <= self.blur_share <= 1:
            raise LatentExplorerError(f"--blur-share must be between 0 and 1, got {self.blur_share}")


def config_for(dataset: ImageDataset, width: int = 32) -> FeatureNetConfig:
    """The feature network shape for a dataset: its image size, channels and one head per attribute."""
    if not dataset.attributes:
        raise LatentExplorerError(
            f"dataset {dataset.name!r} has no labels; a feature network is trained to predict labels, so give the "
            "dataset a labels file"
        )
    config = FeatureNetConfig(image_size=dataset.image_size, channels=dataset.channels, width=width,
                              heads=[len(a.values) for a in dataset.attributes])
    config.validate()
    return config


@torch.no_grad()
def augment(x: torch.Tensor, generator: torch.Generator, harmless: bool = False,
            blur_share: float = 0.6) -> torch.Tensor:
    """Label-preserving corruptions: per image, Gaussian noise of a random strength, a random share (up to
    `blur_share`) of a 3x3 blur, and a shift of up to MAX_SHIFT pixels (edges replicated); with `harmless`, first
    colour jitter and, on half the images, a JPEG round trip of random quality."""
    b = len(x)
    if harmless:
        x = degrade.colour_jitter(x, MAX_JITTER, generator)
        saved = torch.rand(b, generator=generator) < 0.5
        if saved.any():
            qualities = torch.randint(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1, (int(saved.sum()),), generator=generator)
            x = x.clone()
            x[saved] = degrade.jpeg(x[saved], qualities.tolist())
    blur = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    share = torch.rand(b, 1, 1, 1, generator=generator) * blur_share
    x = x + share * (blur - x)
    x = x + torch.rand(b, 1, 1, 1, generator=generator) * MAX_NOISE * torch.randn(x.shape, generator=generator)
    padded = F.pad(x, (MAX_SHIFT,) * 4, mode="replicate")
    h, w = x.shape[-2:]
    offsets = torch.randint(0, 2 * MAX_SHIFT + 1, (b, 2), generator=generator).tolist()
    x = torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])
    return x.clamp(-1, 1)


@torch.no_grad()
def damage(x: torch.Tensor, generator: torch.Generator, kinds: tuple[str, ...] = DAMAGE_KINDS) -> torch.Tensor:
    """Damage no viewer would call harmless, one of `kinds` per image: saturated (contrast x2.5-5, clipped),
    noise (heavy: std 0.35-0.7), or dark (a tenth of the light or less)."""
    if not kinds or not set(kinds) <= set(DAMAGE_KINDS):
        raise ValueError(f"damage kinds must be among {DAMAGE_KINDS}, got {kinds}")
    kind = torch.randint(0, len(kinds), (len(x), 1, 1, 1), generator=generator)
    strength = torch.rand(len(x), 1, 1, 1, generator=generator)
    out = x
    for i, name in enumerate(kinds):
        if name == "saturated":
            damaged = (x * (2.5 + 2.5 * strength)).clamp(-1, 1)
        elif name == "noise":
            damaged = degrade.gaussian_noise(x, 0.35 + 0.35 * strength, generator)
        else:
            damaged = (x + 1) * 0.1 * strength - 1
        out = torch.where(kind == i, damaged, out)
    return out


def consistency_loss(degraded: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Mean squared distance between each image's features with and without its harmless corruption, over the
    features' variance across the batch: a scale-free pull (shrinking every feature cannot satisfy it)."""
    return F.mse_loss(degraded, clean) / clean.var(dim=0).mean().clamp_min(1e-8)


@torch.no_grad()
def accuracy(net: FeatureNet, dataset: ImageDataset, batch_size: int = 256,
             device: torch.device | str = "cpu") -> dict[str, float]:
    """Fraction of images whose label the network gets right, per attribute."""
    was_training = net.training
    net.eval()
    correct = torch.zeros(len(dataset.attributes), dtype=torch.float64)
    for start in range(0, len(dataset), batch_size):
        x, y = dataset.batch(slice(start, start + batch_size))
        predicted = logits_to_labels(net(x.to(device)), net.config.heads).cpu()
        correct += (predicted == y).sum(dim=0).double()
    net.train(was_training)
    return {a.name: round(float(c) / len(dataset), 4) for a, c in zip(dataset.attributes, correct)}


def train_featurenet(train: ImageDataset, heldout: ImageDataset, model_config: FeatureNetConfig,
                     train_config: FeatureNetTrainConfig, out: str | Path, train_source: dict | None = None,
                     heldout_source: dict | None = None, progress: bool = True, name: str | None = None) -> Path:
    """Train on `train`, measure per-attribute accuracy on `heldout`, write a featurenet bundle to `out`."""
    from training.bundle import METRICS_FILE, atomic_write_json, save_bundle
    from training.loops.config import resolve_device
    from training.loops.provenance import dataset_summary, versions

    train_config.validate()
    model_config.validate()
    if train.attributes != heldout.attributes:
        raise LatentExplorerError("the training and held-out images have different attributes")
    if (train.image_size, train.channels) != (model_config.image_size, model_config.channels):
        raise LatentExplorerError(
            f"the feature network expects {model_config.image_size}px x {model_config.channels} channels but the "
            f"dataset has {train.image_size}px x {train.channels}"
        )
    if len(train) < train_config.batch_size:
        raise LatentExplorerError(
            f"the dataset has {len(train)} images, fewer than one batch of {train_config.batch_size}"
        )
    device = resolve_device(train_config.device)
    torch.manual_seed(train_config.seed)
    net = FeatureNet(model_config).to(device)
    # Trained beside the network and dropped: only the features it shaped are saved.
    artifact_head = torch.nn.Linear(model_config.feature_dim, 1).to(device)
    params = list(net.parameters()) + (list(artifact_head.parameters()) if train_config.artifacts else [])
    opt = torch.optim.AdamW(params, lr=train_config.lr, weight_decay=train_config.weight_decay)
    rng = np.random.default_rng(train_config.seed)
    aug_rng = torch.Generator().manual_seed(train_config.seed + 1)
    history: dict[str, list[float]] = {"step": [], "loss": []}
    started = time.time()
    order, cursor = rng.permutation(len(train)), 0
    net.train()
    bar = tqdm(range(1, train_config.steps + 1), desc="training feature network", disable=not progress, unit="step")
    for step in bar:
        if cursor + train_config.batch_size > len(order):
            order, cursor = rng.permutation(len(train)), 0
        index = np.sort(order[cursor:cursor + train_config.batch_size])
        cursor += train_config.batch_size
        clean, y = train.batch(index)
        x = augment(clean, aug_rng, harmless=train_config.harmless,
                    blur_share=train_config.blur_share) if train_config.augment else clean
        for group in opt.param_groups:
            group["lr"] = train_config.lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / train_config.steps))
        # One forward pass over the augmented batch, its clean originals (for the pull), and damaged copies (for the
        # artifact head), each part only when its loss is on.
        parts = [x, clean] if train_config.consistency else [x]
        if train_config.artifacts:
            damaged = damage(x[:max(1, int(len(x) * ARTIFACT_SHARE))], aug_rng, tuple(train_config.damage))
            parts.append(damaged)
        features = net.features(torch.cat(parts).to(device))
        n = len(x)
        loss = net.loss([head(features[:n]) for head in net.heads], y.to(device))
        if train_config.consistency:
            loss = loss + train_config.consistency * consistency_loss(features[:n], features[n:2 * n])
        if train_config.artifacts:
            is_damaged = torch.cat([torch.zeros(len(features) - len(damaged)), torch.ones(len(damaged))]).to(device)
            loss = loss + F.binary_cross_entropy_with_logits(artifact_head(features).squeeze(1), is_damaged)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if not math.isfinite(loss.item()):
            raise LatentExplorerError(f"feature network training diverged at step {step}; try a smaller --lr")
        history["step"].append(step)
        history["loss"].append(round(loss.item(), 5))
        bar.set_postfix(loss=f"{loss.item():.3f}")
    net.eval()
    held = accuracy(net, heldout, device=device)
    seconds = round(time.time() - started, 1)
    out = Path(out)
    heldout_record = {"source": portable_source(heldout_source or {}), "num_images": len(heldout)}
    config = {
        "name": name or f"{train.name} · feature network",
        "family": "featurenet",
        "purpose": PURPOSE,
        "model": asdict(model_config),
        "training": {**asdict(train_config), "seconds": seconds, "device_used": str(device)},
        "dataset": dataset_summary(train, train_source or {}),
        "heldout": heldout_record,
        "accuracy": held,
        "versions": versions(),
    }
    save_bundle(out, config, {"featurenet": net.cpu()}, history)
    atomic_write_json(out / METRICS_FILE, {
        "heldout_accuracy": held,
        "heldout": heldout_record,
        "what": "fraction of held-out real images whose attribute the feature network predicts correctly",
    })
    return out
