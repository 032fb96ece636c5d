"""Page: the labs' experiments side by side: one group, each run's fixed-noise grid at one step, the loss curves
overlaid, the metrics table and a verdict per run computed from its numbers."""

import pandas as pd
import streamlit as st
import torch

from explorer.core import bundles, torch_worker
from explorer.core import links as page_links
from explorer.core.downloads import file_stem, picture_downloads
from explorer.core.widgets import data_root_setting
from explorer.logic import links
from explorer.logic.codes import CodeSetting, code_sweep
from explorer.logic.curves import minmax_downsample
from explorer.logic.experiments import (
    ExperimentRun,
    baseline_of,
    common_steps,
    curve_keys,
    find_groups,
    group_title,
    held_out_positions,
    missing_parts,
    nearest_snapshot,
    numbers,
    overlay,
    refused_runs,
    scored_outsiders,
    verdict,
)
from explorer.logic.figures import grid_corner, labelled_rows, overlay_figure, upscale
from explorer.logic.infogan_codes import code_findings
from explorer.logic.real_images import real_images
from explorer.logic.replay import SERIES_LABELS
from explorer.logic.vae_map import reconstruct
from training.bundle import CONFIG_FILE, HISTORY_FILE, METRICS_FILE, find_bundles
from training.bundle.paths import featurenet_path
from training.errors import LatentExplorerError
from training.latent.priors import sample_latents
from training.models import registry
from training.recipes.experiments import ROOT_NAME
from training.untrusted.checks import read_image_rgb

EXPERIMENTS = bundles.CHECKPOINTS / ROOT_NAME
# Faces of a 32 px grid drawn at least 64 px wide: 2 runs a row, each its grid's top-left 4 x 4 faces enlarged 3 times
# (nearest neighbour, so the browser has nothing to blur); or, on request, one run a row with all 64 faces.
PER_ROW, CORNER_FACES, GRID_SCALE = 2, 4, 3
RECONSTRUCTED = 8


def _signature() -> tuple:
    """Changes when a run is added, retrained or re-evaluated, so the cache below is never stale."""
    out = []
    for path in find_bundles(EXPERIMENTS):
        for name in (CONFIG_FILE, HISTORY_FILE, METRICS_FILE):
            try:
                out.append((str(path), name, (path / name).stat().st_mtime_ns))
            except OSError:
                continue
    return tuple(out)


# A resource, not data: the runs are only read, and copying their histories on every rerun (Streamlit's data cache
# hands out a fresh copy) took 0.6 s for a run of 2.6 million steps.
@st.cache_resource(max_entries=4, show_spinner=False)
def _groups(root: str, signature: tuple) -> dict[str, list[ExperimentRun]]:
    return find_groups(root)


@st.cache_data(max_entries=4, show_spinner=False)
def _refused(root: str, signature: tuple) -> dict[str, str]:
    return refused_runs(root)


@st.cache_data(max_entries=64, show_spinner=False)
def _snapshot(path: str, mtime: float):
    return read_image_rgb(path, "snapshot grid")


@st.cache_data(max_entries=16, show_spinner=False)
def _overlay(signature: tuple, group: str, curve: str, window: int, _runs: list[ExperimentRun]) -> dict:
    """The overlaid curves, smoothed and cut to a few thousand points each, once per version of the runs' files
    (a history can hold millions of steps)."""
    return {label: minmax_downsample(steps, values) for label, (steps, values) in overlay(_runs, curve, window).items()}


