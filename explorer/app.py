"""Latent Explorer: the Streamlit entry point. Run with `streamlit run explorer/app.py`."""

import sys
from pathlib import Path

# `streamlit run explorer/app.py` puts explorer/ on the path, not the repo root that holds `training`.
ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import streamlit as st  # noqa: E402

from explorer.core import links  # noqa: E402
from explorer.core.memory import limit_malloc_arenas  # noqa: E402
from explorer.core.page import say_when_queued  # noqa: E402
from explorer.logic.figures import PIXELATED_CSS  # noqa: E402

limit_malloc_arenas()  # once per process would do; repeating it on each run costs nothing

# The tab's icon stays an emoji: Streamlit draws it as an inline SVG, where a Material icon favicon is fetched from
# fonts.gstatic.com. The navigation uses Material icons: their font ships with Streamlit, where emoji need the
# machine's emoji font (a lab PC without one shows empty boxes).
st.set_page_config(page_title="Latent Explorer", page_icon="🧭", layout="wide")
# Sample grids travel at their native size; the browser enlarges them with nearest neighbour.
st.html(PIXELATED_CSS)
# A page whose pictures wait behind other sessions' requests says so where they will appear.
say_when_queued()

# Sections follow the lesson path; expanded=True keeps every page in view (collapsed, Streamlit hides all but ten
# behind "View more", and the pages a class reaches last were the hidden ones).
SECTIONS = {
    "The central lesson": [
        st.Page("views/sample.py", title="Sample the latent space", icon=":material/casino:", default=True),
        st.Page("views/sweep.py", title="Mean sweep", icon=":material/trending_down:"),
        st.Page("views/interpolate.py", title="Interpolation", icon=":material/linear_scale:"),
    ],
    "Attributes": [
        st.Page("views/conditions.py", title="Ask for attributes", icon=":material/theater_comedy:"),
        st.Page("views/codes.py", title="InfoGAN codes", icon=":material/tune:"),
        st.Page("views/directions.py", title="Attribute directions", icon=":material/north_east:"),
        st.Page("views/arithmetic.py", title="Face arithmetic", icon=":material/calculate:"),
    ],
    "VAE and GAN": [
        st.Page("views/vae_map.py", title="VAE latent map", icon=":material/map:"),
        st.Page("views/compare.py", title="VAE vs GAN", icon=":material/balance:"),
    ],
    "Training": [
        st.Page("views/replay.py", title="Training replay", icon=":material/history:"),
        st.Page("views/train_live.py", title="Train live", icon=":material/radio_button_checked:"),
        st.Page("views/experiments.py", title="Experiments", icon=":material/science:"),
    ],
    "Bring your own": [
        st.Page("views/upload.py", title="Bring your own generator", icon=":material/upload:"),
        st.Page("views/your_photo.py", title="Your photo in the latent space", icon=":material/add_a_photo:"),
    ],
}

# Every page's settings travel in the URL (a link to this view): read before the page, written after it, also when
# the page stops early.
page = st.navigation(SECTIONS, expanded=True)
links.begin()
try:
    page.run()
finally:
    links.publish()
