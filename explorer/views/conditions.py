"""Page: ask a conditional GAN for attributes (hair colour, a smile, glasses...), and the "10 pairs": the same z
generated twice with one attribute changed, checked by the dataset's feature network."""

from dataclasses import dataclass

import streamlit as st

from explorer.core import links as page_links
from explorer.core import torch_worker
from explorer.core.downloads import file_stem, grid_downloads, picture_downloads
from explorer.core.featurenets import featurenet_for, needs_featurenet_text
from explorer.core.page import preamble, said_on_error
from explorer.logic import links
from explorer.logic.conditions import conditional_grid, explain_pairs, seeded_pairs
from explorer.logic.figures import grid_jpeg, labelled_rows

DEFAULTS = {"attr_n": 16, "attr_seed": 0, "attr_pairs": 10}
LINKED = [links.whole("attr_n", 4, 64, 4, name="n"), links.seed("attr_seed", name="seed"),
          links.whole("attr_pairs", 2, 16, name="pairs")]


def link_conditions(conditions) -> None:
    """Each attribute asked for, and the pair's attribute and values, travel in the URL (?smiling=true)."""
    fields = [links.flag(f"attr_cond_{a.name}", name=a.name) if a.is_binary else
              links.choice(f"attr_cond_{a.name}", a.values, name=a.name) for a in conditions]
    values = sorted({v for a in conditions for v in a.values})
    fields += [links.choice("attr_pair_attr", [a.name for a in conditions], name="pair"),
               links.choice("attr_pair_first", values, name="first"),
               links.choice("attr_pair_second", values, name="second")]
    page_links.adopt(fields, {f"attr_cond_{a.name}": False if a.is_binary else a.values[0] for a in conditions})


@dataclass(frozen=True)
class GridControls:
    chosen: dict[str, str]  # condition name -> the value asked for
    n: int
    seed: int


@dataclass(frozen=True)
class PairControls:
    attribute: str
    first: str
    second: str
    count: int


def grid_controls(conditions) -> GridControls:
    chosen: dict[str, str] = {}
    state = st.session_state
    with st.container(border=True):
        cols = st.columns(min(len(conditions), 5))
        for k, a in enumerate(conditions):
            col, key = cols[k % len(cols)], f"attr_cond_{a.name}"
            if a.is_binary:
                if not isinstance(state.get(key, False), bool):
                    state[key] = False
                chosen[a.name] = "yes" if col.toggle(a.name.replace("_", " "), key=key) else "no"
            else:
                if state.get(key) not in a.values:
                    state[key] = a.values[0]
                chosen[a.name] = col.selectbox(a.name.replace("_", " "), a.values, key=key)
        left, right = st.columns(2)
        n = left.slider("images in the grid", 4, 64, step=4, key="attr_n")
        seed = right.number_input("seed of the codes z", min_value=0, max_value=2**31 - 1, step=1, key="attr_seed")
    return GridControls(chosen, int(n), int(seed))


def pair_controls(conditions) -> PairControls:
    state = st.session_state
    with st.container(border=True):
        a1, a2, a3, a4 = st.columns(4)
        names = [a.name for a in conditions]
        default_pair = "smiling" if "smiling" in names else names[0]
        state.setdefault("attr_pair_attr", default_pair)
        if state["attr_pair_attr"] not in names:
            state["attr_pair_attr"] = default_pair
        name = a1.selectbox("attribute", names, key="attr_pair_attr")
        attribute = conditions[names.index(name)]
        if attribute.is_binary:
            first, second = "no", "yes"
            a2.markdown(f"**{name}**: no vs yes")
        else:
            for key, default in (("attr_pair_first", attribute.values[0]), ("attr_pair_second", attribute.values[1])):
                if state.get(key) not in attribute.values:
                    state[key] = default
            first = a2.selectbox("first value", attribute.values, key="attr_pair_first")
            second = a3.selectbox("second value", attribute.values, key="attr_pair_second")
        count = a4.slider("pairs", 2, 16, step=1, key="attr_pairs")
    return PairControls(name, first, second, int(count))


