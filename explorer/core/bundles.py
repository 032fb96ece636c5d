"""The UI's access to bundles: discovered once, loaded once per process and shared by every session."""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from streamlit.logger import get_logger

from explorer.core import inference, shared_cache
from training.bundle import CONFIG_FILE, METRICS_FILE, Bundle, config_problems, find_bundles, load_bundle
from training.bundle import paths as bundle_paths
from training.bundle import read_config as read_config_file
from training.errors import LatentExplorerError
from training.models import registry

REPO_ROOT = bundle_paths.REPO_ROOT
CHECKPOINTS = bundle_paths.checkpoints_root()
# The model a teacher sees first: the DCGAN lab's own model (the PyTorch tutorial's DCGAN on CelebA faces), where
# the N(-10,1) / U(0,1) story is told; the procedural-faces DCGAN when a checkpoints folder lacks it.
DEFAULT_BUNDLES = (CHECKPOINTS / "celeba" / "dcgan", CHECKPOINTS / "toyfaces" / "dcgan")


def has_config(path: str | Path) -> bool:
    """Whether the folder holds a config.json this process can see; a folder it may not enter (mode 644) holds
    none, instead of Path.is_file() raising PermissionError through every page."""
    try:
        return (Path(path) / CONFIG_FILE).is_file()
    except OSError:
        return False


DEFAULT_BUNDLE = next((b for b in DEFAULT_BUNDLES if has_config(b)), DEFAULT_BUNDLES[-1])
SELECTED_KEY = "bundle_path"
# Bundles this browser session imported (display name -> folder): only this session sees them.
SESSION_KEY = "session_bundles"
LOAD_LOG_LINE = "loaded model bundle"
_LOG = get_logger(__name__)


# Bounded: every upload adds a model, and a classroom uploads many.
@st.cache_resource(show_spinner="Loading model…", max_entries=32)
def _load_cached(path: str, mtime: float) -> Bundle:
    # mtime is part of the key so a retrained bundle is picked up without restarting the server.
    bundle = inference.prepare(load_bundle(path))  # the device, channels-last and the generator's precision
    # One line per load in the server log: the load test counts them to show models are shared across sessions.
    _LOG.info("%s %s", LOAD_LOG_LINE, path)
    return bundle


@functools.lru_cache(maxsize=256)
def _config_at(path: str, mtime_ns: int, size: int) -> dict | LatentExplorerError:
    try:
        return read_config_file(path)
    except LatentExplorerError as exc:
        return exc
    except (OSError, ValueError, TypeError, KeyError, RecursionError, OverflowError, MemoryError) as exc:
        # The reader turns every problem it knows into LatentExplorerError; anything else it missed must still
        # cost only this bundle, never the sidebar of every page.
        return LatentExplorerError(f"{path}: unreadable bundle ({type(exc).__name__}: {str(exc)[:160]})")


def read_config(path: str | Path) -> dict:
    """A bundle's config.json, parsed once per version of the file: the sidebar asks for every bundle's config on
    every rerun, and re-reading them all cost more than drawing the page. Treat the result as read-only."""
    try:
        stat = (Path(path) / CONFIG_FILE).stat()
    except OSError:
        return read_config_file(path)  # gone: let the reader say so in its own words
    found = _config_at(str(path), stat.st_mtime_ns, stat.st_size)
    if isinstance(found, LatentExplorerError):
        raise LatentExplorerError(str(found))
    return found


def _mtime(path: str | Path) -> float:
    try:
        version = (Path(path) / CONFIG_FILE).stat().st_mtime
    except OSError:
        raise LatentExplorerError(f"{path}: the bundle is gone (deleted or moved while the app was running)") from None
    # New figures (metrics.json rewritten: an imported generator scored on the upload page) make a new version too:
    # the pages read a model's figures from its loaded bundle.
    with contextlib.suppress(OSError):
        version = max(version, (Path(path) / METRICS_FILE).stat().st_mtime)
    return version


