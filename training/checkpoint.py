"""Checkpoint bundles: one folder per model with safetensors weights, a config that rebuilds it, history and snapshots.

Loading never unpickles anything: weights are safetensors, everything else is JSON or PNG.
Every problem a user can cause is raised as LatentExplorerError naming the file and what is wrong.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from training import latents_file
from training.atomic import atomic_write_bytes, replacing
from training.attributes import Attribute
from training.errors import LatentExplorerError
from training.latent import STANDARD_NORMAL, LatentDistribution
from training.latents_file import read_latents
from training.models import registry
from training.untrusted import finite_json, parse_json, read_json, regular_file_size

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
MAX_LATENTS_BYTES = latents_file.MAX_LATENTS_BYTES
# An experiment run's record in config.json (training.experiments writes it) and the type of each field.
EXPERIMENT_KEY = "experiment"
EXPERIMENT_FIELDS = {"group": str, "run": str, "label": str, "baseline": str, "title": str, "question": str,
                     "size_note": str, "changed": list, "score_on_baseline_data": bool, "stopped": dict}


@dataclass
class Bundle:
    """A loaded, validated bundle. Networks are in eval mode on the CPU."""

    path: Path
    config: dict
    networks: dict[str, torch.nn.Module]
    history: dict[str, list[float]] = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    @property
    def family(self) -> str:
        return self.config["family"]

    @property
    def name(self) -> str:
        return self.config.get("name") or f"{self.config['dataset']['name']}/{self.family}"

    @property
    def capabilities(self) -> registry.Capabilities:
        return registry.capabilities(self.family)

    @property
    def model_config(self) -> Any:
        return registry.model_config(self.family, self.config["model"])

    @property
    def generator(self) -> torch.nn.Module:
        """The network that maps codes to images (the GAN generator or the VAE decoder)."""
        return self.networks[registry.GENERATOR_NAME[self.family]]

    @property
    def encoder(self) -> torch.nn.Module | None:
        """The VAE's encoder (x -> (mu, logvar)); None for the GAN families."""
        return self.networks.get("encoder")

    @property
    def conditions(self) -> tuple[Attribute, ...]:
        """What a conditional GAN's generator takes as `labels` columns, in order; () for other families."""
        if not self.capabilities.conditional:
            return ()
        return tuple(Attribute.from_json(a) for a in self.config["model"]["conditions"])

    @property
    def codes(self) -> list[dict]:
        """An InfoGAN's code layout (name, kind, [start, stop) slots in the generator input); [] otherwise."""
        if not self.capabilities.info_codes:
            return []
        return self.model_config.code_layout()

    @property
    def latent_dim(self) -> int:
        return int(self.config["model"]["latent_dim"])

    @property
    def prior(self) -> LatentDistribution:
        """The distribution the model was trained to decode (N(0,1) unless training said otherwise)."""
        data = self.config.get("prior")
        return LatentDistribution.from_json(data) if data else STANDARD_NORMAL

    @property
    def attributes(self) -> tuple[Attribute, ...]:
        return tuple(Attribute.from_json(a) for a in self.config["dataset"].get("attributes", []))

    def snapshot_paths(self) -> dict[int, Path]:
        """Fixed-noise grids saved during training, by step: the bundle's own files only (snapshot_problem says
        what was left out)."""
        return self._snapshots()[0]

    def snapshot_problem(self) -> str | None:
        """One sentence on the snapshots left out because they are symbolic links, or None when none was."""
        refused = self._snapshots()[1]
        if not refused:
            return None
        shown = ", ".join(refused[:3]) + (f" and {len(refused) - 3} more" if len(refused) > 3 else "")
        return (f"{self.path / SNAPSHOT_DIR}: {len(refused)} snapshot{'s' if len(refused) > 1 else ''} left out "
                f"({_shorten(shown, 200)}): a snapshot must be a file inside the bundle, not a symbolic link")

    def _snapshots(self) -> tuple[dict[int, Path], list[str]]:
        """(step -> PNG, names refused). A symbolic link is refused, the snapshots folder's own included: every
        visitor sees a bundle's snapshots, so a link would show them any picture the server may read."""
        folder = self.path / SNAPSHOT_DIR
        found, refused = {}, []
        try:
            if folder.is_symlink():
                return {}, [f"{SNAPSHOT_DIR}/ itself"]
            if not folder.is_dir():
                return {}, []
            with os.scandir(folder) as listing:
                entries = [e for e in listing if e.name.startswith("step_") and e.name.endswith(".png")]
        except OSError:  # a snapshots folder this process may not read: no snapshots, the rest still works
            return {}, []
        for entry in entries:
            try:
                step = int(entry.name[:-len(".png")].split("_")[1])
            except (IndexError, ValueError):
                continue
            if _entry_is(entry, "link"):
                refused.append(entry.name)
            elif _entry_is(entry, "file"):
                found[step] = folder / entry.name
        return dict(sorted(found.items())), sorted(refused)

    def latents(self) -> dict[str, np.ndarray] | None:
        """Encoded held-out codes and labels (VAE bundles), loaded without pickle and checked (latents_file)."""
        file = self.path / LATENTS_FILE
        if not _present(file):
            return None
        source = self.config["dataset"].get("source") or {}
        num_images = source.get("num_images") if isinstance(source.get("num_images"), int) else None
        return read_latents(file, self.latent_dim, self.config["dataset"].get("image_size"), num_images,
                            max_bytes=MAX_LATENTS_BYTES)


