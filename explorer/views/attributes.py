"""Page: attributes: switch them in a conditional GAN (and the "10 pairs"), turn InfoGAN codes, or find and walk
an attribute's direction in the latent space of a VAE or an unconditional GAN."""

import numpy as np
import pandas as pd
import streamlit as st
import torch

from explorer import bundles, photo_hooks, torch_worker
from explorer.conditions import (
    attribute_pairs,
    between_faces,
    code_sweep,
    condition_rows,
    explain_pairs,
    featurenet_column,
    featurenet_path,
    generate_with,
    info_codes,
    predict_labels,
    recognition_rate,
    sweep_change,
)
from explorer.diagnostics import generate
from explorer.directions import (
    METHODS,
    attribute_direction,
    attribute_target,
    default_attribute,
    direction_cosine,
    explain_direction,
    walk,
    walk_positions,
)
from explorer.figures import grid_jpeg, labelled_rows, walk_figure
from explorer.latent_map import held_out_codes
from training.checkpoint import LATENTS_FILE
from training.errors import LatentExplorerError
from training.latent import sample_latents

WALK_EVAL = 64  # codes per position for the recognition numbers (the picture shows the first few)
DEFAULTS = {"attr_n": 16, "attr_seed": 0, "attr_pairs": 10, "attr_dir_method": "mean difference", "attr_dir_t": 1.5,
            "attr_dir_faces": 8, "attr_dir_seed": 0, "attr_label_n": 512, "attr_dir_real": False}


def mtime_of(path) -> float:
    return (path / "config.json").stat().st_mtime


def featurenet_for(bundle):
    """(network, its attributes, its folder) for the bundle's dataset, or None when there is none."""
    path = featurenet_path(bundles.CHECKPOINTS, bundle.config["dataset"].get("name", ""))
    if path is None:
        return None
    try:
        net_bundle = bundles.load(path)
    except LatentExplorerError as exc:
        st.warning(f"The feature network at `{path}` cannot be read: {exc}")
        return None
    if net_bundle.family != "featurenet":
        return None
    return net_bundle.networks["featurenet"], net_bundle.attributes, path


def needs_featurenet_text(bundle) -> str:
    dataset = bundle.config["dataset"].get("name", "<dataset>")
    return (f"Train one with `python -m training train-featurenet --data {dataset} --out "
            f"checkpoints/{dataset}/featurenet` to see how often the attribute is recognised.")


@st.cache_resource(max_entries=8, show_spinner="Labelling generated samples with the feature network…")
def labelled_samples(path: str, mtime: float, net_path: str, net_mtime: float, n: int):
    """Codes from the prior, and the labels the feature network gives their images."""
    bundle, net = bundles.load(path), bundles.load(net_path)
    z = sample_latents(bundle.prior, n, bundle.latent_dim, seed=12345)
    labels = predict_labels(net.networks["featurenet"], generate(bundle.generator, z))
    return z.numpy(), labels.numpy(), net.attributes


@st.cache_data(max_entries=8, show_spinner="Reading the encoded codes…")
def cached_held_out(path: str, mtime: float, latents_mtime: float):
    bundle = bundles.load(path)
    return held_out_codes(bundle.latents(), bundle.attributes, str(bundle.path / LATENTS_FILE))


@st.cache_resource(max_entries=16, show_spinner="Walking along the direction…")
def cached_walk(walk_key: str, positions: tuple[float, ...], _generator, _direction, _start, _net, column: int | None,
                value: int):
    """Images at every position of the walk and, with a feature network, how often it sees the attribute.
    walk_key names everything the underscored arguments hold (bundle, codes, direction, start codes)."""
    images = {t: generate(_generator, walk(_start, _direction, t)) for t in positions}
    recognised = {}
    if _net is not None and column is not None:
        recognised = {t: recognition_rate(predict_labels(_net, images[t]), column, value) for t in positions}
    return images, recognised


@st.cache_data(max_entries=32, show_spinner="Finding the direction…")
def cached_direction(source_key: str, _codes: np.ndarray, _target: np.ndarray, method: str, attribute: str,
                     value: str):
    # source_key names the codes (bundle, mtime, where they came from): the arrays themselves are not hashed.
    return attribute_direction(_codes, _target, method, attribute, value)


