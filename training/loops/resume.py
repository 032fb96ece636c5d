"""Continuing an interrupted run exactly: what its training state file holds, and the check that a resumed run is
the same run (same settings but those in RESUMABLE_CHANGES). Run (run.py) calls these at start and at every save."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

import torch

from training import checkpoint, distributed
from training.data.location import portable_source
from training.errors import LatentExplorerError
from training.loops.config import ADDED_FIELDS, RUNTIME_FIELDS
from training.loops.optimizer_state import load_optimizer_state, optimizer_state

if TYPE_CHECKING:
    from training.loops.run import Run

# A resumed run may change these: they decide how long to train and what to write, not what each step computes
# (a different --device may change the last bits of the results, as any change of hardware does).
# precision and channels_last are runtime choices of the same kind: the weights and optimizer state they leave
# are float32 either way, so a run may go on faster (or more exactly) than it started; bf16 changes more than
# the last bits of each step, so such a resumed run is no longer bit-identical to an uninterrupted one.
RESUMABLE_CHANGES = ("steps", "checkpoint_every", "snapshot_steps", "device", "diverge_patience", "precision",
                     "channels_last")
COMPARED_SECTIONS = ("family", "model", "training", "dataset", "prior", "distributed")
TRAINING_STATE_VERSION = 1
# What a training state's JSON holds (training_state writes them, --resume reads every one).
TRAINING_STATE_KEYS = ("step", "images_seen", "seconds", "data_batches_taken", "diverge_won_for", "ranks",
                       "optimizers", "history", "config")


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


def comparable_config(bundle_config: dict) -> dict:
    """What must be the same for a resumed run to be the same run, as JSON sees it (tuples become lists):
    family, model, dataset, prior, process count and the training options except RESUMABLE_CHANGES (the
    loops' extra entries such as conditions or codes follow from these)."""
    config = json.loads(json.dumps({key: bundle_config.get(key) for key in COMPARED_SECTIONS}))
    for key in RESUMABLE_CHANGES + RUNTIME_FIELDS:
        config["training"].pop(key, None)
    return with_added_fields(config)


def with_added_fields(config: dict) -> dict:
    """A comparable config with every option added since it was saved set to the value it ran with
    (ADDED_FIELDS): a run saved before an option existed ran without it."""
    training = config.get("training")
    if isinstance(training, dict):
        config = {**config, "training": {**ADDED_FIELDS, **training}}
    return config

def read_resume_state(run: Run) -> tuple[dict[str, torch.Tensor], dict] | None:
    """The training state to continue from, after checking it belongs to the run that was asked for;
    None when `out` holds no bundle yet (a run killed before its first save starts from step 0)."""
    loaded = checkpoint.load_training_state(run.out)
    if loaded is None:
        config_file = run.out / checkpoint.CONFIG_FILE
        if not config_file.exists():
            if run.progress:
                print(f"--resume: nothing saved in {run.out} yet; starting from step 0", file=sys.stderr)
            return None
        step = checkpoint.read_config(run.out).get("step")
        raise LatentExplorerError(
            f"--resume: {run.out} holds a bundle (step {step}) but no {checkpoint.TRAINING_STATE_FILE}: the run "
            "finished and its training state was dropped (train with --keep-training-state to be able to "
            "continue a finished run), or it was written by an older version. Train again with --overwrite "
            "instead of --resume, or choose another --out."
        )
    tensors, state = loaded
    file = run.out / checkpoint.TRAINING_STATE_FILE
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
    differences = config_differences(with_added_fields(recorded), comparable_config(run.bundle_config))
    if differences:
        raise LatentExplorerError(
            f"--resume: the run in {run.out} was trained with other settings than the ones asked for now, so "
            "it cannot continue as the same run:\n  " + "\n  ".join(differences[:20])
            + (f"\n  and {len(differences) - 20} more" if len(differences) > 20 else "")
            + "\nRepeat the original command with --resume (only --steps, --checkpoint-every, --snapshot-steps, "
            "--device, --diverge-patience, --precision and --channels-last may change), or choose another --out."
        )
    if state["step"] >= run.config.steps:
        raise LatentExplorerError(
            f"--resume: the run in {run.out} has already trained {state['step']} steps and --steps is "
            f"{run.config.steps}; ask for more --steps to continue it"
        )
    if len(state["ranks"]) != run.processes.world_size:
        raise LatentExplorerError(f"--resume: the run was trained by {len(state['ranks'])} processes, "
                                  f"now {run.processes.world_size}")
    return tensors, state

def training_state(run: Run, step: int) -> tuple[dict[str, torch.Tensor], dict]:
    """Everything `start` needs to continue after `step` exactly. Collective under torchrun: every rank
    calls it (their random streams are gathered), rank 0 writes."""
    tensors: dict[str, torch.Tensor] = {}
    for net_name, net in run.networks.items():
        for key, tensor in net.state_dict().items():
            tensors[f"network.{net_name}.{key}"] = tensor
    optimizers = {}
    for opt_name, optimizer in run.optimizers.items():
        opt_tensors, optimizers[opt_name] = optimizer_state(opt_name, optimizer)
        tensors.update(opt_tensors)
    epoch_start, taken = run.sampler.state()
    tensors["rng.data_epoch_start"] = epoch_start
    # Not drawn from after initialisation today; kept so that a future dropout layer resumes exactly too.
    tensors["rng.torch"] = torch.get_rng_state()
    for stream in ("noise", "flip", "code"):
        local = getattr(run, f"{stream}_rng").get_state()
        for rank, state in enumerate(distributed.gather_tensors(local, run.processes, run.device)):
            tensors[f"rng.{stream}.{rank}"] = state
    state = {
        "version": TRAINING_STATE_VERSION,
        "step": step,
        "images_seen": run.images_seen,
        "seconds": round(time.time() - run.started, 3),
        "data_batches_taken": taken,
        "diverge_won_for": run.guard.won_for,
        "ranks": list(range(run.processes.world_size)),
        "optimizers": optimizers,
        "history": run.history,
        "resumed_at_steps": run.bundle_config.get("resumed_at_steps", []),
        "config": comparable_config(run.bundle_config),
    }
    return tensors, state

def restore(run: Run, tensors: dict[str, torch.Tensor], state: dict) -> None:
    for net_name, net in run.networks.items():
        prefix = f"network.{net_name}."
        net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    for opt_name, optimizer in run.optimizers.items():
        load_optimizer_state(opt_name, optimizer, tensors, state["optimizers"][opt_name])
    run.sampler.restore(tensors["rng.data_epoch_start"], state["data_batches_taken"])
    torch.set_rng_state(tensors["rng.torch"])
    rank = run.processes.rank
    for stream in ("noise", "flip", "code"):
        getattr(run, f"{stream}_rng").set_state(tensors[f"rng.{stream}.{rank}"])
    run.history = state["history"]
    run.images_seen = state["images_seen"]
    run.guard.won_for = state["diverge_won_for"]
    run.start_step = run.saved_step = state["step"]
    run.started = time.time() - state["seconds"]
    run.bundle_config["resumed_at_steps"] = state.get("resumed_at_steps", []) + [state["step"]]

# -- the loop's side of a run -------------------------------------------------------------------------
