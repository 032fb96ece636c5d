"""Page: the VAE's latent map: where the encoder puts held-out images, what the decoder makes of any point, how
well it reconstructs, and where codes from another distribution land."""

import json

import numpy as np
import streamlit as st

from explorer import bundles
from explorer.bundles import read_config
from explorer.figures import grid_jpeg, labelled_rows, latent_scatter
from explorer.latent_map import (
    MAX_TSNE_POINTS,
    cloud_distance,
    colour_labels,
    decode,
    explain_map,
    explain_overlay,
    held_out_codes,
    neighbour_agreement,
    pca_map,
    point_from_selection,
    reconstruct,
    tsne_map,
)
from explorer.replay import real_images
from explorer.widgets import data_root_setting
from training.checkpoint import LATENTS_FILE
from training.errors import LatentExplorerError
from training.latent import PRESETS, sample_latents

OVERLAY_CODES = 200
NO_COLOUR = "(one colour)"
NO_OVERLAY = "none"
DEFAULTS = {"map_projection": "PCA", "map_perplexity": 30, "map_points": MAX_TSNE_POINTS, "map_overlay": "N(-10,1)",
            "map_point": 0, "map_recon_n": 16, "map_sample_seed": 0}


@st.cache_data(max_entries=8, show_spinner="Reading the encoded codes…")
def cached_codes(path: str, mtime: float, bundle_mtime: float):
    bundle = bundles.load(path)
    return held_out_codes(bundle.latents(), bundle.attributes, f"{path}/{LATENTS_FILE}")


@st.cache_data(max_entries=8)
def cached_pca(path: str, mtime: float, _codes: np.ndarray):
    return pca_map(_codes)


@st.cache_data(max_entries=16, show_spinner="Running t-SNE (once per perplexity; recolouring is instant)…")
def cached_tsne(path: str, mtime: float, perplexity: float, max_points: int, _codes: np.ndarray):
    return tsne_map(_codes, perplexity=perplexity, max_points=max_points)


@st.cache_resource(max_entries=8, show_spinner="Reading the original images from the dataset…")
def cached_originals(dataset_json: str, positions: tuple[int, ...], data_root: str):
    return real_images(json.loads(dataset_json), len(positions), data_root or None,
                       indices=np.array(positions, dtype=np.int64))


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
        return cached_originals(json.dumps(bundle.config["dataset"], sort_keys=True),
                                tuple(int(i) for i in held.indices[start:stop]), data_root or ""), None
    except (LatentExplorerError, OSError) as exc:
        return None, ("This bundle ships codes and labels only: its training images may not be redistributed, so "
                      f"the originals are read from a local copy of the dataset, and {exc}.")


def family_of(path: str) -> str | None:
    try:
        return read_config(path)["family"]
    except LatentExplorerError:
        return None


def select_point() -> None:
    """Plotly selection -> the code number input (which the page reads, so typing a number works too)."""
    event = st.session_state.get("map_chart")
    index = point_from_selection(event.selection if event is not None else None)
    if index is not None:
        st.session_state["map_point"] = index


for key, value in DEFAULTS.items():
    st.session_state.setdefault(key, value)

st.title("VAE latent map")
st.write("A VAE's encoder places every face at a point of its latent space, and the KL term pulls those points "
         "towards N(0, 1). See how the points are organised, what the decoder paints at any of them, and how far "
         "codes from another distribution land from them.")

bundle = bundles.sidebar_picker()
if bundle is None:
    st.stop()
if bundle.family != "vae":
    vaes = [name for name, path in bundles.available().items() if family_of(path) == "vae"]
    st.info(f"**{bundle.name}** ({bundle.family}) has no encoder, so there is no map of encoded images "
            "and this page does not apply to it. "
            + (f"Pick a VAE in the sidebar: {', '.join(vaes)}." if vaes else
               "Train one with `python -m training train --model vae --out checkpoints/<dataset>/vae`."))
    st.stop()
st.sidebar.caption(f"Latent dimension {bundle.latent_dim}; KL weight "
                   f"{bundle.config['model'].get('kl_weight', '?')}.")
data_root = data_root_setting(bundle.config["dataset"].get("name"))
decoder, encoder = bundle.generator, bundle.encoder
bundle_mtime = (bundle.path / "config.json").stat().st_mtime
latents_file = bundle.path / LATENTS_FILE
held = None
try:
    held = cached_codes(str(bundle.path), latents_file.stat().st_mtime if latents_file.exists() else 0.0, bundle_mtime)
except LatentExplorerError as exc:
    st.info(f"No latent map for **{bundle.name}**: {exc}. The random samples below still work.")

