"""Page: the VAE's latent map: where the encoder puts held-out images, what the decoder makes of any point, how
well it reconstructs, and where codes from another distribution land."""

from dataclasses import dataclass

import numpy as np
import streamlit as st

from explorer.core import torch_worker
from explorer.core.bundles import BundleKey, key_of
from explorer.core.downloads import file_stem, grid_downloads, picture_downloads
from explorer.core.page import preamble
from explorer.core.widgets import data_root_setting
from explorer.logic import links
from explorer.logic.figures import grid_jpeg, labelled_rows, latent_scatter
from explorer.logic.held_out import held_out_codes
from explorer.logic.real_images import real_images
from explorer.logic.vae_map import (
    MAX_TSNE_POINTS,
    colour_labels,
    decode_codes,
    explain_map,
    explain_overlay,
    neighbour_agreement,
    overlay,
    pca_map,
    point_from_selection,
    reconstruct,
    tsne_map,
)
from training.bundle import LATENTS_FILE
from training.errors import LatentExplorerError
from training.latent import sampling
from training.latent.priors import PRESETS

OVERLAY_CODES = 200
NO_COLOUR = "(one colour)"
NO_OVERLAY = "none"
# The first of these a dataset labels colours the map when the page opens (else its first attribute): attributes a
# class sees at a glance in the faces (CelebA's first attribute, 5_o_Clock_Shadow, teaches little).
TEACHING_COLOURS = ("Male", "Smiling")
DEFAULTS = {"map_projection": "PCA", "map_dims": "2-D", "map_perplexity": 30, "map_points": MAX_TSNE_POINTS,
            "map_overlay": "N(-10,1)",
            "map_point": 0, "map_recon_n": 16, "map_sample_seed": 0}
# The colour's attribute and the code's number depend on the model: the page checks them against what it has.
LINKED = [links.choice("map_projection", ["PCA", "t-SNE"], name="projection"),
          links.choice("map_dims", ["2-D", "3-D"], name="dims"), links.choice("map_colour", None, name="colour"),
          links.whole("map_perplexity", 2, 50, name="perplexity"),
          links.whole("map_points", 100, 100_000, name="points"),
          links.choice("map_overlay", [NO_OVERLAY, *PRESETS], name="overlay"),
          links.whole("map_point", 0, 2**31 - 1, name="point"), links.whole("map_recon_n", 4, 32, name="recon"),
          links.seed("map_sample_seed", name="seed")]


@st.cache_data(max_entries=8, show_spinner="Reading the encoded codes…")
def cached_codes(bundle: BundleKey, latents_mtime: float):
    loaded = bundle.load()
    return held_out_codes(loaded.latents(), loaded.attributes, f"{bundle.path}/{LATENTS_FILE}")


@st.cache_data(max_entries=8)
def cached_pca(bundle: BundleKey, latents_mtime: float, _codes: np.ndarray, dims: int = 2):
    return pca_map(_codes, dims)


@st.cache_data(max_entries=16, show_spinner="Running t-SNE (once per perplexity; recolouring is instant)…")
def cached_tsne(bundle: BundleKey, latents_mtime: float, perplexity: float, max_points: int, _codes: np.ndarray,
                dims: int = 2):
    return tsne_map(_codes, perplexity=perplexity, max_points=max_points, dims=dims)


@st.cache_resource(max_entries=8, show_spinner="Reading the original images from the dataset…")
def cached_originals(dataset: dict, positions: tuple[int, ...], data_root: str):
    return real_images(dataset, len(positions), data_root or None, indices=np.array(positions, dtype=np.int64))


