"""Train any model family: `train(family, dataset, model_config, train_config, out)` writes a bundle folder.

The family's capability record (models/registry.py) names its loop: loops/gan.py for dcgan / cgan / infogan,
loops/vae.py for the VAE. The shared plumbing lives beside them in training/loops (config.py, run.py, ...).
"""

from __future__ import annotations

from pathlib import Path

from training.data.base import ImageDataset
from training.errors import LatentExplorerError
from training.loops.config import TrainConfig
from training.loops.gan import train_gan
from training.loops.vae import train_vae
from training.models import registry


def train(family: str, dataset: ImageDataset, model_config, train_config: TrainConfig, out: str | Path,
          source: dict | None = None, progress: bool = True, name: str | None = None, resume: bool = False,
          keep_training_state: bool = False) -> Path:
    """Train a model of `family` ("dcgan", "vae", "cgan", "infogan") and write its bundle to `out`.

    resume=True continues the run whose training_state.safetensors is in `out` (with the same settings; only
    steps, checkpoint_every, snapshot_steps, device, diverge_patience, precision and channels_last may change)
    and ends with the same weights and history as an uninterrupted run (when precision stayed the same). The
    training state is dropped from the final bundle unless keep_training_state=True (keep it to continue a
    finished run with more steps later)."""
    if family not in registry.TRAINABLE:
        raise LatentExplorerError(f"unknown model family {family!r}; choose one of {', '.join(registry.TRAINABLE)}")
    options = {"source": source, "progress": progress, "name": name, "resume": resume,
               "keep_training_state": keep_training_state}
    if registry.capabilities(family).loop == "vae":
        return train_vae(dataset, model_config, train_config, out, **options)
    return train_gan(family, dataset, model_config, train_config, out, **options)