def recognised_block(net_info, attributes_asked: dict, images: torch.Tensor) -> dict[str, float]:
    """attribute name -> share of images in which the feature network finds the requested value."""
    if net_info is None:
        return {}
    net, net_attributes, _ = net_info
    predicted = predict_labels(net, images)
    out = {}
    for attribute, value in attributes_asked.items():
        column = featurenet_column(net_attributes, attribute)
        if column is not None:
            out[attribute.name] = recognition_rate(predicted, column, attribute.values.index(value))
    return out


# --- conditional GAN -----------------------------------------------------------------------------------------

def conditional_page(bundle, net_info) -> None:
    conditions = bundle.conditions
    st.header("Ask for attributes")
    st.write("The generator takes a code z *and* the attributes you ask for. The codes below stay fixed, so "
             "whatever changes when you flip a switch is what the model learned that attribute looks like.")
    chosen: dict[str, str] = {}
    with st.container(border=True):
        cols = st.columns(min(len(conditions), 5))
        for k, a in enumerate(conditions):
            col = cols[k % len(cols)]
            if a.is_binary:
                if not isinstance(st.session_state.get(f"attr_cond_{a.name}", False), bool):
                    st.session_state[f"attr_cond_{a.name}"] = False
                chosen[a.name] = "yes" if col.toggle(a.name.replace("_", " "), key=f"attr_cond_{a.name}") else "no"
            else:
                if st.session_state.get(f"attr_cond_{a.name}") not in a.values:
                    st.session_state[f"attr_cond_{a.name}"] = a.values[0]
                chosen[a.name] = col.selectbox(a.name.replace("_", " "), a.values, key=f"attr_cond_{a.name}")
        left, right = st.columns(2)
        left.slider("images in the grid", 4, 64, step=4, key="attr_n")
        right.number_input("seed of the codes z", min_value=0, max_value=2**31 - 1, step=1, key="attr_seed")
    n, seed = int(st.session_state["attr_n"]), int(st.session_state["attr_seed"])
    z = sample_latents(bundle.prior, n, bundle.latent_dim, seed=seed)
    labels = condition_rows(conditions, chosen, n)
    images = torch_worker.run(generate_with, bundle.generator, z, labels=labels)
    asked = {a: chosen[a.name] for a in conditions}
    picture, numbers = st.columns([3, 2])
    picture.image(grid_jpeg(images), output_format="JPEG", width="stretch",
                  caption="; ".join(f"{a.name} = {v}" for a, v in asked.items()) + f"; {n} fixed codes")
    with numbers:
        st.subheader("Does the model deliver?")
        rates = recognised_block(net_info, asked, images)
        evaluated = ((bundle.metrics or {}).get("attribute_accuracy") or {}).get("attributes") or {}
        for a, value in asked.items():
            if a.name in rates:
                ref = evaluated.get(a.name, {}).get("accuracy")
                st.metric(f"{a.name} = {value}: recognised", f"{rates[a.name]:.0%}",
                          help="share of these images in which the feature network finds the requested value"
                          + (f"; evaluation over all values: {ref:.0%}" if isinstance(ref, (int, float)) else ""))
        if net_info is None:
            st.info("No feature network for this dataset, so nobody checks the pictures. "
                    + needs_featurenet_text(bundle))
        elif rates:
            worst = min(rates, key=rates.get)
            chance = {a.name: 1 / len(a.values) for a in conditions}
            st.write(f"The feature network finds every requested attribute in at least {rates[worst]:.0%} of these "
                     f"{n} images; the hardest is **{worst} = {chosen[worst]}** (chance would be "
                     f"{chance[worst]:.0%}).")

    st.header("Pairs: the same z, one attribute changed")
    st.write("The smile-conditional GAN lab's \"10 pairs\": each column is one code z generated twice, with only "
             "the chosen attribute different.")
    with st.container(border=True):
        a1, a2, a3, a4 = st.columns(4)
        names = [a.name for a in conditions]
        default_pair = "smiling" if "smiling" in names else names[0]
        st.session_state.setdefault("attr_pair_attr", default_pair)
        if st.session_state["attr_pair_attr"] not in names:
            st.session_state["attr_pair_attr"] = default_pair
        name = a1.selectbox("attribute", names, key="attr_pair_attr")
        attribute = conditions[names.index(name)]
        if attribute.is_binary:
            first, second = "no", "yes"
            a2.markdown(f"**{name}**: no vs yes")
        else:
            for key, default in (("attr_pair_first", attribute.values[0]), ("attr_pair_second", attribute.values[1])):
                if st.session_state.get(key) not in attribute.values:
                    st.session_state[key] = default
            first = a2.selectbox("first value", attribute.values, key="attr_pair_first")
            second = a3.selectbox("second value", attribute.values, key="attr_pair_second")
        a4.slider("pairs", 2, 16, step=1, key="attr_pairs")
    if first == second:
        st.warning("Both values are the same, so both rows are identical. Pick two different values.")
        return
    pairs_n = int(st.session_state["attr_pairs"])
    zp = sample_latents(bundle.prior, pairs_n, bundle.latent_dim, seed=seed + 1)
    pairs = attribute_pairs(bundle.generator, zp, conditions, chosen, name, first, second)
    st.image(labelled_rows([f"{name} = {first}", f"{name} = {second}"], [pairs.first_images, pairs.second_images]),
             width="stretch", caption="other attributes as set above: "
             + ", ".join(f"{k} = {v}" for k, v in chosen.items() if k != name))
    rates_first = recognised_block(net_info, {attribute: first}, pairs.first_images).get(name)
    rates_second = recognised_block(net_info, {attribute: second}, pairs.second_images).get(name)
    m1, m2, m3 = st.columns(3)
    m1.metric("change within a pair (per pixel)", f"{pairs.pair_change:.2g}")
    m2.metric("change between codes (per pixel)", f"{pairs.face_change:.2g}")
    m3.metric("attribute change vs changing z", f"{pairs.ratio:.0%}")
    if rates_first is not None and rates_second is not None:
        m1.metric(f"recognised as {name} = {first}", f"{rates_first:.0%}")
        m2.metric(f"recognised as {name} = {second}", f"{rates_second:.0%}")
    st.info(explain_pairs(pairs, rates_first, rates_second, 1 / len(attribute.values)))


