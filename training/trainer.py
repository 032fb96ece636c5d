"""Train any model family: `train(family, dataset, model_config, train_config, out)` writes a bundle folder.

The loops live in training/loops (gan.py for dcgan / cgan / infogan, vae.py); this module is the stable entry
point the CLI and the tests import, and keeps the names the foundation exported (`TrainConfig`, `train_dcgan`).
"""

from __future__ import annotations

from pathlib import Path

from training.data.base import ImageDataset
from training.errors import LatentExplorerError
from training.loops.common import (
    DEFAULT_SNAPSHOT_STEPS,
    SNAPSHOT_SAMPLES,
    DivergenceGuard,
    EpochBatches,
    TrainConfig,
    dataset_summary,
    discriminator_targets,
    epoch_batches,
    resolve_device,
    save_grid,
    versions,
)
from training.loops.gan import train_cgan, train_dcgan, train_infogan
from training.loops.vae import train_vae

LOOPS = {"dcgan": train_dcgan, "vae": train_vae, "cgan": train_cgan, "infogan": train_infogan}

__all__ = ["DEFAULT_SNAPSHOT_STEPS", "LOOPS", "SNAPSHOT_SAMPLES", "DivergenceGuard", "EpochBatches", "TrainConfig",
           "dataset_summary", "discriminator_targets", "epoch_batches", "resolve_device", "save_grid", "train",
           "train_cgan", "train_dcgan", "train_infogan", "train_vae", "versions"]


def train(family: str, dataset: ImageDataset, model_config, train_config: TrainConfig, out: str | Path,
          source: dict | None = None, progress: bool = True, name: str | None = None, resume: bool = False,
          keep_training_state: bool = False) -> Path:
    """Train a model of `family` ("dcgan", "vae", "cgan", "infogan") and write its bundle to `out`.

    resume=True continues the run whose training_state.safetensors is in `out` (with the same settings; only
    steps, checkpoint_every, snapshot_steps, device, diverge_patience, precision and channels_last may change)
    and ends with the same weights and history as an uninterrupted run (when precision stayed the same). The
    training state is dropped from the final bundle unless keep_training_state=True (keep it to continue a
    finished run with more steps later)."""
    if family not in LOOPS:
        raise LatentExplorerError(f"unknown model family {family!r}; choose one of {', '.join(LOOPS)}")
    return LOOPS[family](dataset, model_config, train_config, out, source=source, progress=progress, name=name,
                         resume=resume, keep_training_state=keep_training_state)
