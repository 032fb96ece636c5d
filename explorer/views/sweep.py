"""Page: shift the same base noise from N(-10, std) to N(+10, std), one row per mean, and see where variety dies."""

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from explorer.core import torch_worker
from explorer.core.downloads import file_stem, picture_downloads
from explorer.core.page import preamble
from explorer.logic import links
from explorer.logic.diagnostics import nonfinite_count
from explorer.logic.diversity import COLLAPSED_AT_MOST
from explorer.logic.figures import crossed_out_note, labelled_rows, sweep_figure
from explorer.logic.sweep import VARIED_RATIO, explain_sweep, headline, mean_sweep, summarise, sweep_means, sweep_table
from training.bundle import Bundle
from training.errors import LatentExplorerError

DIAGNOSTIC_SAMPLES = 32  # the numbers use this many codes per mean; the rows show the first few
MAX_SHOWN = 12
DEFAULTS = {"sweep_range": (-10.0, 10.0), "sweep_step": 2.0, "sweep_std": 1.0, "sweep_shown": 8, "sweep_seed": 0}
STEPS = [0.5, 1.0, 2.0, 2.5, 5.0]
LINKED = [links.span("sweep_range", -20.0, 20.0, 0.5, name="range"), links.choice("sweep_step", STEPS, name="step"),
          links.number("sweep_std", 0.1, 3.0, 0.1, name="std"), links.whole("sweep_shown", 2, MAX_SHOWN, name="shown"),
          links.seed("sweep_seed", name="seed")]


@dataclass(frozen=True)
class SweepControls:
    low: float
    high: float
    step: float
    std: float
    shown: int  # samples shown per row
    seed: int


def controls() -> SweepControls:
    with st.container(border=True):
        left, right = st.columns(2)
        low, high = left.slider("range of means", -20.0, 20.0, step=0.5, key="sweep_range")
        step = left.select_slider("step between rows", options=STEPS, key="sweep_step")
        std = right.slider("std of every row", 0.1, 3.0, step=0.1, key="sweep_std")
        shown = right.slider("samples shown per row", 2, MAX_SHOWN, step=1, key="sweep_shown")
        seed = right.number_input("seed (the shared base noise)", min_value=0, max_value=2**31 - 1, step=1,
                                  key="sweep_seed")
    return SweepControls(low, high, float(step), float(std), int(shown), int(seed))


def shared_sweep(bundle: Bundle, means: tuple[float, ...], std: float, seed: int):
    """Computed once for every session that asks the same sweep of the same model."""
    with st.spinner("Generating the sweep…"):
        return torch_worker.shared(mean_sweep, bundle, list(means), std=std, n=DIAGNOSTIC_SAMPLES, seed=seed,
                                   keep=MAX_SHOWN)


bundle = preamble("Mean sweep: where do samples stop being varied?",
                  "Every row uses the same base noise, shifted to z ~ N(m, std): as the mean m moves away from the "
                  "training prior, the codes all turn the same way, grow long, and the pictures lose their variety.",
                  "sweep", DEFAULTS, linked=LINKED)
chosen = controls()
try:
    means = sweep_means(chosen.low, chosen.high, chosen.step)
except LatentExplorerError as exc:
    st.error(f"{exc}. Adjust the sliders to continue.")
    st.stop()

sweep = shared_sweep(bundle, tuple(means), chosen.std, chosen.seed)
summary = summarise(sweep)
prior = bundle.prior.label

pictures, plots = st.columns([3, 2])
with pictures:
    st.subheader(f"{len(means)} rows: z ~ N(m, {chosen.std:g}), same base noise")
    rows = [r.images[:chosen.shown] for r in sweep.rows]
    broken, total = sum(nonfinite_count(images) for images in rows), sum(len(images) for images in rows)
    note = crossed_out_note(broken, total, "samples shown")
    if broken == total:
        st.warning(note)
    else:
        labels = [f"m = {r.mean:g}" for r in sweep.rows]
        st.image(labelled_rows(labels, rows), width="stretch", caption=note)
        picture_downloads(lambda scale: labelled_rows(labels, rows, scale=scale),
                          file_stem(bundle.path.parent.name, bundle.path.name, "sweep", f"N(m,{chosen.std:g})",
                                    f"m{means[0]:g}..{means[-1]:g}", f"seed{chosen.seed}"), "sweep_download",
                          numbers=lambda: sweep_table(sweep))
with plots:
    st.subheader("The diagnostics against the mean")
    varied = (summary.varied_low, summary.varied_high) if summary.varied_low is not None else None
    st.plotly_chart(sweep_figure(sweep.means, {k: sweep.column(k) for k in
                                               ("diversity_ratio", "cosine", "saturated", "first_layer_shift",
                                                "norm_zscore")}, varied, prior), key="sweep_plot")
    st.caption(f"Green band: images at least {VARIED_RATIO:.0%} as varied as {prior} samples. "
               f"Numbers use {DIAGNOSTIC_SAMPLES} codes per mean.")

st.subheader("Where the variety ends")
top = headline(sweep)
a, b, c = st.columns(3)
a.metric("means with varied samples", top.varied)
b.metric("collapse starts at mean", top.collapse)
# A share of the prior's diversity, not a change: no arrow, which would read as a gain.
c.metric("least varied row", top.worst, delta=top.worst_delta, delta_color="off", delta_arrow="off")
{"error": st.error, "warning": st.warning, "success": st.success}[top.tone](explain_sweep(sweep))
st.dataframe(pd.DataFrame(sweep_table(sweep)), hide_index=True, key="sweep_table")
with st.expander("How to read the sweep"):
    st.markdown(
        f"""
* Each row adds the same number m to every coordinate of the same {bundle.latent_dim}-dimensional base noise.
  That shared offset is a vector m·(1, …, 1) of length |m|·√{bundle.latent_dim}: it soon dominates the random
  part, so every code points almost the same way (cosine near 1) and is far longer than anything in training.
* **Diversity** is how far apart the generated images are as the dataset's feature network sees them, counting
  only distance beyond a third of the typical distance between two {prior} samples (closer pairs are the same
  picture to a person), relative to {prior} samples from the same base noise. Below {VARIED_RATIO:.0%} the
  samples look alike; at {COLLAPSED_AT_MOST:.0%} or less they are nearly one image and the verdict column says
  "collapsed". Without a feature network for the dataset it is measured in pooled pixels, which overstate how
  varied saturated images are.
* **Saturated pixels** are outputs pinned at black or white by tanh; **first-layer shift** measures how far the
  first BatchNorm's inputs sit from what it saw in training (in its running standard deviations).
* The sweep is not symmetric: a positive offset and a negative one push the first layer in opposite directions,
  so the model can fail differently on each side.
"""
    )
