"""Page: replay a training run: fixed-noise snapshots by step, the loss curves read as a game, real vs generated."""

import numpy as np
import pandas as pd
import streamlit as st

from explorer.core import bundles, torch_worker
from explorer.core.downloads import file_stem, picture_downloads
from explorer.core.page import preamble
from explorer.core.widgets import data_root_setting
from explorer.logic import links
from explorer.logic.figures import MAX_CURVES, grid_jpeg, loss_figure, upscale
from explorer.logic.real_images import real_images
from explorer.logic.replay import (
    EQUILIBRIUM_LOSS_D,
    EQUILIBRIUM_LOSS_G,
    PROBABILITY_KEYS,
    SERIES_LABELS,
    HistoryCurves,
    LossStory,
    VAEStory,
    differing_options,
    experiment_table,
    explain_losses,
    explain_vae_losses,
    loss_story,
    run_status,
    vae_story,
)
from training.errors import LatentExplorerError
from training.latent import sampling
from training.untrusted.checks import read_image_rgb

COMPARE_SAMPLES = 16
DEFAULTS = {"replay_smooth": True, "replay_window": 50, "replay_seed": 0}
# A step the model has no snapshot of is replaced by the page (and the link's visitor told).
LINKED = [links.whole("replay_step", 0, 10**12, name="step"), links.flag("replay_smooth", name="smooth"),
          links.whole("replay_window", 2, 500, name="window"), links.seed("replay_seed", name="seed")]


@st.cache_data(max_entries=8, show_spinner="Drawing real images…")
def cached_real_images(dataset: dict, n: int, local_path: str):
    return real_images(dataset, n, local_path or None)


@st.cache_data(max_entries=32)
def snapshot_array(path: str, mtime: float) -> np.ndarray:
    return read_image_rgb(path, "snapshot grid")


# A history can hold millions of steps (the reader accepts 32 MB): its arrays and its story are made once per
# version of the bundle (the key the bundle itself is cached on) and shared by every session; the chart gets a few
# thousand points per curve, made once per smoothing window.
@st.cache_resource(max_entries=4, show_spinner="Reading the training history…")
def history_curves(bundle_key: tuple, _history: dict) -> HistoryCurves:
    return HistoryCurves.of(_history)


@st.cache_resource(max_entries=4, show_spinner=False)
def history_story(bundle_key: tuple, _history: dict) -> LossStory | VAEStory | None:
    return loss_story(_history) or vae_story(_history)


@st.cache_data(max_entries=32, show_spinner=False)
def drawn_curves(bundle_key: tuple, window: int, _curves: HistoryCurves) -> dict:
    return _curves.drawn(window, first=MAX_CURVES)


def smoothing_window() -> int:
    """The loss section's smoothing (1: none); the numbers at a snapshot, drawn above its controls, use it too."""
    return int(st.session_state["replay_window"]) if st.session_state["replay_smooth"] else 1


bundle = preamble("Training replay",
                  "Watch a GAN learn from the same fixed noise at every step, and see why its losses do not fall "
                  "like a classifier's: they score a two-player game in which both players keep getting better.",
                  "replay", DEFAULTS, caption=None, linked=LINKED)
history, snapshots = bundle.history, bundle.snapshot_paths()
bundle_key = bundles.key_of(bundle)
version = (bundle_key.path, bundle_key.mtime)  # what the bundle is cached on: a retrained bundle is a new version
curves = history_curves(version, history)
imported = "imported_from" in bundle.config or bundle.config["dataset"].get("name") == "imported"
status = run_status(bundle.config)
if status.startswith("stopped"):
    st.warning(f"This run {status}: it diverged, its discriminator won completely, it was interrupted, or it is "
               "still training. What you see is the last good bundle it wrote.")
if not history and not snapshots:
    st.info(f"**{bundle.name}** comes without a training record (no history.json, no snapshots)"
            + (": it was imported from a state dict, which holds only the final weights." if imported else ".")
            + " The real-vs-generated panel below still works; the replay needs a model trained here.")

# --- snapshots -----------------------------------------------------------------------------------------------
st.header("Fixed-noise snapshots")
viewed_step = None
if snapshots:
    steps = list(snapshots)
    if st.session_state.get("replay_step") not in steps:
        st.session_state["replay_step"] = steps[-1]
    viewed_step = st.select_slider("training step", options=steps, key="replay_step")
    picture, numbers = st.columns([3, 2])
    png = snapshots[viewed_step]
    try:
        grid = snapshot_array(str(png), png.stat().st_mtime)
        picture.image(upscale(grid, 2), width="stretch", caption=f"the same fixed codes after {viewed_step} steps")
        with picture:
            # The snapshot as saved, and the whole recorded history (the chart draws a few thousand points).
            picture_downloads(lambda scale: upscale(grid, scale),
                              file_stem(bundle.path.parent.name, bundle.path.name, "snapshot", f"step{viewed_step}"),
                              "replay_download",
                              numbers=lambda: {"step": curves.steps.astype(int).tolist(),
                                               **{key: values.tolist() for key, values in curves.curves.items()}})
    except (OSError, LatentExplorerError) as exc:
        picture.warning(f"Cannot show the snapshot of step {viewed_step}: {exc}. Pick another step.")
    with numbers:
        st.subheader(f"At step {viewed_step}")
        window = smoothing_window()
        shown = False
        for key in list(curves.curves)[:6]:
            label = SERIES_LABELS.get(key, key)
            value = curves.value_at(key, viewed_step, window)
            if value is not None:
                st.metric(label, f"{value:.3f}")
                shown = True
        if not shown:
            st.caption("Step 0 is the untrained generator: its random weights draw no faces yet, only near-flat grey "
                       "tiles (or faint noise), and no losses exist yet."
                       if viewed_step == 0 else "No losses recorded for this step.")
        elif window > 1:
            st.caption(f"Losses averaged over the {window} steps up to this one.")
