"""Page: turn an InfoGAN's codes, learned without labels, and see what each one came to mean."""

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from explorer.core import links as page_links
from explorer.core import torch_worker
from explorer.core.downloads import file_stem, grid_downloads, picture_downloads
from explorer.core.page import preamble, said_on_error
from explorer.logic import links
from explorer.logic.codes import CodeSetting, code_effects, code_grid
from explorer.logic.figures import grid_jpeg, labelled_rows

DEFAULTS = {"attr_n": 16, "attr_seed": 0}
LINKED = [links.whole("attr_n", 4, 64, 4, name="n"), links.seed("attr_seed", name="seed")]
CODE_RANGE = (-2.0, 2.0, 0.1)  # a continuous code's slider


def link_codes(layout: list[dict]) -> None:
    """Each code's value and the swept code travel in the URL (?c1=3&c2=0.5)."""
    fields = [links.choice(f"attr_info_{c['name']}", range(int(c["values"])), name=c["name"])
              if c["kind"] == "categorical" else links.number(f"attr_info_{c['name']}", *CODE_RANGE, name=c["name"])
              for c in layout]
    fields.append(links.choice("attr_info_sweep", [c["name"] for c in layout], name="sweep"))
    page_links.adopt(fields, {f"attr_info_{c['name']}": 0 if c["kind"] == "categorical" else 0.0 for c in layout})


@dataclass(frozen=True)
class CodeControls:
    setting: CodeSetting
    n: int
    seed: int


def controls(layout: list[dict]) -> CodeControls:
    categories: dict[str, int] = {}
    continuous: dict[str, float] = {}
    with st.container(border=True):
        cols = st.columns(min(max(len(layout), 1), 4))
        for k, c in enumerate(layout):
            col, key = cols[k % len(cols)], f"attr_info_{c['name']}"
            if c["kind"] == "categorical":
                categories[c["name"]] = int(col.selectbox(c["name"], list(range(int(c["values"]))), key=key))
            else:
                st.session_state.setdefault(key, 0.0)
                continuous[c["name"]] = float(col.slider(f"{c['name']} (trained on {c['low']:g}..{c['high']:g})",
                                                         *CODE_RANGE[:2], step=CODE_RANGE[2], key=key))
        left, right = st.columns(2)
        n = left.slider("images in the grid", 4, 64, step=4, key="attr_n")
        seed = right.number_input("seed of the codes z", min_value=0, max_value=2**31 - 1, step=1, key="attr_seed")
    return CodeControls(CodeSetting(categories, continuous), int(n), int(seed))


def turn_codes(bundle) -> None:
    layout = bundle.codes
    link_codes(layout)
    chosen = controls(layout)
    grid = torch_worker.shared(code_grid, bundle, chosen.n, chosen.seed, chosen.setting)
    st.image(grid_jpeg(grid.images), output_format="JPEG", width="stretch", caption=chosen.setting.caption())
    grid_downloads(grid.images, file_stem(bundle.path.parent.name, bundle.path.name, "codes", f"seed{chosen.seed}"),
                   "codes_download")
    outside = chosen.setting.outside_training()
    if outside:
        st.warning(f"{', '.join(outside)} is outside [-1, 1], the range the model was trained on: it extrapolates.")

    st.header("One code at a time")
    swept = st.selectbox("code to sweep", [c["name"] for c in layout], key="attr_info_sweep")
    effects = torch_worker.shared(code_effects, bundle, grid, chosen.setting, swept)
    st.image(labelled_rows(effects.sweep_labels, effects.sweep_columns), width="stretch",
             caption="each row is one value of the code; each column keeps its z")
    st.dataframe(pd.DataFrame(effects.effects), hide_index=True, key="attr_info_effects")
    picture_downloads(lambda scale: labelled_rows(effects.sweep_labels, effects.sweep_columns, scale=scale),
                      file_stem(bundle.path.parent.name, bundle.path.name, f"sweep-{swept}", f"seed{chosen.seed}"),
                      "codes_sweep_download", numbers=effects.effects)
    st.info(effects.explain())


bundle = preamble("Turn the codes",
                  "An InfoGAN is never told what hair or a smile is: it was only rewarded for making its extra codes "
                  "readable from the image. Turn them and see what each one came to mean.",
                  "codes", DEFAULTS, linked=LINKED)
said_on_error(turn_codes, bundle)
