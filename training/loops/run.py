"""One training run's shared plumbing: seeds, device, noise, batches, history, snapshots, bundle writing and
resuming (resume.py). The loops themselves (gan.py, vae.py) hold only the maths."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from training.bundle import SNAPSHOT_DIR, TRAINING_STATE_FILE, save_bundle, save_training_state
from training.bundle.grids import save_grid
from training.bundle.output_folder import check_output_folder, remove_stale_temporaries
from training.data.base import ImageDataset
from training.errors import LatentExplorerError
from training.latent.priors import LatentDistribution, sample_latents
from training.loops import distributed, speed
from training.loops.batches import EpochBatches, stream_seed
from training.loops.config import SNAPSHOT_SAMPLES, TrainConfig, resolve_device
from training.loops.disk import check_free_space, estimate_save_bytes
from training.loops.divergence import DivergenceGuard
from training.loops.optimizer_state import load_optimizer_state, optimizer_state
from training.loops.provenance import dataset_summary, versions
from training.loops.resume import TRAINING_STATE_VERSION, comparable_config, read_resume_state


class Run:
    """One training run's shared state: seeds, device, noise, history, snapshots, bundle writing, resuming.

    Random streams are separate generators so that adding an option never shifts another stream:
    data order (seed), training noise (seed + 1), label flips (seed + 2), InfoGAN codes (seed + 3).
    Under torchrun (training.loops.distributed) only rank 0 writes files; the noise, flip and code streams are
    seeded per rank so the ranks' fakes differ.

    The loops call `start(networks, optimizers, generator)` once (it restores a resumed run, or saves the
    step-0 snapshot, and returns the batches), then `steps()`, `record()`, `maybe_snapshot_and_save()` and
    `finish()`. Every bundle save also writes training_state.safetensors: the weights, the optimizers, every
    random stream, the history and the counters, in one atomically replaced file, which is all `resume=True`
    reads, so a kill between two files of a save can never mix steps.
    """

    def __init__(self, family: str, display: str, dataset: ImageDataset, model_config: Any,
                 train_config: TrainConfig, out: str | Path, history_keys: tuple[str, ...],
                 source: dict | None = None, name: str | None = None, progress: bool = True,
                 resume: bool = False, keep_training_state: bool = False):
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
        self.keep_training_state = keep_training_state
        self.processes, self.device = distributed.setup(resolve_device(train_config.device))
        speed.check_precision(train_config.precision, self.device)
        self.is_main = self.processes.is_main
        self.progress = progress and self.is_main
        seed, rank = train_config.seed, self.processes.rank
        torch.manual_seed(seed)  # network initialisation (the same on every rank)
        self.data_rng = torch.Generator().manual_seed(stream_seed(seed, 0, 0))
        self.noise_rng = torch.Generator().manual_seed(stream_seed(seed, 1, rank))
        self.flip_rng = torch.Generator().manual_seed(stream_seed(seed, 2, rank))
        self.code_rng = torch.Generator().manual_seed(stream_seed(seed, 3, rank))
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
        if self.processes.active:
            self.bundle_config["distributed"] = {
                "world_size": self.processes.world_size, "backend": self.processes.backend,
                "global_batch_size": self.processes.world_size * train_config.batch_size,
            }
        self.history: dict[str, list[float]] = {"step": [], **{k: [] for k in history_keys}}
        self.guard = DivergenceGuard(self.out, train_config.diverge_patience)
        self.saved_step: int | None = None
        self.start_step = 0
        self.images_seen = 0
        self.started = time.time()
        self.sampler: EpochBatches | None = None
        self.batch_format = speed.memory_format(train_config.channels_last)
        if self.is_main:
            check_output_folder(self.out)
            remove_stale_temporaries(self.out)
        self.resumed = read_resume_state(self.out, self.bundle_config, train_config.steps,
                                         self.processes.world_size, self.progress) if resume else None
        if not resume and self.is_main and (self.out / TRAINING_STATE_FILE).exists():
            # A fresh run replaces whatever was in `out`; a stale state must not be resumed into it later.
            (self.out / TRAINING_STATE_FILE).unlink()

    # -- the loop's side of a run -------------------------------------------------------------------------

    def start(self, networks: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
              generator: nn.Module, positions: np.ndarray | None = None
              ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Lay the networks out as --channels-last asks, restore a resumed run into them and the optimizers (or
        save the step-0 snapshot), and return the endless (images, labels) batches over all images or the given
        dataset positions."""
        self.networks, self.optimizers = networks, optimizers
        if self.config.channels_last:  # after initialisation, so both layouts start from the same weights
            for net in networks.values():
                net.to(memory_format=torch.channels_last)
        if self.is_main:
            snapshots = len({s for s in self.config.snapshot_steps if s <= self.config.steps} | {self.config.steps})
            check_free_space(self.out, estimate_save_bytes(networks, snapshots, self.dataset.image_size,
                                                           self.config.steps))
        n = len(self.dataset) if positions is None else len(positions)
        self.sampler = EpochBatches(n, self.config.batch_size, self.data_rng, self.processes.rank,
                                    self.processes.world_size)
        if self.resumed is not None:
            try:
                self.load_state_dict(*self.resumed)
            except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # a tensor missing or of another shape
                raise LatentExplorerError(
                    f"{self.out / TRAINING_STATE_FILE}: the training state does not fit the networks "
                    f"({type(exc).__name__}: {str(exc)[:200]}), so it is damaged; train again with --overwrite "
                    "instead of --resume"
                ) from None
            self.resumed = None
            if self.progress:
                print(f"resuming {self.out} at step {self.start_step}", file=sys.stderr)
        else:
            self.snapshot(0, generator)
        return self._batches(positions)

    def mixed(self, module: nn.Module) -> nn.Module:
        """The module as --precision runs it: under bf16 autocast with float32 outputs, or itself for fp32."""
        return speed.with_precision(module, self.config.precision, self.device)

    def parallel(self, module: nn.Module) -> nn.Module:
        """The module as the loop should call it: wrapped in DistributedDataParallel under torchrun."""
        return distributed.wrap(module, self.processes, self.device)

    def _batches(self, positions: np.ndarray | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for index in self.sampler:
            images, labels = self.dataset.batch(index if positions is None else positions[index])
            self.images_seen += len(index) * self.processes.world_size
            images = images.to(self.device, non_blocking=True, memory_format=self.batch_format)
            yield images, labels.to(self.device, non_blocking=True)

    def sample_noise(self, n: int) -> torch.Tensor:
        return sample_latents(self.noise, n, self.latent_dim, generator=self.noise_rng).to(self.device)

    def steps(self) -> Iterator[int]:
        bar = tqdm(range(self.start_step + 1, self.config.steps + 1), desc=f"training {self.family}",
                   disable=not self.progress, unit="step", initial=self.start_step, total=self.config.steps)
        self._bar = bar
        yield from bar

    def record(self, step: int, values: dict[str, float]) -> None:
        """Check the step's numbers with the divergence guard, then append them to the history (under
        torchrun: their mean over the ranks, so every rank records and decides the same)."""
        values = distributed.mean_values(values, self.processes, self.device)
        self.guard.check(step, values, self.saved_step)
        self.history["step"].append(step)
        for key, value in values.items():
            self.history[key].append(round(value, 5))
        if self.progress:
            self._bar.set_postfix({k: f"{v:.3f}" for k, v in list(values.items())[:4]})

    def snapshot(self, step: int, generator: nn.Module) -> None:
        """A fixed-noise grid (any extra generator inputs at their deterministic defaults)."""
        if not self.is_main:
            return
        was_training = generator.training
        generator.eval()
        with torch.no_grad():
            save_grid(generator(self.fixed_noise), self.out / SNAPSHOT_DIR / f"step_{step:06d}.png")
        generator.train(was_training)

    def maybe_snapshot_and_save(self, step: int, generator: nn.Module, networks: dict[str, nn.Module]) -> None:
        if step in self.config.snapshot_steps or step == self.config.steps:
            self.snapshot(step, generator)
        if step % self.config.checkpoint_every == 0 and step != self.config.steps:
            self.save(step, networks)

    def save(self, step: int, networks: dict[str, nn.Module], final: bool = False) -> None:
        """The bundle, then the training state (dropped instead after the last step unless asked to keep it)."""
        for net_name, net in networks.items():
            for key, tensor in net.state_dict().items():
                if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                    raise LatentExplorerError(
                        f"training diverged at step {step}: {net_name}.{key} holds NaN or infinite weights. "
                        f"{self.guard.last_good(self.saved_step)}"
                    )
        keep_state = not final or self.keep_training_state
        state = self.state_dict(step) if keep_state and self.sampler is not None else None
        if self.is_main:
            state_file = self.out / TRAINING_STATE_FILE
            try:
                save_bundle(self.out, {**self.bundle_config, "step": step}, networks, self.history)
                if state is not None:
                    save_training_state(self.out, *state)
                elif state_file.exists():
                    state_file.unlink()
            except OSError as exc:
                raise LatentExplorerError(
                    f"could not write the bundle at step {step} to {self.out}: {exc.strerror or exc}. "
                    f"{self.guard.last_good(self.saved_step)}"
                ) from None
        self.saved_step = step

    def state_dict(self, step: int) -> tuple[dict[str, torch.Tensor], dict]:
        """Everything `start` needs to continue after `step` exactly (tensors, and the JSON part).
        Collective under torchrun: every rank calls it (their random streams are gathered), rank 0 writes."""
        tensors: dict[str, torch.Tensor] = {}
        for net_name, net in self.networks.items():
            for key, tensor in net.state_dict().items():
                tensors[f"network.{net_name}.{key}"] = tensor
        optimizers = {}
        for opt_name, optimizer in self.optimizers.items():
            opt_tensors, optimizers[opt_name] = optimizer_state(opt_name, optimizer)
            tensors.update(opt_tensors)
        epoch_start, taken = self.sampler.state()
        tensors["rng.data_epoch_start"] = epoch_start
        # Not drawn from after initialisation today; kept so that a future dropout layer resumes exactly too.
        tensors["rng.torch"] = torch.get_rng_state()
        for stream in ("noise", "flip", "code"):
            local = getattr(self, f"{stream}_rng").get_state()
            for rank, state in enumerate(distributed.gather_tensors(local, self.processes, self.device)):
                tensors[f"rng.{stream}.{rank}"] = state
        state = {
            "version": TRAINING_STATE_VERSION,
            "step": step,
            "images_seen": self.images_seen,
            "seconds": round(time.time() - self.started, 3),
            "data_batches_taken": taken,
            "diverge_won_for": self.guard.won_for,
            "ranks": list(range(self.processes.world_size)),
            "optimizers": optimizers,
            "history": self.history,
            "resumed_at_steps": self.bundle_config.get("resumed_at_steps", []),
            "config": comparable_config(self.bundle_config),
        }
        return tensors, state

    def load_state_dict(self, tensors: dict[str, torch.Tensor], state: dict) -> None:
        """Put a run back where `state_dict` left it: networks, optimizers, data order, random streams, counters."""
        for net_name, net in self.networks.items():
            prefix = f"network.{net_name}."
            net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        for opt_name, optimizer in self.optimizers.items():
            load_optimizer_state(opt_name, optimizer, tensors, state["optimizers"][opt_name])
        self.sampler.restore(tensors["rng.data_epoch_start"], state["data_batches_taken"])
        torch.set_rng_state(tensors["rng.torch"])
        rank = self.processes.rank
        for stream in ("noise", "flip", "code"):
            getattr(self, f"{stream}_rng").set_state(tensors[f"rng.{stream}.{rank}"])
        self.history = state["history"]
        self.images_seen = state["images_seen"]
        self.guard.won_for = state["diverge_won_for"]
        self.start_step = self.saved_step = state["step"]
        self.started = time.time() - state["seconds"]
        self.bundle_config["resumed_at_steps"] = state.get("resumed_at_steps", []) + [state["step"]]

    def finish(self, networks: dict[str, nn.Module]) -> Path:
        """The final bundle, with how long the run took and how fast it went."""
        seconds = time.time() - self.started
        images_per_second = self.images_seen / seconds if seconds > 0 else 0.0
        self.bundle_config["training"]["seconds"] = round(seconds, 1)
        self.bundle_config["training"]["device_used"] = str(self.device)
        self.bundle_config["training"]["images_per_second"] = round(images_per_second, 1)
        self.save(self.config.steps, networks, final=True)
        distributed.barrier(self.processes)  # nobody leaves before rank 0 has written the final bundle
        if self.progress:
            print(f"{self.config.steps} steps in {seconds:.1f} s: {images_per_second:.1f} images/s on {self.device}"
                  + (f" x {self.processes.world_size} processes" if self.processes.active else ""), file=sys.stderr)
        return self.out