def originals(bundle, held, start: int, stop: int, data_root: str | None):
    """(the held-out images behind codes start..stop-1, None), or (None, why they cannot be shown). A bundle
    that carries images (one trained here, or on procedural toyfaces) shows those; one that ships codes only
    (a real dataset's) reads any code's original from the local copy of the dataset (data_root: the sidebar box)."""
    if held.images is not None:
        if stop <= len(held.images):
            return held.images[start:stop], None
        return None, f"latents.npz keeps the original image only for the first {len(held.images)} codes."
    if held.indices is None:
        return None, "latents.npz holds neither these images nor their dataset positions, so there are no originals."
    try:
        return cached_originals(bundle.config["dataset"], tuple(int(i) for i in held.indices[start:stop]),
                                data_root or ""), None
    except (LatentExplorerError, OSError) as exc:
        return None, ("This bundle ships codes and labels only: its training images may not be redistributed, so "
                      f"the originals are read from a local copy of the dataset, and {exc}.")


def select_point() -> None:
    """Plotly selection -> the code number input (which the page reads, so typing a number works too)."""
    event = st.session_state.get("map_chart")
    index = point_from_selection(event.selection if event is not None else None)
    if index is not None:
        st.session_state["map_point"] = index


@dataclass(frozen=True)
class MapControls:
    projection: str  # "PCA" or "t-SNE"
    dims: int  # 2 or 3
    attribute: str | None  # colour by (None: one colour)
    overlay: str  # a preset's name or NO_OVERLAY (PCA only)
    perplexity: float  # t-SNE only (0 with PCA)
    points: int  # t-SNE only (0 with PCA)
    point: int  # the code to decode


def map_controls(held) -> MapControls:
    names = [a.name for a in held.attributes]
    state = st.session_state
    with st.container(border=True):
        c1, c2, c3 = st.columns(3)
        projection = c1.radio("projection", ["PCA", "t-SNE"], horizontal=True, key="map_projection",
                              help="UMAP is not offered: it needs numba and llvmlite (about 210 MB), and its first "
                                   "map of 2000 codes took over a minute on a 2-core server.")
        dims = c1.radio("dimensions", ["2-D", "3-D"], horizontal=True, key="map_dims",
                        help="3-D: drag to turn the map, scroll to zoom. A click picks a code in 2-D only (Streamlit "
                             "reports clicks on flat charts); in 3-D, hover a point to read its number and type it "
                             "in the box on the right.")
        if state.get("map_colour") not in [NO_COLOUR] + names:
            state["map_colour"] = next((n for n in TEACHING_COLOURS if n in names), names[0] if names else NO_COLOUR)
        colour = c1.selectbox("colour by", [NO_COLOUR] + names, key="map_colour")
        perplexity, points, overlay_name = 0.0, 0, NO_OVERLAY  # each projection draws only its own controls
        if projection == "t-SNE":
            perplexity = c2.slider("perplexity (how many neighbours each point keeps close)", 2, 50, step=1,
                                   key="map_perplexity")
            most = len(held)
            if most > 100:
                state["map_points"] = int(min(max(100, state["map_points"]), most))
                points = c2.slider("codes in the t-SNE map", 100, most, step=100 if most % 100 == 0 else 1,
                                   key="map_points", help=f"at most the {most} codes this bundle ships; t-SNE costs "
                                   "grow fast with the number of points (2000 take about half a minute)")
            else:
                points = most
        else:
            overlay_name = c2.selectbox("overlay codes from", [NO_OVERLAY] + list(PRESETS), key="map_overlay")
        state["map_point"] = int(min(max(0, state["map_point"]), len(held) - 1))
        how = "or click a point" if dims == "2-D" else "hover a point in 3-D for its number"
        point = c3.number_input(f"code to decode (0..{len(held) - 1}; {how})", min_value=0,
                                max_value=len(held) - 1, step=1, key="map_point")
    return MapControls(projection, 3 if dims == "3-D" else 2, None if colour == NO_COLOUR else colour, overlay_name,
                       float(perplexity),
                       int(points), int(point))


