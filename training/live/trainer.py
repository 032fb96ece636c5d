"""One live run, one step at a time: the trainer's own loops (AdversarialSteps, VAESteps) stepped on demand, knobs
changed between steps and recorded, a rewind to the last good weights when a step blows up, and the end written as
an ordinary bundle that appears under its final name only once it is complete."""

from __future__ import annotations

import copy
import math
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from training.data.base import ImageDataset
from training.errors import LatentExplorerError
from training.latent.priors import LatentDistribution, sample_latents
from training.live.settings import DIVERGE_PATIENCE, LiveSettings
from training.loops.config import SNAPSHOT_SAMPLES
from training.loops.divergence import D_WON_THRESHOLD
from training.models import registry

GOOD_COPY_EVERY = 25  # steps between copies of the weights a blown-up run rewinds to
PARTIAL_SUFFIX = ".partial"
OWNER_FILE = "owner.pid"


def partial_folder(out: Path) -> Path:
    """Where a run to be saved as `out` writes while it trains: hidden beside it (bundle discovery skips hidden
    folders), renamed to `out` once the final bundle is complete."""
    return out.parent / f".{out.name}{PARTIAL_SUFFIX}"


def free_name(out: Path) -> Path:
    """`out`, or out-2, out-3 ... when a folder of that name exists already (a finished run is never replaced)."""
    candidate, k = out, 2
    while candidate.exists() or partial_folder(candidate).exists():
        candidate, k = out.parent / f"{out.name}-{k}", k + 1
    return candidate


class Diverged(LatentExplorerError):
    """A step gave NaN or infinite numbers; the run was rewound to its last good weights."""


class DiscriminatorWon(LatentExplorerError):
    """The divergence guard saw D(G(z)) < 1e-3 for too long: the generator no longer learns."""


