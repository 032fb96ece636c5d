"""Plumbing every training loop shares: the training config, device, seeds, batches, history, snapshots,
bundle writing and the divergence guard. The loops themselves (gan.py, vae.py) hold only the maths."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision.utils as vutils
from torch import nn
from tqdm import tqdm

from training import checkpoint
from training.data.base import ImageDataset
from training.errors import LatentExplorerError
from training.latent import LatentDistribution, sample_latents

DEFAULT_SNAPSHOT_STEPS = (0, 200, 1000, 2500, 5000, 10000, 20000)
SNAPSHOT_SAMPLES = 64
# D(G(z)) below this means the discriminator rejects every fake with certainty: the generator's gradient is gone.
D_WON_THRESHOLD = 1e-3


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
    # Balance of the two players (seed 002 halves D's update frequency: d_every=2).
    d_every: int = 1  # update D on every k-th step only
    d_steps: int = 1  # D updates (each on a fresh batch) on a step where D is updated
    # Label tricks for D's real/fake targets (seed 003).
    label_smoothing: float = 0.0  # one-sided: D's target for real images is 1 - label_smoothing
    label_flip: float = 0.0  # probability that each of D's real/fake targets is swapped
    class_weight: float = 1.0  # conditional GAN: loss = adversarial + class_weight * classification
    info_weight: float = 1.0  # InfoGAN: loss = adversarial + info_weight * Q's code likelihood loss
    diverge_patience: int = 1000  # stop when D(G(z)) < 1e-3 for this many consecutive steps
    holdout_fraction: float = 0.1  # VAE: share of the dataset held out for test MSE and latents.npz

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
        LatentDistribution.from_json(self.noise)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LatentExplorerError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    return torch.device(name)


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8) -> None:
    """A PNG grid through torchvision's make_grid, as the tutorial does, written atomically."""
    from PIL import Image

    grid = vutils.make_grid(images.detach().cpu(), nrow=nrow, padding=2, normalize=True, value_range=(-1, 1))
    array = (grid.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy())
    buffer = BytesIO()
    Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(buffer, format="PNG")
    checkpoint.atomic_write_bytes(path, buffer.getvalue())


def epoch_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[np.ndarray]:
    """Endless shuffled batches of positions 0..n-1 (drop_last, like the tutorial's DataLoader),
    reproducible from the generator."""
    if n < batch_size:
        raise LatentExplorerError(f"the dataset has {n} images, fewer than one batch of {batch_size}")
    while True:
        order = torch.randperm(n, generator=generator).numpy()
        for start in range(0, n - batch_size + 1, batch_size):
            yield np.sort(order[start:start + batch_size])  # sorted reads are kinder to memory-mapped files