def snapshot_sheet(runs: list[ExperimentRun], step: int, scale: int):
    """Every run's whole grid at the step (its nearest earlier one), one run a row with its label, for the slides."""
    labels, rows = [], []
    for run in runs:
        snapshots = run.snapshots()
        at = nearest_snapshot(snapshots, step)
        if at is None:
            continue
        try:
            grid = _snapshot(str(snapshots[at]), snapshots[at].stat().st_mtime)
        except (OSError, LatentExplorerError):
            continue
        labels.append(run.label if at == step else f"{run.label} (step {at})")
        rows.append(torch.from_numpy(grid.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1)
    if not rows:
        raise LatentExplorerError("no run has a grid at this step")
    return labelled_rows(labels, rows, scale=scale, padding=0, font_size=16 * scale)


st.title("Experiments")
st.write("The labs changed one thing at a time, trained, and compared grids, loss curves and a score. Here those "
         "runs are trained and shipped: pick a question and compare every run with its baseline, without training "
         "anything.")

signature = _signature()
groups = _groups(str(EXPERIMENTS), signature)
for problem in _refused(str(EXPERIMENTS), signature).values():
    st.warning(f"Not shown: {problem}")
if not groups:
    st.info(f"No experiment runs under `{EXPERIMENTS}`. Train a group with "
            "`python -m training.recipes.experiments GROUP` "
            "(see Experiment groups in docs/teachers-guide.md).")
    st.stop()

names = list(groups)
# A link straight to one group: ?group=vae-kl
page_links.adopt([links.choice("experiments_group", names, name="group")])
if st.session_state.get("experiments_group") not in names:
    st.session_state["experiments_group"] = names[0]
group = st.selectbox("Experiment", names, format_func=lambda g: group_title(groups[g]), key="experiments_group")
runs = groups[group]
baseline = baseline_of(runs)
first = runs[0].experiment
st.write(first.get("question", ""))
if first.get("size_note"):
    st.caption(f"Sizes: {first['size_note']}")

# --- snapshots -----------------------------------------------------------------------------------------------
st.header("Fixed-noise grids")
steps = common_steps(runs)
shown_step = None
if steps:
    key = f"experiments_step_{group}"
    # A step the group has no grid of is replaced below (and the link's visitor told).
    page_links.adopt([links.whole(key, 0, 10**12, name="step"), links.flag("experiments_all_faces", name="all_faces")],
                     {"experiments_all_faces": False})
    if st.session_state.get(key) not in steps:
        st.session_state[key] = steps[-1]
    shown_step = st.select_slider("training step", options=steps, key=key)
    every_face = st.toggle("all 64 faces of each grid, one run a row", key="experiments_all_faces")
    st.caption("Every run draws its grid from the same fixed codes, so the pictures differ only by what the run "
               "changed." + ("" if every_face else f" The first {CORNER_FACES * CORNER_FACES} of its 64 faces."))
    per_row = 1 if every_face else PER_ROW
    for start in range(0, len(runs), per_row):
        for column, run in zip(st.columns(per_row), runs[start:start + per_row]):
            snapshots = run.snapshots()
            at = nearest_snapshot(snapshots, shown_step)
            with column:
                st.markdown(f"**{run.label}**")
                if at is None:
                    st.caption("no snapshot this early")
                    continue
                png = snapshots[at]
                try:
                    grid = _snapshot(str(png), png.stat().st_mtime)
                    st.image(upscale(grid if every_face else grid_corner(grid, CORNER_FACES), GRID_SCALE))
                except (OSError, LatentExplorerError) as exc:
                    st.warning(f"Cannot show this snapshot: {exc}")
                    continue
                stopped = run.stopped
                if at != shown_step and stopped:
                    st.caption(f"stopped at step {stopped['step']}: its last grid, step {at}")
                elif at != shown_step:
                    st.caption(f"step {at} (no grid at step {shown_step})")
    picture_downloads(lambda scale: snapshot_sheet(runs, shown_step, scale),
                      file_stem("experiments", group, "fixed-noise", f"step{shown_step}"), "experiments_download",
                      numbers=lambda: [{"step": shown_step, **numbers(r)} for r in runs])
else:
    st.info("These runs have no fixed-noise snapshots.")

# --- losses --------------------------------------------------------------------------------------------------
st.header("Loss curves, overlaid")
keys = curve_keys(runs)
if keys:
    c1, c2 = st.columns([2, 3])
    # A VAE's total loss mixes in the KL weight the runs differ by: open on the reconstruction error.
    curve = c1.selectbox("curve", keys, index=keys.index("recon") if "recon" in keys else 0,
                         format_func=lambda k: SERIES_LABELS.get(k, k), key=f"experiments_curve_{group}")
    window = c2.slider("smoothing window (steps)", 1, 200, 20, key="experiments_window")
    st.plotly_chart(overlay_figure(_overlay(signature, group, curve, window, runs), SERIES_LABELS.get(curve, curve),
                                   shown_step), key="experiments_losses")
else:
    st.info("These runs recorded no common loss curve.")

# --- reconstructions (VAE groups) ----------------------------------------------------------------------------
if baseline is not None and registry.trains_as_vae(baseline.config.get("family", "")):
    st.header("Reconstructions of the same held-out faces")
    dataset = baseline.config["dataset"]
    data_root = data_root_setting(dataset.get("name"))
    positions = held_out_positions(baseline, RECONSTRUCTED)
    try:
        if positions is None:
            raise LatentExplorerError("the baseline keeps no held-out positions in latents.npz")
        originals = real_images(dataset, len(positions), data_root, indices=positions)
        rows = [torch_worker.run(reconstruct, bundles.load(r.path), originals).reconstructions for r in runs]
        st.image(labelled_rows(["original", *[r.label for r in runs]], [originals, *rows]), width="stretch")
        st.caption("decoder(mu(x)) for held-out images no run trained on; the table's reconstruction MSE is the "
                   "same measure over 500 of them.")
    except LatentExplorerError as exc:
        st.info(f"No reconstructions: {exc}.")

# --- what an InfoGAN's codes found ---------------------------------------------------------------------------
@st.cache_data(max_entries=8, show_spinner="Reading what each code does…")
def _findings(path: str, mtime: float, net_path: str, net_mtime: float) -> list[dict]:
    bundle, net = bundles.load(path), bundles.load(net_path)
    names = list(net.config["dataset"]["attributes"][0]["values"])
    found = torch_worker.run(code_findings, bundle, net.networks["featurenet"], names)
    return [{**f.row(), "sentence": f.sentence} for f in found]


for run in runs if registry.capabilities(runs[0].config.get("family", "")).info_codes else []:
    st.header(f"What the codes found: {run.label}")
    bundle = bundles.load(run.path)
    net_path = featurenet_path(bundle.config["dataset"]["name"])
    try:
        if not bundles.has_config(net_path):
            raise LatentExplorerError(f"no feature network at {net_path} to name the classes")
        rows = _findings(str(run.path), (run.path / CONFIG_FILE).stat().st_mtime, str(net_path),
                         (net_path / CONFIG_FILE).stat().st_mtime)
    except LatentExplorerError as exc:
        st.info(f"Cannot read the codes' meaning: {exc}.")
        continue
    for row in rows:
        st.markdown(f"* {row.pop('sentence')}")
    st.dataframe(pd.DataFrame(rows).astype(str), hide_index=True, key=f"experiments_codes_{run.name}")
    first = bundle.codes[0]["name"]
    labels, columns = torch_worker.run(code_sweep, bundle, sample_latents(bundle.prior, 8, bundle.latent_dim, seed=0),
                                       first, CodeSetting())
    st.image(labelled_rows(labels, columns), width="stretch",
             caption=f"one row per value of {first}, one column per z; turn every code on the Attributes page")
    st.caption("Classes as the Fashion-MNIST feature network of the metrics sees them; purity is the share of a "
               "value's images in its most frequent class.")

# --- numbers and verdicts ------------------------------------------------------------------------------------
st.header("Metrics")
table = pd.DataFrame([numbers(r) for r in runs])
st.dataframe(table.round(4).astype(str), hide_index=True, key="experiments_metrics")
st.caption("FD, precision and recall compare generated with held-out real images in a small feature network's "
           "space (not Inception FID); lower FD is better. \"FD noise ±\" is how much the FD moves from sampling "
           "alone. G loss swing: the step-to-step spread of G's loss over the second half of training.")

st.header("Verdicts")
for run in runs:
    text = verdict(run, baseline)
    if run.stopped:
        st.error(f"**{run.label}**: {text}")
        st.caption(f"The divergence guard's message: {run.stopped.get('message', '')}")
    else:
        st.markdown(f"**{run.label}**: {text}")

# A visitor's own generator of this dataset, imported and scored on the upload page, joins the comparison.
outsiders = scored_outsiders(bundles.imported_of(str(runs[0].config["dataset"].get("name"))))
if len(runs) + len(outsiders) > 2:
    st.subheader("Any two runs")
    if outsiders:
        st.caption("Your own generators of this dataset, scored on the Bring your own generator page, are here too.")
    labels = {r.label: r for r in runs + outsiders}
    c1, c2 = st.columns(2)
    a = c1.selectbox("this run", list(labels), index=1, key=f"experiments_a_{group}")
    b = c2.selectbox("against", list(labels), index=2, key=f"experiments_b_{group}")
    if a == b:
        st.caption("Pick two different runs.")
    else:
        st.markdown(f"**{a}** against **{b}**: {verdict(labels[a], labels[b], against=b)}")

with st.expander("What each run ships, and where else to open it"):
    for run in runs:
        st.markdown(f"* **{run.config.get('name', run.label)}**: {missing_parts(run)}.")
    st.caption("Every run is an ordinary model bundle: choose it in the sidebar's Model box on any other page "
               "(the training replay shows one run in detail).")
