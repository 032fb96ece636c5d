"""The UI's access to bundles: discovered once, loaded once per process and shared by every session."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from training.checkpoint import Bundle, find_bundles, load_bundle, read_config
from training.errors import LatentExplorerError

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS = Path(os.environ.get("LATENT_EXPLORER_CHECKPOINTS", REPO_ROOT / "checkpoints"))
SELECTED_KEY = "bundle_path"


@st.cache_resource(show_spinner="Loading model…")
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


def available() -> dict[str, str]:
    """Display name -> folder, for every readable bundle under checkpoints/."""
    names = {}
    for path in find_bundles(CHECKPOINTS):
        try:
            config = read_config(path)
        except LatentExplorerError:
            continue
        names[config.get("name") or str(path.relative_to(CHECKPOINTS))] = str(path)
    return names


def sidebar_picker(families: tuple[str, ...] | None = None) -> Bundle | None:
    """The bundle select box in the sidebar; shows a clear message and returns None when nothing fits."""
    options = available()
    if families is not None:
        options = {k: v for k, v in options.items() if read_config(v)["family"] in families}
    if not options:
        st.error(f"No model bundles found under `{CHECKPOINTS}`. Train one with "
                 "`python -m training train --out checkpoints/<dataset>/<model>`.")
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