def load(path: str | Path) -> Bundle:
    return _load_cached(str(path), _mtime(path))


@dataclass(frozen=True)
class BundleKey:
    """A bundle as a cached function's argument: its folder and the version of its config (a retrained bundle
    gets a new key)."""

    path: str
    mtime: float

    def load(self) -> Bundle:
        return load(self.path)


shared_cache.FOLDER_BACKED.add(BundleKey)


def key_of(bundle: Bundle | str | Path) -> BundleKey:
    path = bundle.path if isinstance(bundle, Bundle) else Path(bundle)
    return BundleKey(str(path), _mtime(path))


def featurenet_bundle(bundle: Bundle) -> Bundle | None:
    """The feature network of the bundle's dataset (checkpoints/<dataset>/featurenet), loaded once per process;
    None when there is none. An unreadable one raises LatentExplorerError."""
    path = bundle_paths.featurenet_path(str(bundle.config["dataset"].get("name") or ""), CHECKPOINTS)
    if not has_config(path):
        return None
    found = load(path)
    return None if found.capabilities.generates else found


# The bundle folders under a root, listed again when the root or one of its folders changes, and at least every
# LISTING_SECONDS: every rerun of every page asks (the sidebar), and walking 34 folders twice per rerun cost a
# third of the server's time when 30 sessions clicked the same preset (py-spy). A deleted bundle drops out at
# once (its config is read, and checked, on each use).
LISTING_SECONDS = 2.0
_LISTINGS: dict[str, tuple[float, tuple, list[Path]]] = {}


def _folder_versions(root: Path) -> tuple:
    try:
        with os.scandir(root) as entries:
            return tuple(sorted((e.name, e.stat().st_mtime_ns) for e in entries if e.is_dir()))
    except OSError:
        return ()


def listed_bundles(root: str | Path) -> list[Path]:
    """find_bundles(root), remembered while the root's folders are unchanged (LISTING_SECONDS at most)."""
    root = Path(root)
    versions = _folder_versions(root)
    now = time.monotonic()
    found = _LISTINGS.get(str(root))
    if found is None or found[1] != versions or now - found[0] > LISTING_SECONDS:
        found = (now, versions, find_bundles(root))
        _LISTINGS[str(root)] = found
    return list(found[2])


def capabilities_at(path: str | Path) -> registry.Capabilities | None:
    """What the bundle in this folder can do (from its config alone), or None when its config cannot be read."""
    try:
        return registry.capabilities(read_config(path)["family"])
    except LatentExplorerError:
        return None


def _generates(path: str | Path) -> bool:
    found = capabilities_at(path)
    return found is not None and found.generates


def shipped() -> dict[str, str]:
    """Display name -> folder, for every readable bundle under checkpoints/."""
    found = []
    for path in listed_bundles(CHECKPOINTS):
        try:
            config = read_config(path)
        except LatentExplorerError:
            continue
        found.append((config.get("name") or str(path.relative_to(CHECKPOINTS)), path))
    counts = Counter(name for name, _ in found)
    # Two bundles with one display name (a copied folder) must both stay selectable: name the folder too.
    return {(name if counts[name] == 1 else f"{name} ({path.relative_to(CHECKPOINTS)})"): str(path)
            for name, path in found}


def unreadable() -> dict[str, str]:
    """Folder -> problem for every bundle under checkpoints/ whose config.json cannot be read (it is not offered)."""
    return config_problems(listed_bundles(CHECKPOINTS))


def session_bundles() -> dict[str, str]:
    """The bundles this session imported that still exist on disk."""
    try:
        extra = st.session_state.get(SESSION_KEY, {})
    except Exception:  # no Streamlit session (plain Python): nothing was imported
        return {}
    return {name: path for name, path in extra.items() if has_config(path)}


def imported_of(dataset: str) -> dict[str, str]:
    """Display name -> folder of the generators this session imported and marked as trained on `dataset`."""
    found = {}
    for name, path in session_bundles().items():
        with contextlib.suppress(LatentExplorerError):
            config = read_config(path)
            if "imported_from" in config and config["dataset"].get("name") == dataset and _generates(path):
                found[name] = path
    return found


