"""Plumbing every training loop shares: the training config, device, seeds, batches, history, snapshots,
bundle writing and the divergence guard. The loops themselves (gan.py, vae.py) hold only the maths."""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision.utils as vutils
from torch import nn
from tqdm import tqdm

from training import checkpoint, distributed, output_folder
from training.data.base import ImageDataset
from training.data.location import portable_source
from training.errors import LatentExplorerError
from training.latent import LatentDistribution, sample_latents
from training.loops import speed

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
    # Balance of the two players (the anime lab halves D's update frequency: d_every=2).
    d_every: int = 1  # update D on every k-th step only
    d_steps: int = 1  # D updates (each on a fresh batch) on a step where D is updated
    # Label tricks for D's real/fake targets (the VAE lab's GAN part).
    label_smoothing: float = 0.0  # one-sided: D's target for real images is 1 - label_smoothing
    label_flip: float = 0.0  # probability that each of D's real/fake targets is swapped
    class_weight: float = 1.0  # conditional GAN: loss = adversarial + class_weight * classification
    # ACGAN's D also learns to classify fakes by their requested labels. On toyfaces that let G and D agree on
    # invisible codes (D "saw" 98% of requested hair colours; an independent classifier saw chance), so by
    # default D's classifier learns from real images only and G must draw attributes a real-image classifier sees.
    classify_fakes: bool = False
    info_weight: float = 1.0  # InfoGAN: loss = adversarial + info_weight * Q's code likelihood loss
    diverge_patience: int = 1000  # stop when D(G(z)) < 1e-3 for this many consecutive steps
    holdout_fraction: float = 0.1  # VAE: share of the dataset held out for test MSE and latents.npz
    # Speed options (loops/speed.py): how each step's arithmetic runs; weights, optimizer state and losses stay fp32.
    precision: str = "fp32"  # "bf16": forward passes under bf16 autocast
    channels_last: bool = False  # networks and real batches in NHWC memory order (faster convolutions on CPUs)

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
        if self.precision not in speed.PRECISIONS:
            raise LatentExplorerError(f"--precision must be one of {', '.join(speed.PRECISIONS)}, "
                                      f"got {self.precision!r}")
        if not isinstance(self.channels_last, bool):
            raise LatentExplorerError(f"channels_last must be true or false, got {self.channels_last!r}")
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