if held is not None:
    n_codes = len(held)
    latents_mtime = latents_file.stat().st_mtime
    st.header("The map")
    names = [a.name for a in held.attributes]
    with st.container(border=True):
        c1, c2, c3 = st.columns(3)
        projection = c1.radio("projection", ["PCA", "t-SNE"], horizontal=True, key="map_projection")
        if st.session_state.get("map_colour") not in [NO_COLOUR] + names:
            st.session_state["map_colour"] = names[0] if names else NO_COLOUR
        colour = c1.selectbox("colour by", [NO_COLOUR] + names, key="map_colour")
        if projection == "t-SNE":
            c2.slider("perplexity (how many neighbours each point keeps close)", 2, 50, step=1,
                      key="map_perplexity")
            c2.slider("codes in the t-SNE map", 100, 5000, step=100, key="map_points",
                      help="t-SNE costs grow fast with the number of points; 2000 takes about half a minute")
        else:
            c2.selectbox("overlay codes from", [NO_OVERLAY] + list(PRESETS), key="map_overlay")
        st.session_state["map_point"] = int(min(max(0, st.session_state["map_point"]), n_codes - 1))
        c3.number_input(f"code to decode (0..{n_codes - 1}; or click a point)", min_value=0,
                        max_value=n_codes - 1, step=1, key="map_point")
    attribute = None if colour == NO_COLOUR else colour
    groups_all = colour_labels(held, attribute)
    pca = cached_pca(str(bundle.path), latents_mtime, held.codes)
    overlay_xy = overlay_label = distance = None
    if projection == "PCA":
        xy, index = pca.xy, np.arange(n_codes)
        axes = (f"PC 1 ({pca.explained[0]:.0%} of the variance)", f"PC 2 ({pca.explained[1]:.0%})")
        overlay_name = st.session_state["map_overlay"]
        if overlay_name != NO_OVERLAY:
            dist = PRESETS[overlay_name]
            overlay = sample_latents(dist, OVERLAY_CODES, held.codes.shape[1], seed=0).numpy()
            overlay_xy, overlay_label = pca.project(overlay), f"{OVERLAY_CODES} codes from {dist.label}"
            distance = cloud_distance(held.codes, overlay, pca)
        explained = pca.explained
    else:
        max_points = int(st.session_state["map_points"])
        perplexity = float(st.session_state["map_perplexity"])
        xy, index, used = cached_tsne(str(bundle.path), latents_mtime, perplexity, max_points, held.codes)
        axes = ("t-SNE 1", "t-SNE 2")
        explained = None
        if used != perplexity:
            st.caption(f"Perplexity {perplexity:g} is too large for {len(index)} codes; using {used:.3g}.")
    groups = groups_all[index]
    selected = int(st.session_state["map_point"])
    chart, side = st.columns([3, 2])
    with chart:
        title = f"{projection} of {len(index)} encoded held-out images" + (f", coloured by {attribute}" if attribute
                                                                         else "")
        order = held.attributes[names.index(attribute)].values if attribute else None
        st.plotly_chart(latent_scatter(xy, groups, index, title, axes, overlay_xy, overlay_label, selected, order),
                        key="map_chart", on_select=select_point, selection_mode="points")
        if projection == "t-SNE" and len(index) < n_codes:
            st.caption(f"t-SNE uses {len(index)} of the {n_codes} codes (a fixed random subset).")
    with side:
        st.subheader(f"Code {selected}")
        image = decode(decoder, held.codes[selected:selected + 1])
        original, missing = originals(bundle, held, selected, selected + 1, data_root)
        if original is not None:
            recon = reconstruct(encoder, decoder, original)
            st.image(labelled_rows(["original", "decoded"], [recon.originals, image], scale=4), width="stretch")
            st.metric("reconstruction MSE of this face", f"{recon.mse[0]:.4f}")
        else:
            st.image(grid_jpeg(image), output_format="JPEG", width=240, caption="decoder(code)")
            st.caption(missing)
        values = ", ".join(f"{a.name} = {a.values[min(int(held.labels[selected, j]), len(a.values) - 1)]}"
                           for j, a in enumerate(held.attributes))
        st.caption(f"labels: {values or 'none'}; code norm {float(np.linalg.norm(held.codes[selected])):.2f}")
        agreement, chance = neighbour_agreement(xy, groups) if attribute else (float("nan"), float("nan"))
        if attribute:
            st.metric(f"neighbours with the same {attribute}", f"{agreement:.0%}", help=f"chance: {chance:.0%}")
    st.info(explain_map(projection, attribute, agreement, chance, explained, len(index),
                        bundle.config["dataset"].get("name")))
    if distance is not None:
        m1, m2, m3 = st.columns(3)
        m1.metric(f"distance of {overlay_label.split(' from ')[1]} codes from the data centre",
                  f"{distance.overlay_distance:.3g}")
        m2.metric("held-out codes' distance (mean / 99%)",
                  f"{distance.data_radius:.3g} / {distance.data_radius_99:.3g}")
        m3.metric("overlay codes inside the data cloud", f"{distance.inside:.0%}")
        (st.warning if distance.inside < 0.05 else st.success)(
            explain_overlay(distance, overlay_label.split(" from ")[1], OVERLAY_CODES))
    elif projection == "t-SNE":
        st.caption("t-SNE has no way to place new points, so the distribution overlay lives in the PCA view.")

    st.header("Reconstructions")
    available = len(held.images) if held.images is not None else (len(held) if held.indices is not None else 0)
    top = min(32, available)
    k = int(min(max(4, st.session_state["map_recon_n"]), top)) if available else 0
    shown, missing = originals(bundle, held, 0, k, data_root) if k else (None, "latents.npz holds no images.")
    if shown is None:
        st.info(f"No reconstructions to show. {missing}")
    else:
        if available > 4:
            st.session_state["map_recon_n"] = k
            st.slider("images", 4, top, step=1, key="map_recon_n")
        recon = reconstruct(encoder, decoder, shown)
        st.image(labelled_rows(["original", "reconstruction"], [recon.originals, recon.reconstructions]),
                 width="stretch")
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

st.header("32 random samples")
st.number_input("seed", min_value=0, max_value=2**31 - 1, step=1, key="map_sample_seed")
z = sample_latents(bundle.prior, 32, bundle.latent_dim, seed=int(st.session_state["map_sample_seed"]))
st.image(grid_jpeg(decode(decoder, z)), output_format="JPEG", width="stretch",
         caption=f"decoder(z) for z ~ {bundle.prior.label}")
