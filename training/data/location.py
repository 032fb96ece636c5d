"""Where a dataset lives: bundles record it portably (a folder name under a data root, files relative to that
folder), and each machine finds its own copy from a path the user gives, the environment, or an old bundle's path."""

from __future__ import annotations

import os
from pathlib import Path, PureWindowsPath

from training.errors import LatentExplorerError

DATA_ROOT_VARIABLE = "LATENT_EXPLORER_DATA_ROOT"
# Generated from a seed: nothing to record, nothing to find.
PROCEDURAL_DATASETS = ("toyfaces",)
# Finds its files in its usual install places (fashion_mnist.DEFAULT_ROOTS: Debian's package) when given no folder.
FINDS_ITS_OWN_FILES = ("fashion-mnist",)
# The keys in which a source record holds the absolute dataset folder: at run time, and in bundles written before
# records were portable.
ABSOLUTE_KEYS = ("root", "path")
# How a command-line user gives the path; the explorer passes its own sentence (format keys: name, folder).
CLI_ASK = "the {name} images are not on this machine: pass --data-root with your {folder} folder"


def data_root_variable(dataset: str) -> str:
    """The environment variable that points at one dataset's local copy, e.g. LATENT_EXPLORER_ANIME_ROOT."""
    return "LATENT_EXPLORER_" + dataset.upper().replace("-", "_") + "_ROOT"


def is_absolute(text: str) -> bool:
    """A POSIX or Windows absolute path (a record may come from either kind of machine)."""
    return text.startswith(("/", "\\")) or PureWindowsPath(text).is_absolute()


def _recorded_root(source: dict) -> str | None:
    """The absolute dataset folder a runtime record (or an old bundle's) holds, if any."""
    load_args = source.get("load_args") if isinstance(source.get("load_args"), dict) else {}
    for value in (source.get("root"), load_args.get("path"), source.get("path")):
        if isinstance(value, str) and value:
            return value
    return None


def recorded_folder(source: dict) -> str:
    """The name of the dataset's folder under a data root: recorded, else the last part of an old absolute path,
    else the dataset's name."""
    root = _recorded_root(source)
    return str(source.get("folder") or (PureWindowsPath(root).name if root else "") or source.get("name") or "data")


def _relative(value: object, root: str | None) -> object:
    """value with every path under root made relative to it, and any other absolute path cut to its last part."""
    if isinstance(value, dict):
        return {k: _relative(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_relative(v, root) for v in value]
    if not isinstance(value, str):
        return value
    base = (root or "").rstrip("/\\")
    if base:
        if value == base:
            return "."
        for sep in ("/", "\\"):  # also inside a message, e.g. "a/x.jpg: cannot identify image file '<path>'"
            value = value.replace(base + sep, "")
    return PureWindowsPath(value).name if is_absolute(value) else value


def portable_source(source: dict) -> dict:
    """The dataset record a bundle keeps, without any path of this machine: the dataset folder by its name
    ("folder": "anime64", found again under a data root) and every file relative to that folder. A portable
    record comes back as it is; a procedural one (toyfaces) has no path to remove."""
    root = _recorded_root(source)
    out: dict = {}
    for key, value in source.items():
        if key in ABSOLUTE_KEYS:
            continue
        out[key] = _relative(value, root)
        if key == "name" and root:
            out.setdefault("folder", recorded_folder(source))  # beside the name, where a reader looks first
    if root:
        out.setdefault("folder", recorded_folder(source))
    if isinstance(out.get("load_args"), dict):
        out["load_args"] = {k: v for k, v in out["load_args"].items() if k != "path"}
    return out


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):  # unreadable, or a name no file can have (a NUL typed in a box)
        return False