def discriminator_targets(batch: int, smoothing: float, flip: float, generator: torch.Generator,
                          device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """D's targets for a real and a fake batch: real -> 1 - smoothing, fake -> 0, and with probability
    `flip` each target is swapped for the other side's (noisy labels: D can never be fully sure)."""
    real_value = 1.0 - smoothing
    real = torch.full((batch,), real_value)
    fake = torch.zeros(batch)
    if flip > 0:
        swap_real = torch.rand(batch, generator=generator) < flip
        swap_fake = torch.rand(batch, generator=generator) < flip
        real[swap_real] = 0.0
        fake[swap_fake] = real_value
    return real.to(device), fake.to(device)


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


class DivergenceGuard:
    """Stops a run that has blown up (a NaN or infinite loss) or whose discriminator has won completely
    (D(G(z)) < 1e-3 for `patience` consecutive steps: the generator gets no gradient), saying which bundle
    on disk is the last good one."""

    def __init__(self, out: Path, patience: int):
        self.out = out
        self.patience = patience
        self.won_for = 0

    def last_good(self, saved_step: int | None) -> str:
        if saved_step is None:
            return f"No bundle was written to {self.out} before this happened; lower --checkpoint-every to keep one."
        return f"The last good bundle is {self.out} (step {saved_step})."

    def check(self, step: int, values: dict[str, float], saved_step: int | None) -> None:
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            raise LatentExplorerError(
                f"training diverged at step {step}: {', '.join(bad)} became NaN or infinite (the run exploded; "
                f"try a lower learning rate or loss weight). {self.last_good(saved_step)}"
            )
        if "d_fake" not in values:
            return
        self.won_for = self.won_for + 1 if values["d_fake"] < D_WON_THRESHOLD else 0
        if self.won_for >= self.patience:
            raise LatentExplorerError(
                f"training stopped at step {step}: the discriminator has won completely (D(G(z)) stayed below "
                f"{D_WON_THRESHOLD:g} for {self.won_for} consecutive steps, now {values['d_fake']:.1e}), so the "
                "generator no longer gets a useful gradient. Try a lower --lr-d, --d-every 2, --label-smoothing 0.1 "
                f"or --label-flip 0.05. {self.last_good(saved_step)}"
            )


class Run:
    """One training run's shared state: seeds, device, noise, history, snapshots, bundle writing.

    Random streams are separate generators so that adding an option never shifts another stream:
    data order (seed), training noise (seed + 1), label flips (seed + 2), InfoGAN codes (seed + 3).
    """

    def __init__(self, family: str, display: str, dataset: ImageDataset, model_config: Any,
                 train_config: TrainConfig, out: str | Path, history_keys: tuple[str, ...],
                 source: dict | None = None, name: str | None = None, progress: bool = True):
        train_config.validate()
        model_config.validate()
        if (dataset.image_size, dataset.channels) != (model_config.image_size, model_config.channels):
            raise LatentExplorerError(
                f"the model expects {model_config.image_size}px x {model_config.channels} channels but the dataset "
                f"has {dataset.image_size}px x {dataset.channels} channels"
            )
        self.family = family
        self.dataset = dataset
        self.config = train_config
        self.out = Path(out)
        self.progress = progress
        self.device = resolve_device(train_config.device)
        torch.manual_seed(train_config.seed)  # network initialisation
        self.data_rng = torch.Generator().manual_seed(train_config.seed)
        self.noise_rng = torch.Generator().manual_seed(train_config.seed + 1)
        self.flip_rng = torch.Generator().manual_seed(train_config.seed + 2)
        self.code_rng = torch.Generator().manual_seed(train_config.seed + 3)
        self.noise = LatentDistribution.from_json(train_config.noise)
        self.latent_dim = model_config.latent_dim
        self.fixed_noise = sample_latents(self.noise, SNAPSHOT_SAMPLES, self.latent_dim,
                                          seed=train_config.seed).to(self.device)
        self.bundle_config: dict[str, Any] = {
            "name": name or f"{dataset.name} · {display}",
            "family": family,
            "model": asdict(model_config),
            "training": {**asdict(train_config), "snapshot_steps": list(train_config.snapshot_steps)},
            "dataset": dataset_summary(dataset, source or {}),
            "prior": self.noise.to_json(),
            "versions": versions(),
        }
        self.history: dict[str, list[float]] = {"step": [], **{k: [] for k in history_keys}}
        self.guard = DivergenceGuard(self.out, train_config.diverge_patience)
        self.saved_step: int | None = None
        self.images_seen = 0
        self.started = time.time()
        self.out.mkdir(parents=True, exist_ok=True)

    def batches(self, positions: np.ndarray | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless (images, labels) batches on the device, over all images or the given dataset positions."""
        n = len(self.dataset) if positions is None else len(positions)
        for index in epoch_batches(n, self.config.batch_size, self.data_rng):
            images, labels = self.dataset.batch(index if positions is None else positions[index])
            self.images_seen += len(index)
            yield images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)

    def sample_noise(self, n: int) -> torch.Tensor:
        return sample_latents(self.noise, n, self.latent_dim, generator=self.noise_rng).to(self.device)

    def targets(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return discriminator_targets(n, self.config.label_smoothing, self.config.label_flip, self.flip_rng,
                                     self.device)

    def steps(self) -> Iterator[int]:
        bar = tqdm(range(1, self.config.steps + 1), desc=f"training {self.family}", disable=not self.progress,
                   unit="step")
        self._bar = bar
        yield from bar

    def record(self, step: int, values: dict[str, float]) -> None:
        """Check the step's numbers with the divergence guard, then append them to the history."""
        self.guard.check(step, values, self.saved_step)
        self.history["step"].append(step)
        for key, value in values.items():
            self.history[key].append(round(value, 5))
        if self.progress:
            self._bar.set_postfix({k: f"{v:.3f}" for k, v in list(values.items())[:4]})

    def snapshot(self, step: int, generator: nn.Module) -> None:
        """A fixed-noise grid (any extra generator inputs at their deterministic defaults)."""
        was_training = generator.training
        generator.eval()
        with torch.no_grad():
            save_grid(generator(self.fixed_noise), self.out / checkpoint.SNAPSHOT_DIR / f"step_{step:06d}.png")
        generator.train(was_training)

    def maybe_snapshot_and_save(self, step: int, generator: nn.Module, networks: dict[str, nn.Module]) -> None:
        if step in self.config.snapshot_steps or step == self.config.steps:
            self.snapshot(step, generator)
        if step % self.config.checkpoint_every == 0 and step != self.config.steps:
            self.save(step, networks)

    def save(self, step: int, networks: dict[str, nn.Module]) -> None:
        for net_name, net in networks.items():
            for key, tensor in net.state_dict().items():
                if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                    raise LatentExplorerError(
                        f"training diverged at step {step}: {net_name}.{key} holds NaN or infinite weights. "
                        f"{self.guard.last_good(self.saved_step)}"
                    )
        checkpoint.save_bundle(self.out, {**self.bundle_config, "step": step}, networks, self.history)
        self.saved_step = step

    def finish(self, networks: dict[str, nn.Module]) -> Path:
        """The final bundle, with how long the run took and how fast it went."""
        seconds = time.time() - self.started
        speed = self.images_seen / seconds if seconds > 0 else 0.0
        self.bundle_config["training"]["seconds"] = round(seconds, 1)
        self.bundle_config["training"]["device_used"] = str(self.device)
        self.bundle_config["training"]["images_per_second"] = round(speed, 1)
        self.save(self.config.steps, networks)
        if self.progress:
            print(f"{self.config.steps} steps in {seconds:.1f} s: {speed:.1f} images/s on {self.device}",
                  file=sys.stderr)
        return self.out