class EpochBatches:
    """Endless shuffled batches of positions 0..n-1 (drop_last, like the tutorial's DataLoader), reproducible
    from the generator and resumable: `state()` is the generator's state when the current epoch's order was
    drawn and how many batches of it were taken, which is all `restore()` needs to continue the same sequence.

    With several processes (torchrun) every rank draws the same order and takes its own disjoint slice of each
    global batch of world_size x batch_size positions: rank r gets the r-th batch_size of them.
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, rank: int = 0, world_size: int = 1):
        if n < batch_size * world_size:
            raise LatentExplorerError(
                f"the dataset has {n} images, fewer than one batch of {batch_size}"
                + (f" for each of {world_size} processes" if world_size > 1 else "")
            )
        self.n, self.batch_size, self.generator = n, batch_size, generator
        self.rank, self.world_size = rank, world_size
        self.per_epoch = n // (batch_size * world_size)
        self.epoch_start = generator.get_state()
        self.order: np.ndarray | None = None
        self.taken = 0

    def __iter__(self) -> EpochBatches:
        return self

    def __next__(self) -> np.ndarray:
        if self.order is None or self.taken == self.per_epoch:
            self.epoch_start = self.generator.get_state()
            self.order = torch.randperm(self.n, generator=self.generator).numpy()
            self.taken = 0
        start = (self.taken * self.world_size + self.rank) * self.batch_size
        self.taken += 1
        return np.sort(self.order[start:start + self.batch_size])  # sorted reads are kinder to memory-mapped files

    def state(self) -> tuple[torch.Tensor, int]:
        """(generator state at the start of this epoch, batches taken in it; -1 before the first epoch)."""
        return self.epoch_start, self.taken if self.order is not None else -1

    def restore(self, epoch_start: torch.Tensor, taken: int) -> None:
        self.generator.set_state(epoch_start)
        self.epoch_start = epoch_start
        if taken < 0:
            self.order, self.taken = None, 0
        else:  # drawing the order again leaves the generator exactly where it was
            self.order = torch.randperm(self.n, generator=self.generator).numpy()
            self.taken = taken


def epoch_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[np.ndarray]:
    """Endless shuffled batches of positions 0..n-1 (drop_last), reproducible from the generator."""
    return EpochBatches(n, batch_size, generator)


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
    """The bundle's dataset section: what the images are, and where they came from by a path relative to a data
    root (never a path of this machine)."""
    return {
        "name": dataset.name,
        "source": portable_source(source),
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


# A resumed run may change these: they decide how long to train and what to write, not what each step computes
# (a different --device may change the last bits of the results, as any change of hardware does).
# precision and channels_last are runtime choices of the same kind: the weights and optimizer state they leave
# are float32 either way, so a run may go on faster (or more exactly) than it started; bf16 changes more than
# the last bits of each step, so such a resumed run is no longer bit-identical to an uninterrupted one.
RESUMABLE_CHANGES = ("steps", "checkpoint_every", "snapshot_steps", "device", "diverge_patience", "precision",
                     "channels_last")
COMPARED_SECTIONS = ("family", "model", "training", "dataset", "prior", "distributed")
RUNTIME_FIELDS = ("seconds", "device_used", "images_per_second")  # measured by the run, written by finish()
TRAINING_STATE_VERSION = 1
# What a training state's JSON holds (_training_state writes them, --resume reads every one).
TRAINING_STATE_KEYS = ("step", "images_seen", "seconds", "data_batches_taken", "diverge_won_for", "ranks",
                       "optimizers", "history", "config")
# Disk estimates beyond the tensors: config.json, metrics.json and latents.npz; the training state's JSON (config,
# optimizer settings) besides the history; one generator state (mt19937); one history row as JSON (12 numbers).
SMALL_FILES_BYTES = 1 << 20
STATE_JSON_BYTES = 16 << 10
RNG_STATE_BYTES = 5056
HISTORY_BYTES_PER_STEP = 120


def stream_seed(seed: int, stream: int, rank: int) -> int:
    """The seed of one random stream: data order (0, shared by all ranks), noise (1), label flips (2),
    InfoGAN codes (3). Rank 0 of a torchrun run uses the same seeds as a one-process run."""
    return seed + stream + 1_000_003 * rank


def check_output_folder(out: Path, keep: bool = True) -> None:
    """Create `out` and prove a file can be written in it, before any time is spent on data or training.
    With keep=False the folders this check created are removed again, so a run that then fails on its data
    leaves nothing behind."""
    created = [p for p in (out, *out.parents) if not p.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LatentExplorerError(
            f"cannot create the output folder {out}: {exc.strerror or exc}"
            + (" (a file is in the way)" if isinstance(exc, (FileExistsError, NotADirectoryError)) else "")
            + "; choose another --out"
        ) from None
    try:
        handle, probe = tempfile.mkstemp(dir=out, prefix=".write-test-")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise LatentExplorerError(
            f"cannot write in the output folder {out}: {exc.strerror or exc}; fix its permissions or choose "
            "another --out"
        ) from None
    if not keep:
        for folder in created:  # deepest first
            folder.rmdir()


def remove_stale_temporaries(out: Path) -> None:
    """Delete what writes interrupted by a kill left behind: the bundle's files are written as hidden
    `.<name>...tmp` files and renamed when complete, so such a file is never part of a bundle. Only those
    names go: a user's own .draft.tmp beside the bundle is not ours to delete."""
    for folder in (out, out / checkpoint.SNAPSHOT_DIR):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                if output_folder.is_own_temporary(tmp.name, in_snapshots=folder != out):
                    tmp.unlink(missing_ok=True)


