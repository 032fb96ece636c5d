"""Page: shift the same base noise from N(-10, std) to N(+10, std), one row per mean, and see where variety dies."""

import pandas as pd
import streamlit as st

from explorer import bundles
from explorer.diagnostics import nonfinite_count, rounded
from explorer.figures import crossed_out_note, labelled_rows, sweep_figure
from explorer.sweep import VARIED_RATIO, explain_sweep, mean_sweep, summarise, sweep_means
from training.errors import LatentExplorerError

DIAGNOSTIC_SAMPLES = 32  # the numbers use this many codes per mean; the rows show the first few
MAX_SHOWN = 12
DEFAULTS = {"sweep_range": (-10.0, 10.0), "sweep_step": 2.0, "sweep_std": 1.0, "sweep_shown": 8, "sweep_seed": 0}


@st.cache_resource(max_entries=8, show_spinner="Generating the sweep…")
def cached_sweep(path: str, mtime: float, means: tuple[float, ...], std: float, seed: int):
    bundle = bundles.load(path)
    return mean_sweep(bundle.generator, bundle.prior, bundle.latent_dim, list(means), std=std,
                      n=DIAGNOSTIC_SAMPLES, seed=seed, keep=MAX_SHOWN)


for key, value in DEFAULTS.items():
    st.session_state.setdefault(key, value)

st.title("Mean sweep: where do samples stop being varied?")
st.write("Every row uses the same base noise, shifted to z ~ N(m, std): as the mean m moves away from the "
         "training prior, the codes all turn the same way, grow long, and the pictures lose their variety.")

bundle = bundles.unconditional_picker()

with st.container(border=True):
    left, right = st.columns(2)
    left.slider("range of means", -20.0, 20.0, step=0.5, key="sweep_range")
    left.select_slider("step between rows", options=[0.5, 1.0, 2.0, 2.5, 5.0], key="sweep_step")
    right.slider("std of every row", 0.1, 3.0, step=0.1, key="sweep_std")
    right.slider("samples shown per row", 2, MAX_SHOWN, step=1, key="sweep_shown")
    right.number_input("seed (the shared base noise)", min_value=0, max_value=2**31 - 1, step=1, key="sweep_seed")

low, high = st.session_state["sweep_range"]
std, shown, seed = float(st.session_state["sweep_std"]), int(st.session_state["sweep_shown"]), \
    int(st.session_state["sweep_seed"])
try:
    means = sweep_means(low, high, float(st.session_state["sweep_step"]))
except LatentExplorerError as exc:
    st.error(f"{exc}. Adjust the sliders to continue.")
    st.stop()

mtime = (bundle.path / "config.json").stat().st_mtime
sweep = cached_sweep(str(bundle.path), mtime, tuple(means), std, seed)
summary = summarise(sweep)

pictures, plots = st.columns([3, 2])
with pictures:
    st.subheader(f"{len(means)} rows: z ~ N(m, {std:g}), same base noise")
    labels = [f"m = {r.mean:g}" for r in sweep.rows]
    rows = [r.images[:shown] for r in sweep.rows]
    broken, total = sum(nonfinite_count(images) for images in rows), sum(len(images) for images in rows)
    note = crossed_out_note(broken, total, "samples shown")
    if broken == total:
        st.warning(note)
    else:
        st.image(labelled_rows(labels, rows), width="stretch", caption=note)
with plots:
    st.subheader("The diagnostics against the mean")
    varied = (summary.varied_low, summary.varied_high) if summary.varied_low is not None else None
    st.plotly_chart(sweep_figure(sweep.means, {k: sweep.column(k) for k in
                                               ("diversity_ratio", "cosine", "saturated", "first_layer_shift",
                                                "norm_zscore")}, varied, bundle.prior.label), key="sweep_plot")
    st.caption(f"Green band: images at least {VARIED_RATIO:.0%} as varied as {bundle.prior.label} samples. "
               f"Numbers use {DIAGNOSTIC_SAMPLES} codes per mean.")

st.subheader("Where the variety ends")
a, b, c = st.columns(3)
collapse = [f"{m:g}" for m in (summary.collapsed_below, summary.collapsed_above) if m is not None]
if len(sweep.nonfinite_rows) == len(sweep.rows):  # nothing to read: the sentence below says why
    varied_text = collapse_text = worst_text = "n/a"
    worst_delta = None
else:
    if summary.varied_low is None:
        varied_text = "none"
    elif summary.varied_low == summary.varied_high:
        varied_text = f"only {summary.varied_low:g}"
    else:
        varied_text = f"{summary.varied_low:g} to {summary.varied_high:g}"
    collapse_text = " and ".join(collapse) if collapse else "no collapse"
    worst_text = f"m = {summary.worst.mean:g}"
    worst_delta = f"{summary.worst.diagnostics.diversity_ratio:.0%} of the prior's diversity"
a.metric("means with varied samples", varied_text)
b.metric("collapse starts at mean", collapse_text)
c.metric("least varied row", worst_text, delta=worst_delta, delta_color="off")
verdict_box = st.error if sweep.nonfinite_rows else \
    st.warning if collapse or summary.varied_low is None else st.success
verdict_box(explain_sweep(sweep))

# Empty cells where a number cannot be computed (a row with NaN pixels); the verdict column says why.
table = pd.DataFrame([{
    "mean": r.mean,
    "cosine of codes": rounded(r.diagnostics.cosine, 3),
    "code norm": rounded(r.diagnostics.norm_mean, 1),
    "norm z-score": rounded(r.diagnostics.norm_zscore, 1),
    "diversity vs prior": rounded(r.diagnostics.diversity_ratio, 3),
    "saturated pixels": rounded(r.diagnostics.saturated, 3),
    "first-layer shift": rounded(r.diagnostics.first_layer_shift, 2),
    "verdict": r.diagnostics.verdict,
} for r in sweep.rows])
st.dataframe(table, hide_index=True, key="sweep_table")
with st.expander("How to read the sweep"):
    st.markdown(
        f"""
* Each row adds the same number m to every coordinate of the same {bundle.latent_dim}-dimensional base noise.
  That shared offset is a vector m·(1, …, 1) of length |m|·√{bundle.latent_dim}: it soon dominates the random
  part, so every code points almost the same way (cosine near 1) and is far longer than anything in training.
* **Diversity** is the mean distance between the generated images, relative to {bundle.prior.label} samples
  from the same base noise. Below {VARIED_RATIO:.0%} the samples look alike; far below it the verdict column
  says "collapsed".
* **Saturated pixels** are outputs pinned at black or white by tanh; **first-layer shift** measures how far the
  first BatchNorm's inputs sit from what it saw in training (in its running standard deviations).
* The sweep is not symmetric: a positive offset and a negative one push the first layer in opposite directions,
  so the model can fail differently on each side.
"""
    )