# --- InfoGAN -------------------------------------------------------------------------------------------------

def infogan_page(bundle) -> None:
    layout = bundle.codes
    generator = bundle.generator
    st.header("Turn the codes")
    st.write("An InfoGAN is never told what hair or a smile is: it was only rewarded for making its extra codes "
             "readable from the image. Turn them and see what each one came to mean.")
    categories: dict[str, int] = {}
    continuous: dict[str, float] = {}
    with st.container(border=True):
        cols = st.columns(min(max(len(layout), 1), 4))
        for k, c in enumerate(layout):
            col = cols[k % len(cols)]
            key = f"attr_info_{c['name']}"
            if c["kind"] == "categorical":
                categories[c["name"]] = int(col.selectbox(c["name"], list(range(int(c["values"]))), key=key))
            else:
                st.session_state.setdefault(key, 0.0)
                continuous[c["name"]] = float(col.slider(f"{c['name']} (trained on {c['low']:g}..{c['high']:g})",
                                                         -2.0, 2.0, step=0.1, key=key))
        left, right = st.columns(2)
        left.slider("images in the grid", 4, 64, step=4, key="attr_n")
        right.number_input("seed of the codes z", min_value=0, max_value=2**31 - 1, step=1, key="attr_seed")
    n, seed = int(st.session_state["attr_n"]), int(st.session_state["attr_seed"])
    z = sample_latents(bundle.prior, n, bundle.latent_dim, seed=seed)
    images = torch_worker.run(generate_with, generator, z,
                              codes=info_codes(generator, layout, n, categories, continuous))
    setting = [f"{k} = {v}" for k, v in categories.items()] + [f"{k} = {v:+.1f}" for k, v in continuous.items()]
    st.image(grid_jpeg(images), output_format="JPEG", width="stretch", caption=", ".join(setting))
    outside = [k for k, v in continuous.items() if abs(v) > 1]
    if outside:
        st.warning(f"{', '.join(outside)} is outside [-1, 1], the range the model was trained on: it extrapolates.")

    st.header("One code at a time")
    names = [c["name"] for c in layout]
    code = st.selectbox("code to sweep", names, key="attr_info_sweep")
    zs = z[:8]
    labels, columns = code_sweep(generator, layout, zs, code, categories, continuous)
    st.image(labelled_rows(labels, columns), width="stretch",
             caption="each row is one value of the code; each column keeps its z")
    effects = []
    for c in layout:
        _, cols_c = code_sweep(generator, layout, zs, c["name"], categories, continuous)
        effects.append({"code": c["name"], "kind": c["kind"], "image change per step": round(sweep_change(cols_c), 4)})
    face = between_faces(images)
    table = pd.DataFrame(effects)
    st.dataframe(table, hide_index=True, key="attr_info_effects")
    strongest = max(effects, key=lambda e: e["image change per step"])
    step = strongest["image change per step"]
    st.info(f"Changing the code z changes the image by {face:.2g} per pixel. The code that matters most is "
            f"**{strongest['code']}**: one step of it changes the image by {step:.2g}, {step / face:.0%} of a change "
            "of z. A code whose change stays near 0 was ignored by the generator." if face > 0 else
            "All images in the grid are identical, so the codes cannot be compared.")


