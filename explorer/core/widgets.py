"""Controls more than one page shows: the latent distribution picker (presets, normal/uniform sliders, batch size
and seed; each page gives its own key prefix, so its settings live apart from the other pages'), and the sidebar
box for the folder of the user's datasets (one setting shared by every page that shows real images). Each control
returns what was chosen."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from explorer.logic import links
from explorer.logic.real_images import DATA_ROOT_LABEL, remembered_data_root
from training.data.location import DATA_ROOT_VARIABLE, PROCEDURAL_DATASETS
from training.errors import LatentExplorerError
from training.latent.priors import PRESETS, LatentDistribution

DATA_ROOT_KEY = "data_root"
# Streamlit forgets a widget's value on a page that does not draw it; the setting is kept here between pages.
DATA_ROOT_KEPT = "data_root_kept"


# The sliders' (min, max, step): the controls draw them, and a link's values are checked against them.
MEAN, STD, BOUND = (-20.0, 20.0, 0.5), (0.0, 5.0, 0.05), (-10.0, 10.0, 0.1)


def distribution_defaults(prefix: str, n: int) -> dict:
    return {f"{prefix}kind": "Normal", f"{prefix}mean": 0.0, f"{prefix}std": 1.0, f"{prefix}low": 0.0,
            f"{prefix}high": 1.0, f"{prefix}n": n, f"{prefix}seed": 0}


def _apply_preset(prefix: str, name: str) -> None:
    dist = PRESETS[name]
    st.session_state[f"{prefix}kind"] = "Normal" if dist.kind == "normal" else "Uniform"
    if dist.kind == "normal":
        st.session_state[f"{prefix}mean"], st.session_state[f"{prefix}std"] = dist.mean, dist.std
    else:
        st.session_state[f"{prefix}low"], st.session_state[f"{prefix}high"] = dist.low, dist.high


def active_preset(prefix: str) -> str | None:
    """The preset the sliders show now (pressed, or reached by moving the sliders), or None."""
    state = st.session_state
    for name, dist in PRESETS.items():
        if dist.kind == "normal" and state.get(f"{prefix}kind") == "Normal":
            if (state.get(f"{prefix}mean"), state.get(f"{prefix}std")) == (dist.mean, dist.std):
                return name
        elif dist.kind == "uniform" and state.get(f"{prefix}kind") == "Uniform":
            if (state.get(f"{prefix}low"), state.get(f"{prefix}high")) == (dist.low, dist.high):
                return name
    return None


@dataclass(frozen=True)
class LatentChoice:
    """What the distribution picker shows: the kind with its two sliders, the batch size and the seed."""

    kind: str  # "Normal" or "Uniform"
    parameters: tuple[float, float]  # (mean, std) of a Normal, (low, high) of a Uniform
    n: int
    seed: int

    @property
    def distribution(self) -> LatentDistribution:
        """Raises LatentExplorerError for an impossible one (std 0, low >= high)."""
        if self.kind == "Normal":
            return LatentDistribution.normal(*self.parameters)
        return LatentDistribution.uniform(*self.parameters)


def distribution_controls(prefix: str, samples_label: str, samples: tuple[int, int, int]) -> LatentChoice:
    """Preset buttons, the Normal/Uniform choice with its two sliders, a batch-size slider (min, max, step) and a
    seed, all keyed `<prefix>kind`, `<prefix>mean`, ... (call distribution_defaults first)."""
    cols = st.columns(len(PRESETS) + 1)
    cols[0].markdown("**Presets**")
    active = active_preset(prefix)  # drawn filled, so the class sees which distribution is on
    for col, name in zip(cols[1:], PRESETS):
        col.button(name, on_click=_apply_preset, args=(prefix, name), use_container_width=True,
                   key=f"{prefix}preset_{name}", type="primary" if name == active else "secondary")
    kind = st.radio("Distribution", ["Normal", "Uniform"], horizontal=True, key=f"{prefix}kind")
    left, right = st.columns(2)
    if kind == "Normal":
        parameters = (left.slider("mean", *MEAN[:2], step=MEAN[2], key=f"{prefix}mean"),
                      right.slider("std", *STD[:2], step=STD[2], key=f"{prefix}std"))
    else:
        parameters = (left.slider("low", *BOUND[:2], step=BOUND[2], key=f"{prefix}low"),
                      right.slider("high", *BOUND[:2], step=BOUND[2], key=f"{prefix}high"))
    low, high, step = samples
    n = left.slider(samples_label, low, high, step=step, key=f"{prefix}n")
    seed = right.number_input("seed", min_value=0, max_value=2**31 - 1, step=1, key=f"{prefix}seed")
    return LatentChoice(kind, (float(parameters[0]), float(parameters[1])), int(n), int(seed))


def distribution_links(prefix: str, samples: tuple[int, int, int]) -> list[links.Field]:
    """The picker's settings as a link carries them (?kind=Normal&mean=-10&seed=7), checked against the same limits
    as the sliders; `samples` as given to distribution_controls."""
    return [links.choice(f"{prefix}kind", ["Normal", "Uniform"], name="kind"),
            links.number(f"{prefix}mean", *MEAN, name="mean"), links.number(f"{prefix}std", *STD, name="std"),
            links.number(f"{prefix}low", *BOUND, name="low"), links.number(f"{prefix}high", *BOUND, name="high"),
            links.whole(f"{prefix}n", *samples, name="n"), links.seed(f"{prefix}seed", name="seed")]


def chosen_distribution(choice: LatentChoice) -> LatentDistribution:
    """The distribution the controls describe; an impossible one (std 0, low >= high) is said on the page and
    stops the run until the sliders change."""
    try:
        return choice.distribution
    except LatentExplorerError as exc:
        st.error(f"{exc}. Adjust the sliders to continue.")
        st.stop()


def data_root_setting(dataset: str | None) -> str | None:
    """The sidebar box for the folder of the user's datasets, drawn for a dataset whose images are not shipped;
    returns what is typed (None when empty), the first place real images are looked for."""
    if dataset in (*PROCEDURAL_DATASETS, "imported", None):
        return None
    state = st.session_state
    # What this visitor typed, else the folder this server last read the dataset from (kept across reloads).
    state[DATA_ROOT_KEY] = state.get(DATA_ROOT_KEPT) or remembered_data_root(dataset) or ""
    typed = st.sidebar.text_input(
        DATA_ROOT_LABEL, key=DATA_ROOT_KEY, on_change=_keep_data_root,
        placeholder="e.g. /data (holding celeba64/, anime64/ ...)",
        help="Real images are not shipped with the app. Give the folder that holds your copies of the datasets, or "
             "one dataset's own folder. Left empty, the app reads $LATENT_EXPLORER_<DATASET>_ROOT, then "
             f"${DATA_ROOT_VARIABLE}/<folder the model records>.")
    return typed.strip() or None


def _keep_data_root() -> None:
    st.session_state[DATA_ROOT_KEPT] = st.session_state[DATA_ROOT_KEY]
