"""Continuing an interrupted run exactly: what its training state file holds, and the check that a resumed run is
the same run (same settings but those in RESUMABLE_CHANGES): pure checks on plain values. Run (run.py) writes
and restores the state itself (Run.state_dict, Run.load_state_dict)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

from training.bundle import CONFIG_FILE, TRAINING_STATE_FILE, load_training_state, read_config
from training.data.location import portable_source
from training.errors import LatentExplorerError
from training.loops.config import ADDED_FIELDS, RUNTIME_FIELDS

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

def read_resume_state(out: Path, bundle_config: dict, steps: int, world_size: int, progress: bool
                      ) -> tuple[dict[str, torch.Tensor], dict] | None:
    """The training state in `out` to continue from, after checking it belongs to the run that was asked for
    (its bundle config, --steps and process count); None when `out` holds no bundle yet (a run killed before its
    first save starts from step 0)."""
    loaded = load_training_state(out)
    if loaded is None:
        config_file = out / CONFIG_FILE
        if not config_file.exists():
            if progress:
                print(f"--resume: nothing saved in {out} yet; starting from step 0", file=sys.stderr)
            return None
        step = read_config(out).get("step")
        raise LatentExplorerError(
            f"--resume: {out} holds a bundle (step {step}) but no {TRAINING_STATE_FILE}: the run "
            "finished and its training state was dropped (train with --keep-training-state to be able to "
            "continue a finished run), or it was written by an older version. Train again with --overwrite "
            "instead of --resume, or choose another --out."
        )
    tensors, state = loaded
    file = out / TRAINING_STATE_FILE
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
    differences = config_differences(with_added_fields(recorded), comparable_config(bundle_config))
    if differences:
        raise LatentExplorerError(
            f"--resume: the run in {out} was trained with other settings than the ones asked for now, so "
            "it cannot continue as the same run:\n  " + "\n  ".join(differences[:20])
            + (f"\n  and {len(differences) - 20} more" if len(differences) > 20 else "")
            + "\nRepeat the original command with --resume (only --steps, --checkpoint-every, --snapshot-steps, "
            "--device, --diverge-patience, --precision and --channels-last may change), or choose another --out."
        )
    if state["step"] >= steps:
        raise LatentExplorerError(
            f"--resume: the run in {out} has already trained {state['step']} steps and --steps is "
            f"{steps}; ask for more --steps to continue it"
        )
    if len(state["ranks"]) != world_size:
        raise LatentExplorerError(f"--resume: the run was trained by {len(state['ranks'])} processes, "
                                  f"now {world_size}")
    return tensors, state
