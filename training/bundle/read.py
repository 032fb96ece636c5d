"""Reading bundles: config.json checked field by field, weights checked tensor by tensor against the config.

Every problem a user can cause is raised as LatentExplorerError naming the file and what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from training.attributes import Attribute
from training.bundle.format import (
    CONFIG_FILE,
    EXPERIMENT_FIELDS,
    EXPERIMENT_KEY,
    FORMAT_VERSION,
    HISTORY_FILE,
    METRICS_FILE,
    WEIGHTS_FILE,
    read_json_file,
    read_json_if_present,
    shorten,
)
from training.bundle.loaded import Bundle
from training.errors import LatentExplorerError
from training.latent.priors import LatentDistribution
from training.models import registry
from training.untrusted.checks import regular_file_size


def read_config(path: str | Path) -> dict:
    """Read and check config.json without touching the weights (cheap: the app lists bundles this way)."""
    path = Path(path)
    try:
        if not path.exists():
            raise LatentExplorerError(f"{path}: no such bundle folder")
        if not path.is_dir():
            raise LatentExplorerError(f"{path}: a bundle is a folder holding {CONFIG_FILE} and {WEIGHTS_FILE}")
        # A folder this process may list but not enter (mode 644) lists its config.json, then fails here.
        (path / CONFIG_FILE).exists()
    except OSError as exc:  # e.g. a link into a folder this process may not enter
        raise LatentExplorerError(f"{path}: cannot open the bundle folder ({exc.strerror or exc}); fix its "
                                  "permissions") from None
    file = path / CONFIG_FILE
    config = read_json_file(file, "model config")
    if not isinstance(config, dict):
        raise LatentExplorerError(f"{file}: expected a JSON object, got {type(config).__name__}")
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise LatentExplorerError(f"{file}: 'format_version' is missing or not an integer")
    if version > FORMAT_VERSION:
        raise LatentExplorerError(
            f"{file}: bundle format version {version} is newer than this program reads ({FORMAT_VERSION}); "
            "update Latent Explorer"
        )
    if version < 1:
        raise LatentExplorerError(f"{file}: unknown bundle format version {version}")
    for key, kind in (("family", str), ("model", dict), ("dataset", dict)):
        if not isinstance(config.get(key), kind):
            raise LatentExplorerError(f"{file}: '{key}' is missing or not a {kind.__name__}")
    if config["family"] not in registry.FAMILIES:
        raise LatentExplorerError(
            f"{file}: unknown model family {shorten(repr(config['family']), 60)} "
            f"(known: {', '.join(registry.FAMILIES)})"
        )
    if not isinstance(config["dataset"].get("name"), str):
        raise LatentExplorerError(f"{file}: 'dataset.name' is missing or not a str")
    # Optional entries the pages read: a wrong type would break them far from here, so refuse it here.
    for where, key, kind in ((config, "name", str), (config, "training", dict), (config, "step", int),
                             (config, "networks_shipped", list), (config["dataset"], "source", dict),
                             (config["dataset"], "image_size", int), (config["dataset"], "attributes", list)):
        value = where.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            label = key if where is config else f"dataset.{key}"
            raise LatentExplorerError(f"{file}: '{label}' must be a {kind.__name__}, not {type(value).__name__}")
    if not all(isinstance(name, str) for name in config.get("networks_shipped") or []):
        raise LatentExplorerError(f"{file}: 'networks_shipped' must be a list of network names")
    _check_experiment(file, config.get(EXPERIMENT_KEY))
    try:
        attributes = [Attribute.from_json(a) for a in config["dataset"].get("attributes", [])]
        if config.get("prior") is not None:
            LatentDistribution.from_json(config["prior"])
    except (KeyError, TypeError, AttributeError, ValueError, LatentExplorerError) as exc:
        raise LatentExplorerError(f"{file}: unreadable dataset attributes or prior ({shorten(str(exc))})") from None
    del attributes
    return config


def _check_experiment(file: Path, experiment: Any) -> None:
    """The experiment record (training.recipes.experiments writes it; the Experiments page reads every field)
    or None."""
    if experiment is None:
        return
    if not isinstance(experiment, dict):
        raise LatentExplorerError(f"{file}: '{EXPERIMENT_KEY}' must be an object, not {type(experiment).__name__}")
    for key, kind in EXPERIMENT_FIELDS.items():
        value = experiment.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool) != (kind is bool)):
            raise LatentExplorerError(f"{file}: '{EXPERIMENT_KEY}.{key}' must be a {kind.__name__}, "
                                      f"not {type(value).__name__}")
    changed, stopped = experiment.get("changed"), experiment.get("stopped")
    if changed is not None and not all(isinstance(v, str) for v in changed):
        raise LatentExplorerError(f"{file}: '{EXPERIMENT_KEY}.changed' must be a list of option strings")
    if stopped is not None and (not isinstance(stopped.get("step"), int) or isinstance(stopped.get("step"), bool)
                                or not isinstance(stopped.get("message", ""), str)):
        raise LatentExplorerError(f"{file}: '{EXPERIMENT_KEY}.stopped' must hold a whole 'step' and a 'message'")


def _load_weights(file: Path) -> dict[str, torch.Tensor]:
    regular_file_size(file, "weights file")  # a FIFO or /dev/zero here would hang or fill memory
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise LatentExplorerError(f"{file}: weights are truncated or corrupt ({exc})") from None


def load_bundle(path: str | Path, with_training_networks: bool = False) -> Bundle:
    """Load and validate a bundle. By default only the networks the explorer needs are built
    (a GAN's discriminator stays on disk); training resumes pass with_training_networks=True."""
    path = Path(path)
    config = read_config(path)
    family = config["family"]
    try:
        # Shapes only, on the meta device: a config inside every per-field limit can still describe a 16 GB
        # generator. Real networks are built only once the weights file is known to hold all their tensors.
        with torch.device("meta"):
            skeletons = registry.build_networks(family, config["model"], training=with_training_networks)
    except LatentExplorerError as exc:
        raise LatentExplorerError(f"{path / CONFIG_FILE}: {shorten(str(exc))}") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise LatentExplorerError(f"{path / CONFIG_FILE}: 'model' does not describe a {family} "
                                  f"({shorten(str(exc))})") from None
    weights_file = path / WEIGHTS_FILE
    tensors = _load_weights(weights_file)
    states = {}
    for net_name, net in skeletons.items():
        prefix = f"{net_name}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        expected = net.state_dict()
        missing = sorted(set(expected) - set(state))
        shipped = config.get("networks_shipped")
        if not state and isinstance(shipped, list) and net_name not in shipped:
            raise LatentExplorerError(f"{weights_file}: this bundle ships only its {', '.join(map(str, shipped))} "
                                      f"(to keep the repository small), not the {net_name} that continuing its "
                                      "training needs; retrain it with `python -m training build-checkpoints`")
        if missing:
            raise LatentExplorerError(
                f"{weights_file}: {net_name} tensors missing: {', '.join(missing[:5])}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            )
        unexpected = sorted(set(state) - set(expected))
        if unexpected:
            raise LatentExplorerError(f"{weights_file}: unexpected {net_name} tensors: "
                                      f"{shorten(', '.join(unexpected[:5]))}")
        for key, tensor in expected.items():
            if state[key].shape != tensor.shape:
                raise LatentExplorerError(
                    f"{weights_file}: {net_name}.{key} has shape {tuple(state[key].shape)} but "
                    f"{CONFIG_FILE} implies {tuple(tensor.shape)}"
                )
            if state[key].dtype == torch.float16 and config.get("weights_stored_as") == "float16":
                state[key] = state[key].to(tensor.dtype)  # stored in half precision to fit the budget (slim.py)
            if state[key].dtype != tensor.dtype:
                raise LatentExplorerError(
                    f"{weights_file}: {net_name}.{key} has dtype {state[key].dtype}, expected {tensor.dtype}"
                )
            if state[key].is_floating_point() and not torch.isfinite(state[key]).all():
                raise LatentExplorerError(f"{weights_file}: {net_name}.{key} contains NaN or infinite values")
            if key.endswith("running_var") and bool((state[key] < 0).any()):
                # A variance below zero makes BatchNorm divide by the square root of a negative number: NaN images.
                raise LatentExplorerError(f"{weights_file}: {net_name}.{key} holds negative variances, which no "
                                          "training produces; the weights were edited or damaged")
        states[net_name] = state
    networks = registry.build_networks(family, config["model"], training=with_training_networks)
    for net_name, net in networks.items():
        net.load_state_dict(states[net_name])
        net.eval()
    return Bundle(path=path, config=config, networks=networks, history=read_history(path),
                  metrics=read_metrics(path))


def read_history(path: str | Path) -> dict[str, list]:
    """A bundle's history.json, checked ({} when it has none): one list of numbers (or nulls) per curve."""
    file = Path(path) / HISTORY_FILE
    history = read_json_if_present(file, "training history", {})
    if not isinstance(history, dict) or not all(
            isinstance(v, list) and all(x is None or isinstance(x, (int, float)) for x in v) for v in history.values()):
        raise LatentExplorerError(f"{file}: expected a JSON object of number lists (one per curve)")
    return history


def read_metrics(path: str | Path) -> dict:
    """A bundle's metrics.json, checked ({} when it has none)."""
    file = Path(path) / METRICS_FILE
    metrics = read_json_if_present(file, "metrics", {})
    if not isinstance(metrics, dict):
        raise LatentExplorerError(f"{file}: expected a JSON object, got {type(metrics).__name__}")
    return metrics


def config_problems(paths) -> dict[str, str]:
    """Folder -> the one sentence saying why, for each of these bundle folders whose config.json cannot be read."""
    problems = {}
    for path in paths:
        try:
            read_config(path)
        except LatentExplorerError as exc:
            problems[str(path)] = str(exc)
    return problems
