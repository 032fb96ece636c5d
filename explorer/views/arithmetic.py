"""Page: face arithmetic on latent codes (the DCGAN paper's smiling woman - neutral woman + neutral man)."""

import streamlit as st
import torch

from explorer.core import torch_worker
from explorer.core.downloads import file_stem, picture_downloads
from explorer.core.featurenets import featurenet_for, needs_featurenet_text
from explorer.core.page import preamble, said_on_error
from explorer.logic import links
from explorer.logic.arithmetic import (
    EXEMPLARS,
    NOISE,
    SUCCESS_DRAWS,
    Analogy,
    default_analogy,
    explain,
    label_pool,
    paper_figures,
    success_rate,
    verdict,
    work_example,
)
from explorer.logic.figures import labelled_rows
from training.errors import LatentExplorerError

POOL = 1024  # generated samples the feature network labels, once per model for every session
OWN = "your own analogy"
DEFAULTS = {"arith_draw_A": 0, "arith_draw_B": 0, "arith_draw_C": 0, "arith_noise_seed": 0}
# The analogy's attributes and values depend on the feature network: the page checks them against what it offers.
LINKED = [links.choice(key, None, name=key.removeprefix("arith_"))
          for key in ("arith_figure", "arith_change", "arith_change_to", "arith_change_from", "arith_keep",
                      "arith_keep_from", "arith_keep_to")]
LINKED += [links.seed(f"arith_draw_{w}", name=f"draw_{w}") for w in "ABC"] + [links.seed("arith_noise_seed",
                                                                                          name="noise_seed")]


def own_analogy(attributes, default: Analogy) -> Analogy:
    """Two attributes and their values, chosen on the page (defaults: the two the samples split most evenly)."""
    names = [a.name for a in attributes]
    state = st.session_state
    c1, c2 = st.columns(2)
    for key, value in (("arith_change", default.change), ("arith_keep", default.keep)):
        if state.get(key) not in names:
            state[key] = value
    change = c1.selectbox("attribute that A has and B, C lack", names, key="arith_change")
    keep = c2.selectbox("attribute that C changes", [n for n in names if n != change] or names, key="arith_keep")
    values = {a.name: list(a.values) for a in attributes}

    def value_box(column, label, name, key, preferred, position):
        if state.get(key) not in values[name]:
            state[key] = preferred if preferred in values[name] else values[name][position]
        return column.selectbox(label, values[name], key=key)

    same_change, same_keep = change == default.change, keep == default.keep
    change_to = value_box(c1, f"{change} in A", change, "arith_change_to", same_change and default.change_to, -1)
    change_from = value_box(c1, f"{change} in B and C", change, "arith_change_from",
                            same_change and default.change_from, 0)
    keep_from = value_box(c2, f"{keep} in A and B", keep, "arith_keep_from", same_keep and default.keep_from, 0)
    keep_to = value_box(c2, f"{keep} in C", keep, "arith_keep_to", same_keep and default.keep_to, -1)
    return Analogy(change, change_to, change_from, keep, keep_from, keep_to)


def chosen_analogy(attributes, pool) -> Analogy:
    figures = paper_figures(attributes)
    titles = [f.title for f in figures] + [OWN]
    if st.session_state.get("arith_figure") not in titles:
        st.session_state["arith_figure"] = titles[0]
    title = st.radio("analogy", titles, key="arith_figure",
                     help="The first ones are the DCGAN paper's figures, where the feature network predicts their "
                          "attributes.")
    if title != OWN:
        return next(f.analogy for f in figures if f.title == title)
    analogy = own_analogy(attributes, default_analogy(pool))
    if analogy.change == analogy.keep:
        st.warning("Pick two different attributes.")
        st.stop()
    if analogy.change_to == analogy.change_from or analogy.keep_from == analogy.keep_to:
        st.warning("Each attribute needs two different values, or there is nothing to add or subtract.")
        st.stop()
    return analogy


def redraw_buttons() -> None:
    state = st.session_state
    cols = st.columns(4)
    if cols[0].button("Re-draw all exemplars", key="arith_redraw"):
        for which in "ABC":
            state[f"arith_draw_{which}"] += 1
    for column, which in zip(cols[1:], "ABC"):
        if column.button(f"Swap the exemplars of {which}", key=f"arith_swap_{which}"):
            state[f"arith_draw_{which}"] += 1


