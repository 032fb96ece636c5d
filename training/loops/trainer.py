"""Train any model family: `train(family, dataset, model_config, train_config, out)` writes a bundle folder.

The family's registry record (models/registry.py) names its training step: loops/gan.py's AdversarialSteps for
the adversarial families, loops/vae.py's VAESteps for the VAE. The loop that repeats it is written once, here; the
shared plumbing lives beside them in training/loops (config.py, run.py, ...).
"""

from __future__ import annotations

from pathlib import Path

from training.data.base import ImageDataset
from training.errors import LatentExplorerError
from training.loops.config import TrainConfig
from training.models import registry


def train(family: str, dataset: ImageDataset, model_config, train_config: TrainConfig, out: str | Path,
          source: dict | None = None, progress: bool = True, name: str | None = None, resume: bool = False,
          keep_training_state: bool = False) -> Path:
    """Train a model of `family` (one of registry.TRAINABLE) and write its bundle to `out`; returns its path.

    resume=True continues the run whose training_state.safetensors is in `out` (with the same settings; only
    steps, checkpoint_every, snapshot_steps, device, diverge_patience, precision and channels_last may change)
    and ends with the same weights and history as an uninterrupted run (when precision stayed the same). The
    training state is dropped from the final bundle unless keep_training_state=True (keep it to continue a
    finished run with more steps later)."""
    if family not in registry.TRAINABLE:
        raise LatentExplorerError(f"unknown model family {family!r}; choose one of {', '.join(registry.TRAINABLE)}")
    steps = registry.family(family).steps_class()(family, dataset, model_config, train_config, out, source,
                                                   progress, name, resume, keep_training_state)
    run = steps.run
    for step in run.steps():
        run.record(step, steps(step))
        run.maybe_snapshot_and_save(step, steps.generator, steps.networks)
    return steps.finish()