def tensor_bytes(tensors: Iterable[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def estimate_save_bytes(networks: dict[str, nn.Module], snapshots: int, image_size: int, steps: int = 0
                        ) -> dict[str, int]:
    """How much disk a run needs at its peak: the weights, the training state (a copy of the weights, Adam's two
    moments per parameter, four random-stream states and the history) written beside its previous copy while
    saving, history.json, and the snapshot grids (counted uncompressed)."""
    weights = tensor_bytes(t for net in networks.values() for t in net.state_dict().values())
    parameters = tensor_bytes(p for net in networks.values() for p in net.parameters())
    history = steps * HISTORY_BYTES_PER_STEP
    state = weights + 2 * parameters + 4 * RNG_STATE_BYTES + STATE_JSON_BYTES + history
    grids = snapshots * SNAPSHOT_SAMPLES * 3 * (image_size + 2) ** 2
    return {"weights": weights, "training_state": state, "snapshots": grids,
            "peak": weights + 2 * state + grids + history + SMALL_FILES_BYTES}


def check_free_space(out: Path, need: dict[str, int]) -> None:
    """Refuse to start when the disk under `out` cannot hold the bundle (files already there are rewritten
    in place, so their size counts as available)."""
    existing = sum((out / f).stat().st_size for f in (checkpoint.WEIGHTS_FILE, checkpoint.TRAINING_STATE_FILE)
                   if (out / f).exists())
    free = shutil.disk_usage(out).free
    if free + existing < need["peak"]:
        mb = 1e6
        raise LatentExplorerError(
            f"not enough disk space for the bundle in {out}: {free / mb:.1f} MB free, training needs about "
            f"{(need['peak'] - existing) / mb:.1f} MB more (weights {need['weights'] / mb:.1f} MB, training state "
            f"{need['training_state'] / mb:.1f} MB written beside its previous copy while saving, snapshots "
            f"{need['snapshots'] / mb:.1f} MB); free some space or choose another --out"
        )


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        flat: dict[str, Any] = {}
        for key, value in data.items():
            flat.update(_flat(value, f"{prefix}{key}."))
        return flat or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): data}


def config_differences(recorded: dict, requested: dict) -> list[str]:
    """'section.field: recorded -> requested' for every setting that differs between two bundle configs."""
    old, new = _flat(recorded), _flat(requested)
    return [f"{key}: {old.get(key, '(not set)')!r} recorded, {new.get(key, '(not set)')!r} asked for"
            for key in sorted(set(old) | set(new)) if old.get(key, "(not set)") != new.get(key, "(not set)")]


