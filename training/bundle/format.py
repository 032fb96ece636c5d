"""The bundle's file names, format version and experiment record, and the careful look-ups every reader shares.

A bundle is one folder per model: safetensors weights, a config.json that rebuilds it, history, metrics and
snapshots. Loading never unpickles anything: weights are safetensors, everything else is JSON or PNG."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from training.errors import LatentExplorerError
from training.untrusted.checks import read_json

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
LATENTS_FILE = "latents.npz"
SNAPSHOT_DIR = "snapshots"
# Only for continuing training (`--resume`): the explorer never reads it, and load_bundle ignores it.
TRAINING_STATE_FILE = "training_state.safetensors"
TRAINING_STATE_KEY = "training_state"  # the safetensors metadata entry holding the state's JSON part

# An experiment run's record in config.json (training.recipes.experiments writes it) and the type of each field.
EXPERIMENT_KEY = "experiment"
EXPERIMENT_FIELDS = {"group": str, "run": str, "label": str, "baseline": str, "title": str, "question": str,
                     "size_note": str, "changed": list, "score_on_baseline_data": bool, "stopped": dict}


def shorten(text: str, limit: int = 300) -> str:
    """Messages quote values from the file; a hostile file's megabyte-long string must not become the message."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def may_exist(file: Path) -> bool:
    """Path.exists(), except that a name this process may not even look up (its folder has mode 644: listable, not
    enterable) counts as there, so that the reader says why it cannot read it instead of Path.exists() raising
    PermissionError through every page."""
    try:
        return file.exists()
    except OSError:
        return True


def present(file: Path) -> bool:
    """Whether something, a dangling link included, may be at `file` (the reader then says what is wrong)."""
    return may_exist(file) or file.is_symlink()


def read_json_if_present(file: Path, what: str, default: Any) -> Any:
    """A bundle's optional JSON file (history, metrics, ...), or `default` when there is none."""
    return read_json_file(file, what) if may_exist(file) else default


def read_json_file(file: Path, what: str) -> Any:
    if not present(file):
        raise LatentExplorerError(f"{file}: missing {what}; is this a Latent Explorer bundle folder?")
    return read_json(file, what)


def entry_is(entry: os.DirEntry, kind: str) -> bool:
    """Whether a listed entry is a "file", "dir" or "link"; False when it cannot even be looked at."""
    try:
        if kind == "link":
            return entry.is_symlink()
        return entry.is_file() if kind == "file" else entry.is_dir()
    except OSError:
        return False