else:
    st.info("This model has no fixed-noise snapshots (they are written by `python -m training train`).")

# --- losses --------------------------------------------------------------------------------------------------
st.header("Loss curves")
if curves.curves:
    c1, c2 = st.columns([1, 3])
    smoothed = c1.checkbox("smooth the curves", key="replay_smooth")
    steps_window = c2.slider("smoothing window (steps)", 2, 500, step=1, key="replay_window", disabled=not smoothed)
    window = int(steps_window) if smoothed else 1
    st.plotly_chart(loss_figure(drawn_curves(version, window, curves), SERIES_LABELS, marker_step=viewed_step,
                                equilibrium={"loss_d": EQUILIBRIUM_LOSS_D, "loss_g": EQUILIBRIUM_LOSS_G,
                                             "d_real": 0.5}, probability_keys=PROBABILITY_KEYS),
                    key="replay_losses")
    if len(curves.curves) > MAX_CURVES:
        st.caption(f"The chart draws the first {MAX_CURVES} of the {len(curves.curves)} curves in this history.")
    story = history_story(version, history)
    if isinstance(story, LossStory):
        pct = f"{story.fraction:.0%}"
        m1, m2, m3, m4 = st.columns(4)
        m1.metric(f"G loss, first {pct}", f"{story.g_first.mean:.2f} ± {story.g_first.std:.2f}")
        m2.metric(f"G loss, last {pct}", f"{story.g_last.mean:.2f} ± {story.g_last.std:.2f}")
        m3.metric(f"D(x) last {pct}", f"{story.real_last.mean:.2f}",
                  delta=f"{story.real_last.mean - story.real_first.mean:+.2f} since the start", delta_color="off")
        m4.metric(f"D(G(z)) last {pct}", f"{story.fake_last.mean:.2f}",
                  delta=f"{story.fake_last.mean - story.fake_first.mean:+.2f} since the start", delta_color="off")
        st.info(explain_losses(story))
    elif isinstance(story, VAEStory):
        st.info(explain_vae_losses(story))
    else:
        st.info("Too few history rows to compare the start and the end of training.")
else:
    st.info("No loss history for this model" + (" (imported generators bring only their weights)." if imported
                                                 else "."))

# --- real vs generated ---------------------------------------------------------------------------------------
st.header("Real vs generated")
dataset = bundle.config["dataset"]
seed = st.columns(2)[0].number_input("seed of the generated samples", min_value=0, max_value=2**31 - 1, step=1,
                                    key="replay_seed")
data_root = data_root_setting(dataset.get("name"))
real_col, fake_col = st.columns(2)
with real_col:
    st.subheader(f"Real: {dataset.get('name')}")
    try:
        real = cached_real_images(dataset, COMPARE_SAMPLES, data_root or "")
        st.image(grid_jpeg(real, nrow=4), output_format="JPEG", width="stretch")
        st.caption(f"The first {len(real)} training images.")
    except LatentExplorerError as exc:
        st.info(f"No real images: {exc}.")
with fake_col:
    st.subheader(f"Generated: z ~ {bundle.prior.label}")
    generated = torch_worker.run(sampling.sample, bundle, bundle.prior, COMPARE_SAMPLES, int(seed))
    st.image(grid_jpeg(generated.images, nrow=4), output_format="JPEG", width="stretch")
    takes_more = bundle.capabilities.conditional or bundle.capabilities.info_codes
    extra = " Conditions and codes take their default values, a balanced cycle through all of them." if takes_more \
        else ""
    st.caption(f"{COMPARE_SAMPLES} samples from the final weights (step {bundle.config.get('step', '?')}).{extra}")

# --- experiment table ----------------------------------------------------------------------------------------
st.header(f"Experiments on {dataset.get('name')}")
rows = experiment_table(bundles.same_dataset(bundle))
if rows:
    st.dataframe(pd.DataFrame(rows).astype(str), hide_index=True, key="replay_experiments")
    changed = differing_options(rows)
    if len(rows) == 1:
        st.caption("Only one model of this dataset so far. Train variants into checkpoints/<dataset>/ (e.g. "
                   "`--lr 5e-5`, `--latent-dim 200`, `--g-activation leaky_relu`) to compare them here.")
    elif changed:
        st.caption("What differs between these runs: " + ", ".join(changed) + ".")
    st.caption('Scores come from each bundle\'s metrics.json ("not evaluated" where there is none).')