def ask(bundle, net) -> None:
    conditions = bundle.conditions
    link_conditions(conditions)
    grid = grid_controls(conditions)
    chosen, n = grid.chosen, grid.n
    images = torch_worker.shared(conditional_grid, bundle, chosen, n, grid.seed).images
    asked = {a: chosen[a.name] for a in conditions}
    picture, numbers = st.columns([3, 2])
    picture.image(grid_jpeg(images), output_format="JPEG", width="stretch",
                  caption="; ".join(f"{a.name} = {v}" for a, v in asked.items()) + f"; {n} fixed codes")
    with picture:
        grid_downloads(images, file_stem(bundle.path.parent.name, bundle.path.name,
                                         *(f"{a.name}-{v}" for a, v in asked.items()), f"seed{grid.seed}"),
                       "conditions_download")
    with numbers:
        st.subheader("Does the model deliver?")
        rates = torch_worker.shared(net.recognised, asked, images) if net is not None else {}
        evaluated = ((bundle.metrics or {}).get("attribute_accuracy") or {}).get("attributes") or {}
        for a, value in asked.items():
            if a.name in rates:
                ref = evaluated.get(a.name, {}).get("accuracy")
                st.metric(f"{a.name} = {value}: recognised", f"{rates[a.name]:.0%}",
                          help="share of these images in which the feature network finds the requested value"
                          + (f"; evaluation over all values: {ref:.0%}" if isinstance(ref, (int, float)) else ""))
        if net is None:
            st.info("No feature network for this dataset, so nobody checks the pictures. "
                    + needs_featurenet_text(bundle))
        elif rates:
            worst = min(rates, key=rates.get)
            chance = {a.name: 1 / len(a.values) for a in conditions}
            if rates[worst] >= 1.0:
                st.write(f"The feature network finds every requested attribute in all {n} of these images.")
            else:
                st.write(f"The feature network finds every requested attribute in at least {rates[worst]:.0%} of "
                         f"these {n} images; the hardest is **{worst} = {chosen[worst]}** (chance would be "
                         f"{chance[worst]:.0%}).")
    pairs_section(bundle, net, grid)


def pairs_section(bundle, net, grid: GridControls) -> None:
    st.header("Pairs: the same z, one attribute changed")
    st.write("The smile-conditional GAN lab's \"10 pairs\": each column is one code z generated twice, with only "
             "the chosen attribute different.")
    conditions = bundle.conditions
    pair = pair_controls(conditions)
    name, first, second = pair.attribute, pair.first, pair.second
    if first == second:
        st.warning("Both values are the same, so both rows are identical. Pick two different values.")
        return
    pairs = torch_worker.shared(seeded_pairs, bundle, pair.count, grid.seed + 1, grid.chosen, name, first, second)
    st.image(labelled_rows([f"{name} = {first}", f"{name} = {second}"], [pairs.first_images, pairs.second_images]),
             width="stretch", caption="other attributes as set above: "
             + ", ".join(f"{k} = {v}" for k, v in grid.chosen.items() if k != name))
    picture_downloads(lambda scale: labelled_rows([f"{name} = {first}", f"{name} = {second}"],
                                                  [pairs.first_images, pairs.second_images], scale=scale),
                      file_stem(bundle.path.parent.name, bundle.path.name, f"{name}-{first}-vs-{second}",
                                f"seed{grid.seed + 1}"), "pairs_download")
    attribute = next(a for a in conditions if a.name == name)
    rate_first = rate_second = None
    if net is not None:
        rate_first = torch_worker.shared(net.recognised, {attribute: first}, pairs.first_images).get(name)
        rate_second = torch_worker.shared(net.recognised, {attribute: second}, pairs.second_images).get(name)
    m1, m2, m3 = st.columns(3)
    m1.metric("change within a pair (per pixel)", f"{pairs.pair_change:.2g}")
    m2.metric("change between codes (per pixel)", f"{pairs.face_change:.2g}")
    m3.metric("attribute change vs changing z", f"{pairs.ratio:.0%}")
    if rate_first is not None and rate_second is not None:
        m1.metric(f"recognised as {name} = {first}", f"{rate_first:.0%}")
        m2.metric(f"recognised as {name} = {second}", f"{rate_second:.0%}")
    st.info(explain_pairs(pairs, rate_first, rate_second, 1 / len(attribute.values)))


bundle = preamble("Ask for attributes",
                  "The generator takes a code z *and* the attributes you ask for. The codes below stay fixed, so "
                  "whatever changes when you flip a switch is what the model learned that attribute looks like.",
                  "conditions", DEFAULTS, linked=LINKED)
said_on_error(ask, bundle, featurenet_for(bundle))