def arithmetic(bundle, net) -> None:
    with st.spinner(f"Labelling {POOL} generated samples with the feature network (once per model)…"):
        pool = torch_worker.shared(label_pool, bundle, net, POOL)
    analogy = chosen_analogy(net.attributes, pool)
    st.markdown(f"**A - B + C** = {analogy.equation}, expected: **{analogy.describe('D')}**")
    redraw_buttons()
    state = st.session_state
    draws = {w: int(state[f"arith_draw_{w}"]) for w in "ABC"}
    try:
        with st.spinner("Averaging, adding and decoding…"):
            result = torch_worker.shared(work_example, bundle, net, pool, analogy, draws,
                                         int(state["arith_noise_seed"]))
    except LatentExplorerError as exc:
        st.warning(f"No arithmetic for this analogy on this model: {exc}. Pick other values or another analogy.")
        return
    left, right = st.columns([3, 2])
    with left:
        # Short row labels: the picture is shrunk to the column, and long ones became unreadable.
        st.image(labelled_rows(["A", "B", "C"], [result.exemplar_images[w] for w in "ABC"]), width="stretch",
                 caption=f"{EXEMPLARS} generated samples per concept, found by the feature network: "
                         + "; ".join(f"{w}: {analogy.describe(w)}" for w in "ABC"))
        st.image(labelled_rows(["="], [torch.cat([result.average_images, result.result_images[:1]])]),
                 width="stretch", caption="the averages of A, B and C decoded, then A - B + C")
    with right:
        st.image(labelled_rows(["", "", ""], [result.result_images[i * 3:(i + 1) * 3] for i in range(3)]),
                 width="stretch", caption=f"the result (top left) and 8 codes around it, each coordinate moved by "
                                          f"up to ±{NOISE}, as in the paper's 3x3")
        st.number_input("seed of the noise", min_value=0, max_value=2**31 - 1, step=1, key="arith_noise_seed")
    rows = {"average of A": "A", "average of B": "B", "average of C": "C", "A - B + C": "result",
            "its 8 neighbours (mean)": "neighbours"}
    table = {"code": list(rows),
             f"P({analogy.change} = {analogy.change_to})": [result.change_probability[k] for k in rows.values()],
             f"P({analogy.keep} = {analogy.keep_to})": [result.keep_probability[k] for k in rows.values()],
             f"P({analogy.describe('D')})": [result.expected_probability[k] for k in rows.values()]}
    st.dataframe({name: column if name == "code" else [f"{p:.0%}" for p in column] for name, column in table.items()},
                 hide_index=True, width="stretch")
    labels = ["A", "B", "C", "means, A-B+C", "A-B+C, noisy"]
    picture_downloads(lambda scale: labelled_rows(labels, [*(result.exemplar_images[w] for w in "ABC"),
                                                           torch.cat([result.average_images, result.result_images[:1]]),
                                                           result.result_images], scale=scale),
                      file_stem(bundle.path.parent.name, bundle.path.name, "arithmetic", analogy.change,
                                analogy.keep, *(f"draw{draws[w]}" for w in "ABC")), "arith_download", numbers=table)
    with st.spinner(f"Doing the arithmetic for {SUCCESS_DRAWS} random draws of exemplars…"):
        rate = torch_worker.shared(success_rate, bundle, net, pool, analogy)
    m1, m2, m3 = st.columns(3)
    m1.metric(f"results that are {analogy.describe('D')}", f"{rate.rate:.0%}",
              help=f"over {rate.draws} random draws of {EXEMPLARS} exemplars per concept")
    m2.metric("C's own average", f"{rate.c_rate:.0%}", help="the same draws, C's average alone: what the "
              "subtraction and addition add")
    m3.metric("all generated samples", f"{rate.base_rate:.0%}", help=f"of {POOL} samples from the prior")
    (st.success if verdict(rate) == "works" else st.warning)(explain(result, rate))


bundle = preamble("Face arithmetic",
                  "Radford, Metz and Chintala (2016) averaged the codes of three smiling women, three neutral women "
                  "and three neutral men, and found that smiling woman - neutral woman + neutral man decodes to a "
                  "smiling man. Here the dataset's feature network finds the exemplars among generated samples, and "
                  "says with numbers whether the arithmetic works on this model.",
                  "arithmetic", DEFAULTS, linked=LINKED)
net = featurenet_for(bundle)
if net is None:
    st.info("This page needs the dataset's feature network to find samples with each concept. "
            + needs_featurenet_text(bundle))
elif len(net.attributes) < 2:
    st.info("Face arithmetic needs two attributes (one to add, one to swap), and this dataset's feature network "
            f"predicts {len(net.attributes)}: {', '.join(a.name for a in net.attributes) or 'none'}.")
else:
    said_on_error(arithmetic, bundle, net)
