"""The UI's access to bundles: discovered once, loaded once per process and shared by every session."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from training.checkpoint import Bundle, find_bundles, load_bundle, read_config
from training.errors import LatentExplorerError
from training.models import registry

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS = Path(os.environ.get("LATENT_EXPLORER_CHECKPOINTS", REPO_ROOT / "checkpoints"))
SELECTED_KEY = "bundle_path"
# Bundles this browser session imported (display name -> folder): only this session sees them.
SESSION_KEY = "session_bundles"
# The families whose generator takes a code z alone; a conditional generator also needs its condition.
UNCONDITIONAL_FAMILIES = ("dcgan", "vae")


# Bounded: every upload adds a model, and a classroom uploads many.
@st.cache_resource(show_spinner="Loading model…", max_entries=32)
def _load_cached(path: str, mtime: float) -> Bundle:
    # mtime is part of the key so a retrained bundle is picked up without restarting the server.
    return load_bundle(path)


def load(path: str | Path) -> Bundle:
    config = Path(path) / "config.json"
    try:
        mtime = config.stat().st_mtime
    except OSError:
        raise LatentExplorerError(f"{path}: the bundle is gone (deleted or moved while the app was running)") from None
    return _load_cached(str(path), mtime)


def _family(path: str) -> str | None:
    try:
        return read_config(path)["family"]
    except LatentExplorerError:
        return None


def shipped() -> dict[str, str]:
    """Display name -> folder, for every readable bundle under checkpoints/."""
    names = {}
    for path in find_bundles(CHECKPOINTS):
        try:
            config = read_config(path)
        except LatentExplorerError:
            continue
        names[config.get("name") or str(path.relative_to(CHECKPOINTS))] = str(path)
    return names


def session_bundles() -> dict[str, str]:
    """The bundles this session imported that still exist on disk."""
    try:
        extra = st.session_state.get(SESSION_KEY, {})
    except Exception:  # no Streamlit session (plain Python): nothing was imported
        return {}
    return {name: path for name, path in extra.items() if (Path(path) / "config.json").exists()}


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


def available() -> dict[str, str]:
    """Display name -> folder: the shipped bundles, then the ones this session imported."""
    return {**shipped(), **session_bundles()}


def same_dataset(bundle: Bundle) -> list[str]:
    """Folders of every available model (generators only) trained on the selected bundle's dataset, itself
    included."""
    dataset = bundle.config["dataset"].get("name")
    found = []
    for path in available().values():
        try:
            config = read_config(path)
            if config["dataset"].get("name") == dataset and config["family"] in registry.GENERATOR_NAME:
                found.append(path)
        except LatentExplorerError:
            continue
    return found


def unconditional_problem(bundle: Bundle) -> str | None:
    """Why a page that feeds codes z alone cannot drive this bundle's generator, or None when it can."""
    if bundle.family not in registry.GENERATOR_NAME:
        return (f"**{bundle.name}** is a {bundle.family} bundle, not a generator, so this page does not apply to "
                "it. Pick a DCGAN or a VAE in the sidebar.")
    if bundle.family not in UNCONDITIONAL_FAMILIES or int(bundle.config["model"].get("condition_dim", 0) or 0) > 0:
        return (f"**{bundle.name}** is a {bundle.family} model: its generator also takes a condition or extra "
                "codes, and this page varies z alone, so it does not apply here. Pick an unconditional model (a "
                "DCGAN or a VAE) in the sidebar.")
    return None


def sidebar_picker(families: tuple[str, ...] | None = None) -> Bundle | None:
    """The bundle select box in the sidebar; shows a clear message and returns None when nothing fits."""
    # Bundles without a generator (the evaluation feature networks) are never offered as a model.
    options = {k: v for k, v in available().items() if _family(v) in registry.GENERATOR_NAME}
    if families is not None:
        options = {k: v for k, v in options.items() if read_config(v)["family"] in families}
    if not options:
        st.error(f"No model bundles found under `{CHECKPOINTS}`. Train one with "
                 "`python -m training train --out checkpoints/<dataset>/<model>`, or import your own generator "
                 "on the *Bring your own generator* page.")
        return None
    names = list(options)
    current = st.session_state.get(SELECTED_KEY)
    index = next((i for i, n in enumerate(names) if options[n] == current), 0)
    name = st.sidebar.selectbox("Model", names, index=index, key="bundle_select")
    st.session_state[SELECTED_KEY] = options[name]
    try:
        return load(options[name])
    except LatentExplorerError as exc:
        st.error(f"Cannot open this model: {exc}")
        return None