def code_panel(bundle, held, selected: int, xy, groups, attribute: str | None,
               data_root: str | None) -> tuple[float, float]:
    """The chosen code decoded (beside its original when there is one), its labels and the neighbours' agreement;
    returns (agreement, chance)."""
    st.subheader(f"Code {selected}")
    image = torch_worker.run(decode_codes, bundle, held.codes[selected:selected + 1])
    original, missing = originals(bundle, held, selected, selected + 1, data_root)
    if original is not None:
        recon = torch_worker.run(reconstruct, bundle, original)
        st.image(labelled_rows(["original", "decoded"], [recon.originals, image], scale=4), width="stretch")
        st.metric("reconstruction MSE of this face", f"{recon.mse[0]:.4f}")
    else:
        st.image(grid_jpeg(image), output_format="JPEG", width=240, caption="decoder(code)")
        st.caption(missing)
    st.caption(f"labels: {held.label_text(selected)}; code norm {held.code_norm(selected):.2f}")
    agreement, chance = neighbour_agreement(xy, groups) if attribute else (float("nan"), float("nan"))
    if attribute:
        st.metric(f"neighbours with the same {attribute}", f"{agreement:.0%}", help=f"chance: {chance:.0%}")
    return agreement, chance


def the_map(bundle, held, data_root: str | None) -> None:
    n_codes = len(held)
    key, latents_mtime = key_of(bundle), (bundle.path / LATENTS_FILE).stat().st_mtime
    st.header("The map")
    chosen = map_controls(held)
    attribute = chosen.attribute
    groups_all = colour_labels(held, attribute)
    pca = cached_pca(key, latents_mtime, held.codes, chosen.dims)
    shifted = None
    if chosen.projection == "PCA":
        xy, index = pca.xy, np.arange(n_codes)
        axes = (f"PC 1 ({pca.explained[0]:.0%} of the variance)",
                *(f"PC {i + 1} ({pca.explained[i]:.0%})" for i in range(1, chosen.dims)))
        if chosen.overlay != NO_OVERLAY:
            shifted = overlay(held.codes, pca, PRESETS[chosen.overlay], OVERLAY_CODES)
        explained = pca.explained
    else:
        xy, index, used = cached_tsne(key, latents_mtime, chosen.perplexity, chosen.points, held.codes, chosen.dims)
        axes = tuple(f"t-SNE {i + 1}" for i in range(chosen.dims))
        explained = None
        if used != chosen.perplexity:
            st.caption(f"Perplexity {chosen.perplexity:g} is too large for {len(index)} codes; using {used:.3g}.")
    groups = groups_all[index]
    chart, side = st.columns([3, 2])
    with chart:
        shape = "3-D " if chosen.dims == 3 else ""
        colouring = f", coloured by {attribute}" if attribute else ""
        title = f"{shape}{chosen.projection} of {len(index)} encoded held-out images{colouring}"
        order = next(a.values for a in held.attributes if a.name == attribute) if attribute else None
        st.plotly_chart(latent_scatter(xy, groups, index, title, axes, shifted.xy if shifted else None,
                                       shifted.label if shifted else None, chosen.point, order),
                        key="map_chart", on_select=select_point, selection_mode="points")
        if chosen.projection == "t-SNE" and len(index) < n_codes:
            st.caption(f"t-SNE uses {len(index)} of the {n_codes} codes (a fixed random subset).")
    with side:
        agreement, chance = code_panel(bundle, held, chosen.point, xy, groups, attribute, data_root)
    st.info(explain_map(chosen.projection, attribute, agreement, chance, explained, len(index),
                        bundle.config["dataset"].get("name")))
    if shifted is not None:
        distance = shifted.distance
        m1, m2, m3 = st.columns(3)
        m1.metric(f"distance of {shifted.distribution} codes from the data centre", f"{distance.overlay_distance:.3g}")
        m2.metric("held-out codes' distance (mean / 99%)",
                  f"{distance.data_radius:.3g} / {distance.data_radius_99:.3g}")
        m3.metric("overlay codes inside the data cloud", f"{distance.inside:.0%}")
        (st.warning if distance.inside < 0.05 else st.success)(
            explain_overlay(distance, shifted.distribution, OVERLAY_CODES))
    elif chosen.projection == "t-SNE":
        st.caption("t-SNE has no way to place new points, so the distribution overlay lives in the PCA view.")