def add_session_bundle(name: str, path: str | Path, select: bool = True) -> str:
    """Make an imported bundle selectable on every page of this session; returns the (unique) display name."""
    extra = dict(st.session_state.get(SESSION_KEY, {}))
    taken = set(shipped()) | set(extra)
    unique, k = name, 2
    while unique in taken:
        unique, k = f"{name} ({k})", k + 1
    extra[unique] = str(path)
    st.session_state[SESSION_KEY] = extra
    if select:
        st.session_state[SELECTED_KEY] = str(path)
    return unique


def live_runs() -> dict[str, str]:
    """Display name -> folder for the bundles the Train live page saved into a runs folder (every session sees
    them; a run kept only for its tab is a session bundle)."""
    from training.live.manager import runs_folders

    found = {}
    for folder in runs_folders():
        for path in listed_bundles(folder):
            with contextlib.suppress(LatentExplorerError):
                name = read_config(path).get("name") or path.name
                # Two runs with one name (saved in the same second) must both stay selectable: name the folder too.
                found[name if name not in found else f"{name} ({path.name})"] = str(path)
    return found


def available() -> dict[str, str]:
    """Display name -> folder: the shipped bundles, the saved live runs, then the ones this session imported."""
    return {**shipped(), **live_runs(), **session_bundles()}


def same_dataset(bundle: Bundle) -> list[str]:
    """Folders of every available model (generators only) trained on the selected bundle's dataset, itself
    included."""
    dataset = bundle.config["dataset"].get("name")
    found = []
    for path in available().values():
        try:
            if read_config(path)["dataset"].get("name") == dataset and _generates(path):
                found.append(path)
        except LatentExplorerError:
            continue
    return found


def applicable(page: str) -> dict[str, str]:
    """Display name -> folder of every available model that the page applies to (its capabilities list it)."""
    return {name: path for name, path in available().items()
            if (found := capabilities_at(path)) is not None and page in found.pages}


def sidebar_picker() -> Bundle | None:
    """The bundle select box in the sidebar; shows a clear message and returns None when nothing fits."""
    # Bundles without a generator (the evaluation feature networks) are never offered as a model.
    options = {k: v for k, v in available().items() if _generates(v)}
    broken = unreadable()
    if broken:
        with st.sidebar.expander(f"⚠️ {len(broken)} unreadable bundle{'s' if len(broken) > 1 else ''} not listed"):
            for problem in broken.values():
                st.caption(problem)
    if not options:
        st.error(f"No model bundles found under `{CHECKPOINTS}`. Train one with "
                 "`python -m training train --out checkpoints/<dataset>/<model>`, or import your own generator "
                 "on the *Bring your own generator* page."
                 + (f" ({len(broken)} bundle folder(s) there could not be read; the sidebar says why.)" if broken
                    else ""))
        return None
    names = list(options)
    current = st.session_state.get(SELECTED_KEY)
    index = next((i for i, n in enumerate(names) if options[n] == current), None)
    if current is None:
        index = next((i for i, n in enumerate(names) if Path(options[n]) == DEFAULT_BUNDLE), None)
    if index is None and current is not None and not has_config(current):
        # The model on screen was deleted or moved while the app ran: say so instead of silently switching.
        st.warning(f"The model you had open (`{current}`) is gone: it was deleted or moved while the app was "
                   f"running. Showing **{names[0]}** instead; pick another in the sidebar.")
    index = index or 0
    name = st.sidebar.selectbox("Model", names, index=index, key="bundle_select")
    st.session_state[SELECTED_KEY] = options[name]
    try:
        bundle = load(options[name])
    except LatentExplorerError as exc:
        st.error(f"Cannot open this model: {exc}")
        return None
    problem = bundle.snapshot_problem()
    if problem:  # the rest of the bundle works: say what was left out, once, where the model is chosen
        st.sidebar.warning(problem)
    return bundle
