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

    def validate(self) -> None:
        if self.steps < 1:
            raise LatentExplorerError(f"--steps must be at least 1 (got {self.steps})")
        if self.batch_size < 2:
            raise LatentExplorerError(
                f"--batch-size must be at least 2 (BatchNorm needs a batch), got {self.batch_size}"
            )
        if not 0 < self.lr < 1:
            raise LatentExplorerError(f"--lr must be between 0 and 1, got {self.lr}")


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


MAX_NOISE = 0.15  # std of the added pixel noise, pixels in [-1, 1]
MAX_SHIFT = 2  # pixels
JPEG_QUALITY = (40, 95)
MAX_JITTER = 0.15
ARTIFACT_SHARE = 0.25


@torch.no_grad()
def augment(x: torch.Tensor, generator: torch.Generator, harmless: bool = False) -> torch.Tensor:
    """Label-preserving corruptions: per image, Gaussian noise of a random strength, a random share of a 3x3
    blur, and a shift of up to MAX_SHIFT pixels (edges replicated); with `harmless`, first colour jitter and,
    on half the images, a JPEG round trip of random quality."""
    b = len(x)
    if harmless:
        x = degrade.colour_jitter(x, MAX_JITTER, generator)
        saved = torch.rand(b, generator=generator) < 0.5
        if saved.any():
            qualities = torch.randint(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1, (int(saved.sum()),), generator=generator)
            x = x.clone()
            x[saved] = degrade.jpeg(x[saved], qualities.tolist())
    blur = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    share = torch.rand(b, 1, 1, 1, generator=generator) * 0.6
    x = x + share * (blur - x)
    x = x + torch.rand(b, 1, 1, 1, generator=generator) * MAX_NOISE * torch.randn(x.shape, generator=generator)
    padded = F.pad(x, (MAX_SHIFT,) * 4, mode="replicate")
    h, w = x.shape[-2:]
    offsets = torch.randint(0, 2 * MAX_SHIFT + 1, (b, 2), generator=generator).tolist()
    x = torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])
    return x.clamp(-1, 1)


@torch.no_grad()
def damage(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Damage no viewer would call harmless, one kind per image: saturation (contrast x2.5-5, clipped), heavy
    noise (std 0.35-0.7), or near black (a tenth of the light or less)."""
    kind = torch.randint(0, 3, (len(x), 1, 1, 1), generator=generator)
    strength = torch.rand(len(x), 1, 1, 1, generator=generator)
    saturated = (x * (2.5 + 2.5 * strength)).clamp(-1, 1)
    noisy = degrade.gaussian_noise(x, 0.35 + 0.35 * strength, generator)
    dark = (x + 1) * 0.1 * strength - 1
    return torch.where(kind == 0, saturated, torch.where(kind == 1, noisy, dark))


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
    from training import checkpoint
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
        x, y = train.batch(index)
        if train_config.augment:
            x = augment(x, aug_rng, harmless=train_config.harmless)
        for group in opt.param_groups:
            group["lr"] = train_config.lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / train_config.steps))
        if train_config.artifacts:
            damaged = damage(x[:max(1, int(len(x) * ARTIFACT_SHARE))], aug_rng)
            features = net.features(torch.cat([x, damaged]).to(device))
            loss = net.loss([head(features[:len(x)]) for head in net.heads], y.to(device))
            is_damaged = torch.cat([torch.zeros(len(x)), torch.ones(len(damaged))]).to(device)
            loss = loss + F.binary_cross_entropy_with_logits(artifact_head(features).squeeze(1), is_damaged)
        else:
            loss = net.loss(net(x.to(device)), y.to(device))
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
    checkpoint.save_bundle(out, config, {"featurenet": net.cpu()}, history)
    checkpoint.atomic_write_json(out / checkpoint.METRICS_FILE, {
        "heldout_accuracy": held,
        "heldout": heldout_record,
        "what": "fraction of held-out real images whose attribute the feature network predicts correctly",
    })
    return out