def atomic_write_json(path: Path, data: Any) -> None:
    # allow_nan=False after finite_json: a NaN would make a file that our own strict reader refuses.
    atomic_write_bytes(path, (json.dumps(finite_json(data), indent=1, sort_keys=False, allow_nan=False) + "\n")
                       .encode())


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
    if not _present(file):
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


def update_metrics(path: str | Path, key: str, value: Any) -> None:
    """Set one entry of metrics.json, keeping the others (several evaluations write to the same file)."""
    file = Path(path) / METRICS_FILE
    metrics = _read_json(file, "metrics") if _may_exist(file) else {}
    if not isinstance(metrics, dict):
        raise LatentExplorerError(f"{file}: expected a JSON object, got {type(metrics).__name__}")
    metrics[key] = value
    atomic_write_json(file, metrics)


def _shorten(text: str, limit: int = 300) -> str:
    """Messages quote values from the file; a hostile file's megabyte-long string must not become the message."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def _may_exist(file: Path) -> bool:
    """Path.exists(), except that a name this process may not even look up (its folder has mode 644: listable, not
    enterable) counts as there, so that the reader says why it cannot read it instead of Path.exists() raising
    PermissionError through every page."""
    try:
        return file.exists()
    except OSError:
        return True


def _present(file: Path) -> bool:
    """Whether something, a dangling link included, may be at `file` (the reader then says what is wrong)."""
    return _may_exist(file) or file.is_symlink()


def _read_json(file: Path, what: str) -> Any:
    if not _present(file):
        raise LatentExplorerError(f"{file}: missing {what}; is this a Latent Explorer bundle folder?")
    return read_json(file, what)


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
    config = _read_json(file, "model config")
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
            f"{file}: unknown model family {_shorten(repr(config['family']), 60)} "
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
        raise LatentExplorerError(f"{file}: unreadable dataset attributes or prior ({_shorten(str(exc))})") from None
    del attributes
    return config


def _check_experiment(file: Path, experiment: Any) -> None:
    """The experiment record (training.experiments writes it; the Experiments page reads every field) or None."""
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
        raise LatentExplorerError(f"{path / CONFIG_FILE}: {_shorten(str(exc))}") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise LatentExplorerError(f"{path / CONFIG_FILE}: 'model' does not describe a {family} "
                                  f"({_shorten(str(exc))})") from None
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
                                      f"{_shorten(', '.join(unexpected[:5]))}")
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
    history_file = path / HISTORY_FILE
    history = _read_json(history_file, "training history") if _may_exist(history_file) else {}
    if not isinstance(history, dict) or not all(
            isinstance(v, list) and all(x is None or isinstance(x, (int, float)) for x in v) for v in history.values()):
        raise LatentExplorerError(f"{history_file}: expected a JSON object of number lists (one per curve)")
    metrics_file = path / METRICS_FILE
    metrics = _read_json(metrics_file, "metrics") if _may_exist(metrics_file) else {}
    if not isinstance(metrics, dict):
        raise LatentExplorerError(f"{metrics_file}: expected a JSON object, got {type(metrics).__name__}")
    return Bundle(path=path, config=config, networks=networks, history=history, metrics=metrics)


def _entry_is(entry: os.DirEntry, kind: str) -> bool:
    """Whether a listed entry is a "file", "dir" or "link"; False when it cannot even be looked at."""
    try:
        if kind == "link":
            return entry.is_symlink()
        return entry.is_file() if kind == "file" else entry.is_dir()
    except OSError:
        return False


def config_problems(paths) -> dict[str, str]:
    """Folder -> the one sentence saying why, for each of these bundle folders whose config.json cannot be read."""
    problems = {}
    for path in paths:
        try:
            read_config(path)
        except LatentExplorerError as exc:
            problems[str(path)] = str(exc)
    return problems


def find_bundles(root: str | Path) -> list[Path]:
    """Every folder under root that holds a config.json, sorted (checkpoints/<dataset>/<model>).

    Hidden folders below root are skipped, and the search does not go inside a bundle (its snapshots/ hold no
    bundles): the app lists the bundles on every rerun, and walking every snapshot cost milliseconds each time.
    Symbolic links to folders are followed, once each."""
    root = Path(root)
    try:
        if not root.is_dir():
            return []
    except OSError:  # a root this process may not enter lists no bundle rather than breaking every page
        return []
    found, todo, linked = [], [root], {os.path.realpath(root)}
    while todo:
        folder = todo.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError:
            continue
        # An entry the process may not stat (a link into a forbidden folder) is skipped, not raised.
        if any(e.name == CONFIG_FILE and _entry_is(e, "file") for e in entries):
            found.append(folder)
            continue
        for entry in entries:
            if entry.name.startswith(".") or not _entry_is(entry, "dir"):
                continue
            if entry.is_symlink():  # only links can make a loop; resolving every folder cost more than the walk
                target = os.path.realpath(entry.path)
                if target in linked:
                    continue
                linked.add(target)
            todo.append(folder / entry.name)
    if len(linked) == 1:  # no link followed, so no bundle was found twice (resolving them all cost the most)
        return sorted(found)
    unique = {}
    for bundle in sorted(found):  # a link to a folder walked anyway finds its bundles twice: keep one path each
        unique.setdefault(os.path.realpath(bundle), bundle)
    return sorted(unique.values())
