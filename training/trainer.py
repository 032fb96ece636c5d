"""The GAN training loop (DCGAN tutorial recipe) with fixed-noise snapshots, per-step history and bundles."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torchvision.utils as vutils
from torch import nn
from tqdm import tqdm

from training import checkpoint
from training.data.base import ImageDataset
from training.errors import LatentExplorerError
from training.latent import LatentDistribution, sample_latents
from training.models.dcgan import DCGANConfig, Discriminator, Generator, weights_init

DEFAULT_SNAPSHOT_STEPS = (0, 200, 1000, 2500, 5000, 10000, 20000)
SNAPSHOT_SAMPLES = 64


@dataclass
class TrainConfig:
    """Everything about how a model was trained; saved in the bundle's config.json."""

    steps: int = 5000
    batch_size: int = 128  # the tutorial's
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    seed: int = 0
    noise: dict = field(default_factory=lambda: {"kind": "normal", "mean": 0.0, "std": 1.0})
    snapshot_steps: tuple[int, ...] = DEFAULT_SNAPSHOT_STEPS
    checkpoint_every: int = 500
    device: str = "auto"

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
        LatentDistribution.from_json(self.noise)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LatentExplorerError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    return torch.device(name)


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8) -> None:
    """A PNG grid through torchvision's make_grid, as the tutorial does, written atomically."""
    grid = vutils.make_grid(images.detach().cpu(), nrow=nrow, padding=2, normalize=True, value_range=(-1, 1))
    array = (grid.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy())
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(buffer, format="PNG")
    checkpoint.atomic_write_bytes(path, buffer.getvalue())


def epoch_batches(n: int, batch_size: int, generator: torch.Generator):
    """Endless shuffled batches (drop_last, like the tutorial's DataLoader), reproducible from the generator."""
    if n < batch_size:
        raise LatentExplorerError(f"the dataset has {n} images, fewer than one batch of {batch_size}")
    while True:
        order = torch.randperm(n, generator=generator).numpy()
        for start in range(0, n - batch_size + 1, batch_size):
            yield np.sort(order[start:start + batch_size])  # sorted reads are kinder to memory-mapped files


def dataset_summary(dataset: ImageDataset, source: dict) -> dict:
    return {
        "name": dataset.name,
        "source": source,
        "num_images": len(dataset),
        "image_size": dataset.image_size,
        "channels": dataset.channels,
        "normalisation": "x / 127.5 - 1 (pixels in [-1, 1])",
        "attributes": [a.to_json() for a in dataset.attributes],
    }


def versions() -> dict:
    import torchvision

    return {"torch": torch.__version__, "torchvision": torchvision.__version__}


def train_dcgan(dataset: ImageDataset, model_config: DCGANConfig, train_config: TrainConfig, out: str | Path,
                source: dict | None = None, progress: bool = True, name: str | None = None) -> Path:
    """Train a DCGAN and write a bundle to `out`; returns the bundle path."""
    train_config.validate()
    model_config.validate()
    if (dataset.image_size, dataset.channels) != (model_config.image_size, model_config.channels):
        raise LatentExplorerError(
            f"the model expects {model_config.image_size}px x {model_config.channels} channels but the dataset has "
            f"{dataset.image_size}px x {dataset.channels} channels"
        )
    out = Path(out)
    device = resolve_device(train_config.device)
    torch.manual_seed(train_config.seed)
    generator, discriminator = Generator(model_config).to(device), Discriminator(model_config).to(device)
    generator.apply(weights_init)
    discriminator.apply(weights_init)
    betas = (train_config.beta1, train_config.beta2)
    opt_g = torch.optim.Adam(generator.parameters(), lr=train_config.lr_g, betas=betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=train_config.lr_d, betas=betas)
    bce = nn.BCEWithLogitsLoss()
    noise = LatentDistribution.from_json(train_config.noise)
    data_rng = torch.Generator().manual_seed(train_config.seed)
    noise_rng = torch.Generator().manual_seed(train_config.seed + 1)
    fixed_noise = sample_latents(noise, SNAPSHOT_SAMPLES, model_config.latent_dim, seed=train_config.seed).to(device)
    bundle_config = {
        "name": name or f"{dataset.name} · DCGAN",
        "family": "dcgan",
        "model": asdict(model_config),
        "training": {**asdict(train_config), "snapshot_steps": list(train_config.snapshot_steps)},
        "dataset": dataset_summary(dataset, source or {}),
        "prior": noise.to_json(),
        "versions": versions(),
    }
    history: dict[str, list[float]] = {"step": [], "loss_g": [], "loss_d": [], "d_real": [], "d_fake": []}
    networks = {"generator": generator, "discriminator": discriminator}

    def snapshot(step: int) -> None:
        generator.eval()
        with torch.no_grad():
            save_grid(generator(fixed_noise), out / checkpoint.SNAPSHOT_DIR / f"step_{step:06d}.png")
        generator.train()

    def save(step: int) -> None:
        checkpoint.save_bundle(out, {**bundle_config, "step": step}, networks, history)

    out.mkdir(parents=True, exist_ok=True)
    snapshot(0)
    batches = epoch_batches(len(dataset), train_config.batch_size, data_rng)
    started = time.time()
    bar = tqdm(range(1, train_config.steps + 1), desc="training dcgan", disable=not progress, unit="step")
    for step in bar:
        real, _ = dataset.batch(next(batches))
        real = real.to(device, non_blocking=True)
        b = real.shape[0]
        ones, zeros = torch.ones(b, device=device), torch.zeros(b, device=device)
        z = sample_latents(noise, b, model_config.latent_dim, generator=noise_rng).to(device)
        fake = generator(z)
        # Discriminator: real -> 1, fake -> 0 (the tutorial's step (1)).
        opt_d.zero_grad(set_to_none=True)
        logit_real = discriminator(real)
        logit_fake = discriminator(fake.detach())
        loss_d = bce(logit_real, ones) + bce(logit_fake, zeros)
        loss_d.backward()
        opt_d.step()
        # Generator: make D call the fakes real (the non-saturating loss, step (2)).
        opt_g.zero_grad(set_to_none=True)
        loss_g = bce(discriminator(fake), ones)
        loss_g.backward()
        opt_g.step()
        values = (loss_g.item(), loss_d.item(), torch.sigmoid(logit_real).mean().item(),
                  torch.sigmoid(logit_fake).mean().item())
        if not all(math.isfinite(v) for v in values):
            save_step = history["step"][-1] if history["step"] else 0
            raise LatentExplorerError(
                f"training diverged at step {step}: a loss became NaN or infinite. "
                f"The last good bundle is {out} (step {save_step})."
            )
        history["step"].append(step)
        for key, value in zip(("loss_g", "loss_d", "d_real", "d_fake"), values):
            history[key].append(round(value, 5))
        bar.set_postfix(loss_g=f"{values[0]:.3f}", loss_d=f"{values[1]:.3f}", d_x=f"{values[2]:.2f}",
                        d_gz=f"{values[3]:.2f}")
        if step in train_config.snapshot_steps or step == train_config.steps:
            snapshot(step)
        if step % train_config.checkpoint_every == 0 or step == train_config.steps:
            save(step)
    bundle_config["training"]["seconds"] = round(time.time() - started, 1)
    bundle_config["training"]["device_used"] = str(device)
    save(train_config.steps)
    return out
