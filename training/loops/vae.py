"""The VAE training loop: reconstruction + kl_weight * KL, with a held-out split for test MSE and the latent map.

The split is the last `holdout_fraction` of `torch.randperm(N)` seeded with the training seed; training only
ever reads the rest. When the run ends, the bundle gets
* metrics.json "holdout_reconstruction": test MSE of decoder(encoder mean) on the whole held-out split (the
  same quantity `python -m training evaluate` reports as "reconstruction" on its own held-out images);
* latents.npz: `codes` (float32, N x d, encoder means), `labels` (int64, N x A), `attribute_names` (unicode),
  `indices` (int64, dataset positions) for up to 5000 held-out images, and `images` (uint8, N x H x W x C)
  for the first 64 of them, so the explorer's latent map and reconstructions need no dataset.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy as np
import torch

from training.bundle import LATENTS_FILE, update_metrics
from training.bundle.atomic import atomic_write_bytes
from training.data.base import ImageDataset
from training.errors import LatentExplorerError
from training.latent.priors import STANDARD_NORMAL, LatentDistribution
from training.loops.config import TrainConfig
from training.loops.run import Run
from training.models import dcgan, registry, vae

MAX_LATENT_CODES = 5000
RECONSTRUCTION_IMAGES = 64
EVAL_BATCH = 256


def holdout_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train positions, held-out positions), each sorted: the held-out part is the last `fraction` of a
    seeded permutation, so it is the same for every run with this seed and dataset size."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    held = max(1, int(round(n * fraction)))
    if n - held < 2:
        raise LatentExplorerError(f"the dataset has {n} images: too few to hold out {fraction:.0%} and still train")
    return np.sort(order[:n - held]), np.sort(order[n - held:])


def evaluate(encoder: vae.Encoder, decoder: torch.nn.Module, dataset: ImageDataset, positions: np.ndarray,
             device: torch.device) -> tuple[dict, dict[str, np.ndarray]]:
    """Test MSE on the held-out positions and the latents.npz arrays (encoder means, labels, a few images)."""
    encoder.eval()
    decoder.eval()
    squared, pixels, codes = 0.0, 0, []
    with torch.no_grad():
        for start in range(0, len(positions), EVAL_BATCH):
            x, _ = dataset.batch(positions[start:start + EVAL_BATCH])
            x = x.to(device)
            mu, _ = encoder(x)
            squared += float((decoder(mu) - x).double().pow(2).sum())
            pixels += x.numel()
            if start < MAX_LATENT_CODES:
                codes.append(mu.float().cpu())
    encoder.train()
    decoder.train()
    mse = squared / pixels
    metrics = {
        "mse": round(mse, 6),
        "mse_01": round(mse / 4, 6),
        "images": int(len(positions)),
        "what": "mean squared error per pixel of decoder(mu(x)) on the training run's held-out split (see the "
                "bundle's config 'holdout'); mse with pixels in [-1, 1] (the model's range), mse_01 in [0, 1]",
    }
    kept = positions[:MAX_LATENT_CODES]
    names = [a.name for a in dataset.attributes]
    latents = {
        "codes": torch.cat(codes).numpy()[:len(kept)].astype(np.float32),
        "labels": np.asarray(dataset.labels[kept], dtype=np.int64).reshape(len(kept), len(names)),
        "attribute_names": np.array(names, dtype=f"<U{max([len(n) for n in names] + [1])}"),
        "indices": kept.astype(np.int64),
        "images": np.ascontiguousarray(dataset.images[positions[:RECONSTRUCTION_IMAGES]]),
    }
    return metrics, latents


def write_latents(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path / LATENTS_FILE, buffer.getvalue())


class VAESteps:
    """A VAE run set up and ready: `self(step)` is one training step and returns its logged numbers, `finish()`
    evaluates the held-out split and writes the final bundle. training.loops.trainer repeats the step; the live trainer
    (training.live) calls it one step at a time and may change `kl_weight` or the learning rates between steps."""

    def __init__(self, family: str, dataset: ImageDataset, model_config: vae.VAEConfig, train_config: TrainConfig,
                 out: str | Path, source: dict | None = None, progress: bool = True, name: str | None = None,
                 resume: bool = False, keep_training_state: bool = False):
        if LatentDistribution.from_json(train_config.noise) != STANDARD_NORMAL:
            raise LatentExplorerError(
                "a VAE's prior is N(0,1) by construction (its KL term pulls the codes there); drop --noise for "
                "--model vae"
            )
        record = registry.family(family)
        self.run = run = Run(family, record.display, dataset, model_config, train_config, out,
                             record.history_keys(model_config), source, name, progress, resume=resume,
                             keep_training_state=keep_training_state)
        self.dataset, self.model_config, self.progress = dataset, model_config, progress
        self.kl_weight = model_config.kl_weight
        train_positions, self.held_positions = holdout_split(len(dataset), train_config.holdout_fraction,
                                                             train_config.seed)
        run.bundle_config["holdout"] = {
            "fraction": train_config.holdout_fraction, "seed": train_config.seed,
            "num_train": int(len(train_positions)), "num_held_out": int(len(self.held_positions)),
            "how": "held out = the last fraction of torch.randperm(num_images, generator seeded with seed)",
        }
        self.encoder = vae.Encoder(model_config).to(run.device)
        self.generator = self.decoder = vae.decoder(model_config).to(run.device)
        self.encoder.apply(dcgan.weights_init)
        self.decoder.apply(dcgan.weights_init)
        self.optimiser = torch.optim.Adam([{"params": self.decoder.parameters(), "lr": train_config.lr_g},
                                           {"params": self.encoder.parameters(), "lr": train_config.lr_d}],
                                          betas=(train_config.beta1, train_config.beta2))
        self.networks = {"encoder": self.encoder, "decoder": self.decoder}
        self.batches = run.start(self.networks, {"adam": self.optimiser}, self.decoder, positions=train_positions)
        self.encode, self.decode = run.parallel(run.mixed(self.encoder)), run.parallel(run.mixed(self.decoder))

    def __call__(self, step: int) -> dict[str, float]:
        x, _ = next(self.batches)
        mu, logvar = self.encode(x)
        x_hat = self.decode(vae.reparameterise(mu, logvar, self.run.noise_rng))
        recon = vae.reconstruction_loss(x_hat, x, self.model_config.recon_loss)
        kl = vae.kl_divergence(mu, logvar)
        loss = recon + self.kl_weight * kl
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        return {"loss": loss.item(), "recon": recon.item(), "kl": kl.item()}

    def finish(self) -> Path:
        run = self.run
        if not run.is_main:  # under torchrun only rank 0 evaluates and writes
            return run.finish(self.networks)
        metrics, latents = evaluate(self.encoder, self.decoder, self.dataset, self.held_positions, run.device)
        write_latents(run.out, latents)
        update_metrics(run.out, "holdout_reconstruction", metrics)
        if self.progress:
            print(f"test MSE {metrics['mse']:.4f} (pixels in [-1, 1]; {metrics['mse_01']:.4f} in [0, 1]) "
                  f"on {metrics['images']} held-out images")
        return run.finish(self.networks)

