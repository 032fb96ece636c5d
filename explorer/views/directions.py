"""Page: find the direction along which an attribute changes in the latent space of a VAE or an unconditional GAN,
and walk along it."""

from dataclasses import dataclass

import streamlit as st

from explorer.core import photo_hooks, torch_worker
from explorer.core.bundles import BundleKey, key_of
from explorer.core.downloads import file_stem, picture_downloads
from explorer.core.featurenets import featurenet_at, featurenet_for, needs_featurenet_text
from explorer.core.page import preamble, said_on_error
from explorer.logic import links
from explorer.logic.directions import (
    METHODS,
    LabelledCodes,
    Walked,
    WalkStart,
    attribute_direction,
    attribute_target,
    default_attribute,
    direction_cosine,
    explain_direction,
    label_samples,
    walk_a_direction,
    walk_positions,
)
from explorer.logic.figures import labelled_rows, walk_figure
from explorer.logic.held_out import held_out_codes
from training.bundle import LATENTS_FILE
from training.errors import LatentExplorerError

DEFAULTS = {"attr_dir_method": "mean difference", "attr_dir_t": 1.5, "attr_dir_faces": 8, "attr_dir_seed": 0,
            "attr_label_n": 512, "attr_dir_real": False}
# The attribute and its value depend on the model's feature network: the page checks them against what it offers.
LINKED = [links.choice("attr_dir_attr", None, name="attribute"), links.choice("attr_dir_value", None, name="value"),
          links.choice("attr_dir_method", METHODS, name="method"), links.number("attr_dir_t", 0.5, 4.0, 0.25, name="t"),
          links.whole("attr_dir_faces", 2, 12, name="faces"), links.seed("attr_dir_seed", name="seed"),
          links.flag("attr_dir_real", name="held_out"), links.whole("attr_label_n", 128, 2048, 128, name="labelled")]


@dataclass(frozen=True)
class CodeSource:
    """Where the labelled codes come from: the VAE's latents.npz (latents_mtime set), or n generated samples
    labelled by the feature network."""

    bundle: BundleKey
    latents_mtime: float | None = None
    featurenet: BundleKey | None = None
    n: int = 0


@dataclass(frozen=True)
class WalkControls:
    attribute: str
    value: str
    method: str
    t_max: float
    faces: int  # images per row
    seed: int  # of the start codes
    held_out_start: bool  # start from the encoded held-out images


@dataclass(frozen=True)
class WalkRequest:
    """What a walk's images depend on (not the number of faces shown, which only crops them)."""

    source: CodeSource
    method: str
    attribute: str
    value: str
    t_max: float
    start: WalkStart
    featurenet: BundleKey | None


@st.cache_data(max_entries=8, show_spinner="Reading the encoded codes…")
def cached_held_out(bundle: BundleKey, latents_mtime: float):
    loaded = bundle.load()
    return held_out_codes(loaded.latents(), loaded.attributes, str(loaded.path / LATENTS_FILE))


def labelled_samples(bundle: BundleKey, net: BundleKey, n: int) -> LabelledCodes:
    """Codes from the prior, and the labels the feature network gives their images (once for every session)."""
    with st.spinner("Labelling generated samples with the feature network…"):
        return torch_worker.shared(label_samples, bundle.load(), featurenet_at(net), n)


def labelled(source: CodeSource) -> LabelledCodes:
    if source.latents_mtime is not None:
        return LabelledCodes.held_out(cached_held_out(source.bundle, source.latents_mtime))
    return labelled_samples(source.bundle, source.featurenet, source.n)


@st.cache_data(max_entries=32, show_spinner="Finding the direction…")
def cached_direction(source: CodeSource, method: str, attribute: str, value: str):
    codes = labelled(source)
    target = attribute_target(codes.labels, codes.attributes, attribute, value)
    return attribute_direction(codes.codes, target, method, attribute, value)


def shared_walk(request: WalkRequest) -> Walked:
    """Computed once for every session that asks the same walk."""
    codes = labelled(request.source)
    bundle = request.source.bundle.load()
    direction = cached_direction(request.source, request.method, request.attribute, request.value)
    attribute = next(a for a in codes.attributes if a.name == request.attribute)
    net = featurenet_at(request.featurenet) if request.featurenet is not None else None
    with st.spinner("Walking along the direction…"):
        return torch_worker.shared(walk_a_direction, bundle, codes.start_codes(request.start, bundle),
                                   request.start.describe(bundle), direction, attribute, request.value,
                                   walk_positions(request.t_max, 5), walk_positions(request.t_max, 9), net)


def code_source(bundle, net) -> CodeSource | None:
    """The VAE's held-out codes, else generated samples the feature network labels (with their slider); None with
    a message when neither exists."""
    latents = bundle.path / LATENTS_FILE
    if bundle.capabilities.has_encoder and latents.exists():
        return CodeSource(key_of(bundle), latents_mtime=latents.stat().st_mtime)
    if net is None:
        what = ("this VAE has no latents.npz yet (it is written when training finishes)"
                if bundle.capabilities.has_encoder else "an unconditional GAN's samples come without labels")
        st.info(f"To find attribute directions, the codes need labels, and {what}. This page then labels generated "
                "samples with the dataset's feature network, but there is none for this dataset. "
                + needs_featurenet_text(bundle))
        return None
    n = st.slider("generated samples to label", 128, 2048, step=128, key="attr_label_n")
    return CodeSource(key_of(bundle), featurenet=key_of(net.path), n=int(n))