class LiveTrainer:
    """`step()` trains one step and returns its numbers; `change(**knobs)` applies knobs between steps;
    `samples()` draws the fixed-noise grid; `save(out)` writes the bundle."""

    def __init__(self, settings: LiveSettings, dataset: ImageDataset, source: dict, out: Path, name: str):
        settings.validate()
        self.settings = settings
        self.out = out
        model_config = settings.model_config(dataset.attributes)
        model_config.channels = dataset.channels
        train_config = settings.train_config()
        work = partial_folder(out)
        steps = registry.family(settings.family).steps_class()
        self.loop = steps(settings.family, dataset, model_config, train_config, work, source, progress=False,
                          name=name)
        self.run = self.loop.run
        (work / OWNER_FILE).write_text(str(os.getpid()))  # remove_stale_partials asks whether this process lives
        self.step_count = 0
        self.changes: list[dict] = []
        self.real_images = np.ascontiguousarray(dataset.images[:SNAPSHOT_SAMPLES])
        self._good: tuple[int, dict, dict, int] | None = None
        self._keep_good_copy()

    @property
    def generator(self) -> torch.nn.Module:
        return self.loop.generator

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self.run.optimizers

    def _keep_good_copy(self) -> None:
        weights = {name: copy.deepcopy(net.state_dict()) for name, net in self.loop.networks.items()}
        optimizers = {name: copy.deepcopy(opt.state_dict()) for name, opt in self._optimizers().items()}
        self._good = (self.step_count, weights, optimizers, len(self.run.history["step"]))

    def _rewind(self) -> int:
        step, weights, optimizers, rows = self._good
        for name, net in self.loop.networks.items():
            net.load_state_dict(weights[name])
        for name, opt in self._optimizers().items():
            opt.load_state_dict(copy.deepcopy(optimizers[name]))
        for values in self.run.history.values():
            del values[rows:]
        self.step_count = step
        return step

    def step(self) -> dict[str, float]:
        """One training step. A NaN or infinite number rewinds the run to its last good weights and raises
        Diverged; a discriminator that has won raises DiscriminatorWon (the step is kept)."""
        step = self.step_count + 1
        values = self.loop(step)
        if not all(math.isfinite(v) for v in values.values()):
            bad = ", ".join(k for k, v in values.items() if not math.isfinite(v))
            rewound = self._rewind()
            raise Diverged(f"training diverged at step {step}: {bad} became NaN or infinite, so the run exploded. "
                           f"It was rewound to step {rewound}, its last good weights: lower a learning rate (or "
                           "the weight that grew) and resume, or stop to keep those weights.")
        try:
            self.run.record(step, values)
        except LatentExplorerError:
            self.step_count = step  # the step is recorded below; only the guard's verdict is raised
            for key, value in (("step", step), *values.items()):
                self.run.history[key].append(round(value, 5) if key != "step" else value)
            self.run.guard.won_for = 0
            raise DiscriminatorWon(
                f"the discriminator has won at step {step}: D(G(z)) stayed below {D_WON_THRESHOLD:g} for "
                f"{DIVERGE_PATIENCE} steps in a row, so the generator no longer gets a useful gradient. Lower "
                "lr D, give D fewer updates per G update, or add label smoothing (0.1) or flipping (0.05), then "
                "resume.") from None
        self.step_count = step
        if step in self.run.config.snapshot_steps:
            self.run.snapshot(step, self.generator)
        if step % GOOD_COPY_EVERY == 0:
            self._keep_good_copy()
        return values

    def change(self, **knobs) -> dict[str, tuple]:
        """Apply knobs (LiveSettings names) from the next step on; records and returns {knob: (old, new)}."""
        settings, changes = self.settings.changed(**knobs)
        if not changes:
            return {}
        train = settings.train_config()
        config = self.run.config  # the object the loop and Run read every step
        for name in ("lr_g", "lr_d", "d_every", "d_steps", "label_smoothing", "label_flip", "class_weight"):
            setattr(config, name, getattr(train, name))
        groups = [g for opt in self._optimizers().values() for g in opt.param_groups]
        if registry.trains_as_vae(self.settings.family):  # one Adam: decoder group first, encoder second
            groups[0]["lr"], groups[1]["lr"] = settings.lr_g, settings.lr_d
            self.loop.kl_weight = settings.kl_weight
        else:
            self.loop.opt_g.param_groups[0]["lr"] = settings.lr_g
            self.loop.opt_d.param_groups[0]["lr"] = settings.lr_d
            if "class_weight" in registry.family(settings.family).live_knobs:
                self.loop.game.weight = settings.class_weight
        if "noise" in changes:
            self._use_noise(settings.noise_distribution())
        self.settings = settings
        self.run.guard.won_for = 0
        record = {"step": self.step_count, "changes": {k: list(v) for k, v in changes.items()}}
        self.changes.append(record)
        return changes

    def _use_noise(self, noise: LatentDistribution) -> None:
        """Train on codes from `noise` from now on; the fixed grid is redrawn from the same base noise."""
        run = self.run
        run.noise = noise
        run.config.noise = noise.to_json()
        run.fixed_noise = sample_latents(noise, SNAPSHOT_SAMPLES, run.latent_dim, seed=run.config.seed
                                         ).to(run.device)
        run.bundle_config["prior"] = noise.to_json()

    @torch.no_grad()
    def samples(self) -> np.ndarray:
        """The fixed-noise samples as uint8 (N, H, W, C), drawn in eval mode like every snapshot."""
        generator = self.generator
        was_training = generator.training
        generator.eval()
        images = generator(self.run.fixed_noise)
        generator.train(was_training)
        pixels = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return np.ascontiguousarray(pixels.permute(0, 2, 3, 1).cpu().numpy())

    def save(self) -> Path:
        """The bundle of the run so far, written in the hidden partial folder and then renamed to `out` (a kill
        at any moment leaves either no bundle or a whole one). Returns the bundle folder."""
        run, step = self.run, self.step_count
        if step < 1:
            raise LatentExplorerError("the run has not trained a step yet, so there is nothing to save")
        run.config.steps = step
        run.config.snapshot_steps = tuple(s for s in run.config.snapshot_steps if s <= step)
        training = run.bundle_config["training"]
        training.update({**{k: v for k, v in vars(run.config).items() if k in training}, "steps": step,
                         "snapshot_steps": list(run.config.snapshot_steps)})
        run.bundle_config["live"] = {"settings": self.settings.to_json(), "knob_changes": self.changes,
                                     "what": "trained on the Train live page; knob_changes lists each change "
                                             "made while paused, at the step after which it applied"}
        if step not in run.config.snapshot_steps:
            run.snapshot(step, self.generator)
        self.loop.finish()
        (run.out / OWNER_FILE).unlink(missing_ok=True)
        run.out.rename(self.out)
        return self.out

    def discard(self) -> None:
        """Remove what the run wrote (a run abandoned with nowhere useful to save)."""
        shutil.rmtree(self.run.out, ignore_errors=True)


def remove_stale_partials(folder: Path) -> None:
    """Partial folders of runs whose process is gone (killed before saving): never bundles, safe to delete. Only
    folders that name a dead owner are removed: a run training right now keeps its own."""
    if not folder.is_dir():
        return
    for path in folder.glob(f".*{PARTIAL_SUFFIX}"):
        owner = path / OWNER_FILE
        try:
            pid = int(owner.read_text())
        except (OSError, ValueError):
            continue
        if not _alive(pid):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