def find_dataset_folder(source: dict, explicit: str | os.PathLike | None = None, ask: str = CLI_ASK
                        ) -> Path | None:
    """This machine's copy of the recorded dataset, looked for in this order:

    1. `explicit` (--data-root, the explorer's box): the dataset's folder, or a folder that holds it;
    2. $LATENT_EXPLORER_<NAME>_ROOT, the dataset's folder;
    3. $LATENT_EXPLORER_DATA_ROOT/<folder recorded>;
    4. the absolute path an older bundle recorded, if it still exists.

    None for toyfaces (generated), and for fashion-mnist when none of these has it but one of its usual install
    places exists (Debian's package: a system location, not a path of the machine that trained). Otherwise a
    LatentExplorerError: `ask` (how to give a path here) and the two variables.
    """
    name = str(source.get("name") or "?")
    if name in PROCEDURAL_DATASETS:
        return None
    folder = recorded_folder(source)
    if explicit is not None and str(explicit).strip():
        given = Path(str(explicit).strip()).expanduser()
        inside = given / folder
        # A path that holds no dataset is the loader's to explain: it says what the folder should contain.
        return inside if _is_dir(inside) else given
    variable = data_root_variable(name)
    if os.environ.get(variable, "").strip():
        path = Path(os.environ[variable].strip()).expanduser()
        if not _is_dir(path):
            raise LatentExplorerError(f"{variable} is {path}, which is not a folder; set it to your {folder} folder")
        return path
    data_root = os.environ.get(DATA_ROOT_VARIABLE, "").strip()
    if data_root and _is_dir(Path(data_root).expanduser() / folder):
        return Path(data_root).expanduser() / folder
    old = _recorded_root(source)
    if old and _is_dir(Path(old)):
        return Path(old)
    if name in FINDS_ITS_OWN_FILES:
        from training.data.fashion_mnist import DEFAULT_ROOTS

        if any(_is_dir(place) for place in DEFAULT_ROOTS):
            return None  # the loader searches its install places itself, as it always did
    looked = f" ({DATA_ROOT_VARIABLE} is {data_root}, which has no {folder} folder)" if data_root else ""
    package = " (or install Debian's dataset-fashion-mnist package)" if name in FINDS_ITS_OWN_FILES else ""
    raise LatentExplorerError(ask.format(name=name, folder=folder)
                              + f", or set {variable} to that folder, or {DATA_ROOT_VARIABLE} to the folder that "
                                f"holds it{looked}{package}")


def load_arguments(source: dict, explicit: str | os.PathLike | None = None, ask: str = CLI_ASK) -> dict:
    """load_dataset() keyword arguments that rebuild a recorded real dataset from this machine's copy of it
    (find_dataset_folder says where); a record without load_args gives just the name and the folder."""
    args = dict(portable_source(source).get("load_args") or {})
    args.setdefault("name", source.get("name"))
    folder = find_dataset_folder(source, explicit, ask)
    if folder is not None:
        args["path"] = str(folder)
        if args.get("labels"):  # the folder dataset's labels file, recorded relative to its folder
            args["labels"] = str(folder / args["labels"])
    return args


def recorded_bundle_path(path: str | Path, repo: Path) -> str:
    """How metrics.json names a bundle: relative to the repository, else by its last two folders
    (checkpoints/<dataset>/<model> reads as <dataset>/<model>), never by a path of this machine."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(repo.resolve()))
    except (ValueError, OSError):
        return "/".join(path.parts[-2:]) if len(path.parts) >= 2 else path.name


def portable_record(data: object, repo: Path) -> object:
    """A config.json or metrics.json as it should be shipped: every dataset source portable, every bundle path
    (metrics' "bundle" and "feature_network") relative. Used to rewrite bundles written before this rule."""
    if isinstance(data, list):
        return [portable_record(v, repo) for v in data]
    if not isinstance(data, dict):
        return data
    if isinstance(data.get("name"), str) and ("load_args" in data or "root" in data or "folder" in data):
        return portable_source(data)
    out = {k: portable_record(v, repo) for k, v in data.items()}
    if isinstance(out.get("path"), str) and is_absolute(out["path"]):
        out["path"] = recorded_bundle_path(out["path"], repo)
    return out