def walk_controls(codes: LabelledCodes) -> WalkControls:
    attributes, state = codes.attributes, st.session_state
    names = [a.name for a in attributes]
    with st.container(border=True):
        c1, c2, c3 = st.columns(3)
        if state.get("attr_dir_attr") not in names:
            state["attr_dir_attr"] = default_attribute(codes.labels, attributes)
        name = c1.selectbox("attribute", names, key="attr_dir_attr")
        attribute = attributes[names.index(name)]
        if attribute.is_binary:
            value = "yes"
        else:
            if state.get("attr_dir_value") not in attribute.values:
                state["attr_dir_value"] = attribute.values[0]
            value = c1.selectbox("value (against all the others)", attribute.values, key="attr_dir_value")
        method = c2.radio("direction from", list(METHODS), key="attr_dir_method")
        t_max = c2.slider("walk as far as t =", 0.5, 4.0, step=0.25, key="attr_dir_t",
                          help="t = 1 moves a code by the gap between the average code with and without the attribute")
        faces = c3.slider("images per row", 2, 12, step=1, key="attr_dir_faces")
        seed = c3.number_input("seed of the start codes", min_value=0, max_value=2**31 - 1, step=1, key="attr_dir_seed")
        held_out_start = False
        if codes.held is not None and codes.held.images is not None:
            held_out_start = c3.checkbox("start from encoded held-out images", key="attr_dir_real")
    return WalkControls(name, value, method, float(t_max), int(faces), int(seed), bool(held_out_start))


def directions(bundle, net) -> None:
    source = code_source(bundle, net)
    if source is None:
        return
    codes = labelled(source)
    st.caption(f"Directions estimated from {codes.description}.")
    if not codes.attributes:
        st.info("These codes come without attribute labels, so there is no direction to find.")
        return
    chosen = walk_controls(codes)
    name, value = chosen.attribute, chosen.value
    try:
        direction = cached_direction(source, chosen.method, name, value)
        other = cached_direction(source, next(m for m in METHODS if m != chosen.method), name, value)
    except LatentExplorerError as exc:
        st.warning(f"{exc}.")
        return
    start = codes.walk_start(chosen.held_out_start, chosen.faces, chosen.seed)
    walked = shared_walk(WalkRequest(source, chosen.method, name, value, chosen.t_max, start,
                                     key_of(net.path) if net is not None else None))
    st.image(labelled_rows([f"t = {t:+g}" for t in walked.positions],
                           [walked.images[t][:chosen.faces] for t in walked.positions]),
             width="stretch", caption=f"each column starts from one of the {walked.start_text} and walks along the "
             f"direction of {name} = {value}")
    picture_downloads(lambda scale: labelled_rows([f"t = {t:+g}" for t in walked.positions],
                                                  [walked.images[t][:chosen.faces] for t in walked.positions],
                                                  scale=scale),
                      file_stem(bundle.path.parent.name, bundle.path.name, f"{name}-{value}", chosen.method,
                                f"seed{chosen.seed}"), "direction_download",
                      numbers={"t": walked.fine, "recognised": [walked.recognised.get(t, "") for t in walked.fine],
                               "code norm": [walked.norms[t] for t in walked.fine]})
    photo_hooks.walk_photos(bundle, direction, list(walked.positions), f"{name} = {value}")
    fine, recognised = walked.fine, walked.recognised
    left, right = st.columns([3, 2])
    with left:
        if recognised:
            st.plotly_chart(walk_figure(fine, [recognised[t] for t in fine], [walked.norms[t] for t in fine],
                                        f"{name} = {value}", walked.prior_norm), key="attr_walk_plot")
        elif net is None:
            st.info("No feature network for this dataset, so the walk is not scored. " + needs_featurenet_text(bundle))
        else:
            st.info(f"The feature network does not predict {name} with these values, so the walk is not scored.")
    with right:
        m1, m2 = st.columns(2)
        m1.metric("codes with / without", f"{direction.n_with} / {direction.n_without}")
        m2.metric("separation (std devs)", f"{direction.separation:.2f}")
        m1.metric("sorted by a cut halfway", f"{direction.accuracy:.0%}")
        m2.metric("gap between the groups", f"{direction.gap:.3g}")
        m1.metric("agreement with the other method (cosine)", f"{direction_cosine(direction, other):.2f}")
        if recognised:
            m2.metric(f"recognised at t = {fine[0]:+g} / {fine[-1]:+g}",
                      f"{recognised[fine[0]]:.0%} / {recognised[fine[-1]]:.0%}")
    st.info(explain_direction(direction, recognised or None, walked.norms, walked.prior_norm))


bundle = preamble("Attribute directions in latent space",
                  "An unconditional model has no switches, but its codes may still line up by attribute: the codes of "
                  "smiling faces sit on one side. Find that direction and walk along it.",
                  "directions", DEFAULTS, linked=LINKED)
said_on_error(directions, bundle, featurenet_for(bundle))
