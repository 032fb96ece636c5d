"""How much disk a run needs at its peak, checked before the first step instead of failing at a save."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from training.bundle import TRAINING_STATE_FILE, WEIGHTS_FILE
from training.errors import LatentExplorerError
from training.loops.config import SNAPSHOT_SAMPLES

# Disk estimates beyond the tensors: config.json, metrics.json and latents.npz; the training state's JSON (config,
# optimizer settings) besides the history; one generator state (mt19937); one history row as JSON (12 numbers).
SMALL_FILES_BYTES = 1 << 20
STATE_JSON_BYTES = 16 << 10
RNG_STATE_BYTES = 5056
HISTORY_BYTES_PER_STEP = 120


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
    existing = sum((out / f).stat().st_size for f in (WEIGHTS_FILE, TRAINING_STATE_FILE)
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