def optimizer_state(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer's state_dict as flat tensors (optimizer.<name>.<param index>.<key>) plus JSON."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{name}.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def load_optimizer_state(name: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                         data: dict) -> None:
    state: dict[int, dict] = {}
    prefix = f"optimizer.{name}."
    for key, tensor in tensors.items():
        if key.startswith(prefix):
            index, field_name = key[len(prefix):].split(".", 1)
            state.setdefault(int(index), {})[field_name] = tensor
    for index, values in data["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in data["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    speed.match_parameter_layout(optimizer)


class Run:
    """One training run's shared state: seeds, device, noise, history, snapshots, bundle writing, resuming.

    Random streams are separate generators so that adding an option never shifts another stream:
    data order (seed), training noise (seed + 1), label flips (seed + 2), InfoGAN codes (seed + 3).
    Under torchrun (training.distributed) only rank 0 writes files; the noise, flip and code streams are
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
        self.resumed = self._read_resume_state() if resume else None
        if not resume and self.is_main and (self.out / checkpoint.TRAINING_STATE_FILE).exists():
            # A fresh run replaces whatever was in `out`; a stale state must not be resumed into it later.
            (self.out / checkpoint.TRAINING_STATE_FILE).unlink()

    # -- resuming -----------------------------------------------------------------------------------------

    def _comparable_config(self) -> dict:
        """What must be the same for a resumed run to be the same run, as JSON sees it (tuples become lists):
        family, model, dataset, prior, process count and the training options except RESUMABLE_CHANGES (the
        loops' extra entries such as conditions or codes follow from these)."""
        config = json.loads(json.dumps({key: self.bundle_config.get(key) for key in COMPARED_SECTIONS}))
        for key in RESUMABLE_CHANGES + RUNTIME_FIELDS:
            config["training"].pop(key, None)
        return config

    def _read_resume_state(self) -> tuple[dict[str, torch.Tensor], dict] | None:
        """The training state to continue from, after checking it belongs to the run that was asked for;
        None when `out` holds no bundle yet (a run killed before its first save starts from step 0)."""
        loaded = checkpoint.load_training_state(self.out)
        if loaded is None:
            config_file = self.out / checkpoint.CONFIG_FILE
            if not config_file.exists():
                if self.progress:
                    print(f"--resume: nothing saved in {self.out} yet; starting from step 0", file=sys.stderr)
                return None
            step = checkpoint.read_config(self.out).get("step")
            raise LatentExplorerError(
                f"--resume: {self.out} holds a bundle (step {step}) but no {checkpoint.TRAINING_STATE_FILE}: the run "
                "finished and its training state was dropped (train with --keep-training-state to be able to "
                "continue a finished run), or it was written by an older version. Train again with --overwrite "
                "instead of --resume, or choose another --out."
            )
        tensors, state = loaded
        file = self.out / checkpoint.TRAINING_STATE_FILE
        if state.get("version") != TRAINING_STATE_VERSION:
            raise LatentExplorerError(f"{file}: unknown training state version {state.get('version')!r}; train "
                                      "again with --overwrite instead of --resume")
        missing = [key for key in TRAINING_STATE_KEYS if key not in state]
        if missing:
            raise LatentExplorerError(f"{file}: the training state has no {', '.join(missing)}, so it is damaged; "
                                      "train again with --overwrite instead of --resume")
        recorded = state["config"]
        if isinstance(recorded.get("dataset"), dict) and isinstance(recorded["dataset"].get("source"), dict):
            # A run started before sources were portable recorded the dataset folder's absolute path.
            source = portable_source(recorded["dataset"]["source"])
            recorded = {**recorded, "dataset": {**recorded["dataset"], "source": source}}
        differences = config_differences(recorded, self._comparable_config())
        if differences:
            raise LatentExplorerError(
                f"--resume: the run in {self.out} was trained with other settings than the ones asked for now, so "
                "it cannot continue as the same run:\n  " + "\n  ".join(differences[:20])
                + (f"\n  and {len(differences) - 20} more" if len(differences) > 20 else "")
                + "\nRepeat the original command with --resume (only --steps, --checkpoint-every, --snapshot-steps, "
                "--device, --diverge-patience, --precision and --channels-last may change), or choose another --out."
            )
        if state["step"] >= self.config.steps:
            raise LatentExplorerError(
                f"--resume: the run in {self.out} has already trained {state['step']} steps and --steps is "
                f"{self.config.steps}; ask for more --steps to continue it"
            )
        if len(state["ranks"]) != self.processes.world_size:
            raise LatentExplorerError(f"--resume: the run was trained by {len(state['ranks'])} processes, "
                                      f"now {self.processes.world_size}")
        return tensors, state

    def _training_state(self, step: int) -> tuple[dict[str, torch.Tensor], dict]:
        """Everything `start` needs to continue after `step` exactly. Collective under torchrun: every rank
        calls it (their random streams are gathered), rank 0 writes."""
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
            "config": self._comparable_config(),
        }
        return tensors, state

    def _restore(self, tensors: dict[str, torch.Tensor], state: dict) -> None:
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
                self._restore(*self.resumed)
            except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # a tensor missing or of another shape
                raise LatentExplorerError(
                    f"{self.out / checkpoint.TRAINING_STATE_FILE}: the training state does not fit the networks "
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

    def targets(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return discriminator_targets(n, self.config.label_smoothing, self.config.label_flip, self.flip_rng,
                                     self.device)

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
            save_grid(generator(self.fixed_noise), self.out / checkpoint.SNAPSHOT_DIR / f"step_{step:06d}.png")
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
        training_state = self._training_state(step) if keep_state and self.sampler is not None else None
        if self.is_main:
            state_file = self.out / checkpoint.TRAINING_STATE_FILE
            try:
                checkpoint.save_bundle(self.out, {**self.bundle_config, "step": step}, networks, self.history)
                if training_state is not None:
                    checkpoint.save_training_state(self.out, *training_state)
                elif state_file.exists():
                    state_file.unlink()
            except OSError as exc:
                raise LatentExplorerError(
                    f"could not write the bundle at step {step} to {self.out}: {exc.strerror or exc}. "
                    f"{self.guard.last_good(self.saved_step)}"
                ) from None
        self.saved_step = step

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