def reconstructions(bundle, held, data_root: str | None) -> None:
    st.header("Reconstructions")
    available = held.originals_known
    top = min(32, available)
    # The slider is drawn only when there are originals to show, which depends on how many it asks for.
    k = int(min(max(4, st.session_state["map_recon_n"]), top)) if available else 0
    shown, missing = originals(bundle, held, 0, k, data_root) if k else (None, "latents.npz holds no images.")
    if shown is None:
        st.info(f"No reconstructions to show. {missing}")
        return
    if available > 4:
        st.session_state["map_recon_n"] = k
        st.slider("images", 4, top, step=1, key="map_recon_n")
    recon = torch_worker.run(reconstruct, bundle, shown)
    st.image(labelled_rows(["original", "reconstruction"], [recon.originals, recon.reconstructions]),
             width="stretch")
    picture_downloads(lambda scale: labelled_rows(["original", "reconstruction"],
                                                  [recon.originals, recon.reconstructions], scale=scale),
                      file_stem(bundle.path.parent.name, bundle.path.name, "reconstructions", f"{k}-images"),
                      "recon_download", numbers={"face": list(range(k)), "mse": [float(m) for m in recon.mse]})
    holdout = (bundle.metrics or {}).get("holdout_reconstruction") or {}
    m1, m2, m3 = st.columns(3)
    m1.metric(f"MSE of these {k} images (pixels in [-1, 1])", f"{recon.mean_mse:.4f}")
    m2.metric("same on the [0, 1] pixel scale", f"{recon.mean_mse / 4:.4f}")
    if isinstance(holdout.get("mse"), (int, float)):
        m3.metric(f"MSE on all {holdout.get('images', '?')} held-out images", f"{holdout['mse']:.4f}",
                  help=f"[0, 1] scale: {holdout.get('mse_01', holdout['mse'] / 4):.4f}")
    worst = int(np.argmax(recon.mse))
    st.caption(f"Per-face MSE ranges from {recon.mse.min():.4f} to {recon.mse.max():.4f} (worst: face {worst}). "
               "The reconstructions are smoother than the originals: the decoder is trained on squared error, so "
               "where it is unsure it paints an average.")


bundle = preamble("VAE latent map",
                  "A VAE's encoder places every face at a point of its latent space, and the KL term pulls those "
                  "points towards N(0, 1). See how the points are organised, what the decoder paints at any of them, "
                  "and how far codes from another distribution land from them.",
                  "vae_map", DEFAULTS, linked=LINKED,
                  caption=lambda b: f"Latent dimension {b.latent_dim}; KL weight "
                                    f"{b.config['model'].get('kl_weight', '?')}.")
data_root = data_root_setting(bundle.config["dataset"].get("name"))
latents_file = bundle.path / LATENTS_FILE
held = None
try:
    held = cached_codes(key_of(bundle), latents_file.stat().st_mtime if latents_file.exists() else 0.0)
except LatentExplorerError as exc:
    st.info(f"No latent map for **{bundle.name}**: {exc}. The random samples below still work.")

if held is not None:
    the_map(bundle, held, data_root)
    reconstructions(bundle, held, data_root)

st.header("32 random samples")
seed = st.number_input("seed", min_value=0, max_value=2**31 - 1, step=1, key="map_sample_seed")
samples = torch_worker.run(sampling.sample, bundle, bundle.prior, 32, int(seed))
st.image(grid_jpeg(samples.images), output_format="JPEG", width="stretch",
         caption=f"decoder(z) for z ~ {bundle.prior.label}")
grid_downloads(samples.images, file_stem(bundle.path.parent.name, bundle.path.name, bundle.prior.label,
                                         f"seed{int(seed)}", "32-samples"), "vae_samples_download")
