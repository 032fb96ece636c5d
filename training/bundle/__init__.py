"""Bundles: one folder per model (weights, config, history, metrics, snapshots, held-out codes).

The package's public names are re-exported here, each imported on first use (`from training.bundle import paths`
must not import torch). Inside the package, modules import each other directly. format (file names, version),
loaded (the Bundle a reader gets), read (checked reading), write (atomic writing), training_state (for --resume),
discovery (finding bundles), and the helpers: atomic (crash-safe writes), paths (where the shipped bundles live),
latents_file, slim, output_folder, grids, trained_on.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "atomic": ("atomic_write_json",),
    "discovery": ("find_bundles",),
    "format": ("CONFIG_FILE", "EXPERIMENT_FIELDS", "EXPERIMENT_KEY", "FORMAT_VERSION", "HISTORY_FILE", "LATENTS_FILE",
               "METRICS_FILE", "SNAPSHOT_DIR", "TRAINING_STATE_FILE", "WEIGHTS_FILE"),
    "loaded": ("Bundle",),
    "read": ("config_problems", "load_bundle", "read_config", "read_history", "read_metrics"),
    "training_state": ("load_training_state", "save_training_state"),
    "write": ("save_bundle", "update_metrics"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'training.bundle' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"training.bundle.{_WHERE[name]}"), name)
    globals()[name] = value  # once: later lookups are plain attribute reads
    return value

