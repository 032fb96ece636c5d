"""Writing bundles: weights, then history, then config, each atomically; one metrics entry at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from training.bundle.atomic import atomic_write_json, replacing
from training.bundle.format import (
    CONFIG_FILE,
    FORMAT_VERSION,
    HISTORY_FILE,
    METRICS_FILE,
    WEIGHTS_FILE,
)
from training.bundle.read import read_metrics


def save_bundle(path: str | Path, config: dict, networks: dict[str, torch.nn.Module],
                history: dict[str, list[float]] | None = None) -> Path:
    """Write weights then history then config, each atomically. The config goes last so a reader
    never sees a config that names tensors the weights file does not have yet."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for net_name, net in networks.items():
        for key, tensor in net.state_dict().items():
            tensors[f"{net_name}.{key}"] = tensor.detach().to("cpu").contiguous().clone()
    with replacing(path / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"format_version": str(FORMAT_VERSION)})
    if history is not None:
        atomic_write_json(path / HISTORY_FILE, history)
    atomic_write_json(path / CONFIG_FILE, {"format_version": FORMAT_VERSION, **config})
    return path


def update_metrics(path: str | Path, key: str, value: Any) -> None:
    """Set one entry of metrics.json, keeping the others (several evaluations write to the same file)."""
    metrics = read_metrics(path)
    metrics[key] = value
    atomic_write_json(Path(path) / METRICS_FILE, metrics)