# --- directions (VAE, unconditional GAN) ---------------------------------------------------------------------

def labelled_codes(bundle, net_info):
    """(codes, labels, attributes, description, cache key) or None with a message shown."""
    mtime = mtime_of(bundle.path)
    latents = bundle.path / LATENTS_FILE
    if bundle.family == "vae" and latents.exists():
        held = cached_held_out(str(bundle.path), mtime, latents.stat().st_mtime)
        return (held.codes, held.labels, held.attributes,
                f"{len(held)} encoded held-out images with their true labels (latents.npz)",
                f"{bundle.path}:{mtime}:{latents.stat().st_mtime}:latents", held)
    if net_info is None:
        what = ("this VAE has no latents.npz yet (it is written when training finishes)"
                if bundle.family == "vae" else "an unconditional GAN's samples come without labels")
        st.info(f"To find attribute directions, the codes need labels, and {what}. This page then labels generated "
                "samples with the dataset's feature network, but there is none for this dataset. "
                + needs_featurenet_text(bundle))
        return None
    _, _, net_path = net_info
    st.slider("generated samples to label", 128, 2048, step=128, key="attr_label_n")
    n = int(st.session_state["attr_label_n"])
    z, labels, attributes = labelled_samples(str(bundle.path), mtime, str(net_path), mtime_of(net_path), n)
    return (z, labels, attributes, f"{n} generated samples labelled by the feature network",
            f"{bundle.path}:{mtime}:featurenet:{n}", None)


