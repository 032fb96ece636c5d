"""A run's training state (optimizers, step, random generators) for `--resume`: one file beside the bundle.

The explorer never reads it, and load_bundle ignores it."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError

from training.bundle.atomic import atomic_write_bytes
from training.bundle.format import FORMAT_VERSION, TRAINING_STATE_FILE, TRAINING_STATE_KEY, present
from training.errors import LatentExplorerError
from training.untrusted.checks import finite_json, parse_json, regular_file_size


def save_training_state(path: str | Path, tensors: dict[str, torch.Tensor], state: dict) -> Path:
    """Write everything a run needs to continue exactly (tensors, plus JSON in the file's metadata) as one
    file, atomically: a kill at any moment leaves either the previous training state or the new one."""
    from safetensors.torch import save

    file = Path(path) / TRAINING_STATE_FILE
    cpu = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    atomic_write_bytes(file, save(cpu, metadata={TRAINING_STATE_KEY: json.dumps(finite_json(state), allow_nan=False),
                                                  "format_version": str(FORMAT_VERSION)}))
    return file


def load_training_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict] | None:
    """(tensors, JSON state) from a bundle's training state, or None when the bundle has none."""
    from safetensors import safe_open

    file = Path(path) / TRAINING_STATE_FILE
    if not present(file):
        return None
    regular_file_size(file, "training state")
    try:
        with safe_open(str(file), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        state = parse_json(metadata[TRAINING_STATE_KEY], str(file), "training state")
    except (SafetensorError, OSError, ValueError, RuntimeError, KeyError, LatentExplorerError) as exc:
        raise LatentExplorerError(
            f"{file}: the training state is truncated or corrupt ({type(exc).__name__}: {exc}); delete it and "
            "train again without --resume"
        ) from None
    if not isinstance(state, dict):
        raise LatentExplorerError(f"{file}: the training state's JSON is not an object")
    return tensors, state