def directions_page(bundle, net_info) -> None:
    st.header("Attribute directions in latent space")
    st.write("An unconditional model has no switches, but its codes may still line up by attribute: the codes of "
             "smiling faces sit on one side. Find that direction and walk along it.")
    found = labelled_codes(bundle, net_info)
    if found is None:
        return
    codes, labels, attributes, description, source_key, held = found
    st.caption(f"Directions estimated from {description}.")
    if not attributes:
        st.info("These codes come without attribute labels, so there is no direction to find.")
        return
    names = [a.name for a in attributes]
    with st.container(border=True):
        c1, c2, c3 = st.columns(3)
        default = default_attribute(labels, attributes)
        if st.session_state.get("attr_dir_attr") not in names:
            st.session_state["attr_dir_attr"] = default
        name = c1.selectbox("attribute", names, key="attr_dir_attr")
        attribute = attributes[names.index(name)]
        if attribute.is_binary:
            value = "yes"
        else:
            if st.session_state.get("attr_dir_value") not in attribute.values:
                st.session_state["attr_dir_value"] = attribute.values[0]
            value = c1.selectbox("value (against all the others)", attribute.values, key="attr_dir_value")
        c2.radio("direction from", list(METHODS), key="attr_dir_method")
        c2.slider("walk as far as t =", 0.5, 4.0, step=0.25, key="attr_dir_t",
                  help="t = 1 moves a code by the gap between the average code with and without the attribute")
        c3.slider("images per row", 2, 12, step=1, key="attr_dir_faces")
        c3.number_input("seed of the start codes", min_value=0, max_value=2**31 - 1, step=1, key="attr_dir_seed")
        if held is not None and held.images is not None:
            c3.checkbox("start from encoded held-out images", key="attr_dir_real")
    target = attribute_target(labels, attributes, name, value)
    method = st.session_state["attr_dir_method"]
    try:
        direction = cached_direction(source_key, codes, target, method, name, value)
        other = cached_direction(source_key, codes, target, next(m for m in METHODS if m != method), name, value)
    except LatentExplorerError as exc:
        st.warning(f"{exc}.")
        return
    t_max, faces = float(st.session_state["attr_dir_t"]), int(st.session_state["attr_dir_faces"])
    seed = int(st.session_state["attr_dir_seed"])
    if held is not None and st.session_state.get("attr_dir_real") and held.images is not None:
        start = torch.from_numpy(held.codes[:max(faces, min(WALK_EVAL, len(held)))].copy())
        start_text, start_key = "encoded held-out images", "held-out"
    else:
        start = sample_latents(bundle.prior, max(faces, WALK_EVAL), bundle.latent_dim, seed=seed)
        start_text, start_key = f"codes from {bundle.prior.label}", f"seed {seed}"
    positions = walk_positions(t_max, 5)
    fine = walk_positions(t_max, 9)  # includes the 5 shown positions
    column = featurenet_column(net_info[1], attribute) if net_info is not None else None
    net_key = f"{net_info[2]}:{mtime_of(net_info[2])}" if net_info is not None else "no featurenet"
    walked, recognised = cached_walk(f"{source_key}|{method}|{name}={value}|{start_key}|{len(start)}|{net_key}",
                                     tuple(sorted(set(positions) | set(fine))), bundle.generator, direction, start,
                                     net_info[0] if net_info is not None else None, column,
                                     attribute.values.index(value))
    st.image(labelled_rows([f"t = {t:+g}" for t in positions], [walked[t][:faces] for t in positions]),
             width="stretch", caption=f"each column starts from one of the {start_text} and walks along the "
             f"direction of {name} = {value}")
    photo_hooks.walk_photos(bundle, direction, positions, f"{name} = {value}")

    norms = {t: float(walk(start, direction, t).double().norm(dim=1).mean()) for t in fine}
    prior_norm = float(sample_latents(bundle.prior, 512, bundle.latent_dim, seed=1).double().norm(dim=1).mean())
    left, right = st.columns([3, 2])
    with left:
        if recognised:
            st.plotly_chart(walk_figure(fine, [recognised[t] for t in fine], [norms[t] for t in fine],
                                        f"{name} = {value}", prior_norm), key="attr_walk_plot")
        elif net_info is None:
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
    st.info(explain_direction(direction, recognised or None, norms, prior_norm))


# --- the page ------------------------------------------------------------------------------------------------

for key, value in DEFAULTS.items():
    st.session_state.setdefault(key, value)

st.title("Attributes")
st.write("Where do hair colour, a smile or glasses live in a generative model? Ask a conditional GAN for them, "
         "or find the direction along which they change in the latent space of a VAE or a GAN.")

bundle = bundles.sidebar_picker()
if bundle is None:
    st.stop()
st.sidebar.caption(f"Latent dimension {bundle.latent_dim}; trained on codes from {bundle.prior.label}.")
net_info = featurenet_for(bundle)
try:
    if bundle.family == "cgan":
        conditional_page(bundle, net_info)
    elif bundle.family == "infogan":
        infogan_page(bundle)
    elif bundle.family in ("vae", "dcgan"):
        directions_page(bundle, net_info)
    else:
        st.info(f"**{bundle.name}** ({bundle.family}) has no generator to ask for attributes: this page does not "
                "apply to it.")
except LatentExplorerError as exc:
    st.error(f"{exc}")
