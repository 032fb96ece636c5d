"""Page: walk from one code to another in a straight line and along the sphere, and compare the code norms."""

from dataclasses import dataclass

import streamlit as st

from explorer.core import photo_hooks, torch_worker
from explorer.core.downloads import file_stem, picture_downloads
from explorer.core.page import preamble
from explorer.logic import links
from explorer.logic.diagnostics import nonfinite_images_sentence, prior_norm_reference
from explorer.logic.figures import crossed_out_note, labelled_rows, path_norms_figure
from explorer.logic.interpolate import end_code, explain_paths, interpolation
from training.errors import LatentExplorerError
from training.latent.priors import LatentDistribution

DEFAULTS = {"interp_seed_a": 0, "interp_seed_b": 1, "interp_steps": 9}
LINKED = [links.seed("interp_seed_a", name="from"), links.seed("interp_seed_b", name="to"),
          links.whole("interp_steps", 3, 12, name="steps")]


@st.cache_data(max_entries=16)
def cached_reference(prior: LatentDistribution, dim: int):
    return prior_norm_reference(prior, dim)


@dataclass(frozen=True)
class PathControls:
    seed_a: int  # the start code's seed
    seed_b: int  # the end code's
    steps: int  # images along each path


def controls() -> PathControls:
    with st.container(border=True):
        a, b, c = st.columns(3)
        seed_a = a.number_input("seed of the start code", min_value=0, max_value=2**31 - 1, step=1,
                                key="interp_seed_a")
        seed_b = b.number_input("seed of the end code", min_value=0, max_value=2**31 - 1, step=1, key="interp_seed_b")
        steps = c.slider("images along each path", 3, 12, step=1, key="interp_steps")
    return PathControls(int(seed_a), int(seed_b), int(steps))


bundle = preamble("Interpolation: straight line or great circle?",
                  "Walking in a straight line between two codes passes through the prior's nearly empty middle, "
                  "where codes are much shorter than any the generator trained on; walking along the sphere does not.",
                  "interpolate", DEFAULTS, linked=LINKED)
chosen = controls()
seed_a, seed_b, steps = chosen.seed_a, chosen.seed_b, chosen.steps
ends = st.columns(2)
z0, start = photo_hooks.endpoint(bundle, end_code(bundle, seed_a), f"seed {seed_a}", key="interp_photo_a",
                                 prompt="start at", where=ends[0])
z1, end = photo_hooks.endpoint(bundle, end_code(bundle, seed_b), f"seed {seed_b}", key="interp_photo_b",
                               prompt="end at", where=ends[1])
if start == end:
    st.warning("Both ends use the same seed, so both paths stand still. Pick two different seeds."
               if start == f"seed {seed_a}" else f"Both ends are {start}, so both paths stand still. Pick two others.")

prior = bundle.prior.label
reference = cached_reference(bundle.prior, bundle.latent_dim)
try:
    walked = torch_worker.shared(interpolation, bundle, seed_a, seed_b, steps, reference, z0, z1)
except LatentExplorerError as exc:
    st.error(f"{exc}. Pick other seeds.")
    st.stop()
comparison = walked.comparison

st.subheader(f"From {start} to {end} in {steps} steps")
broken = walked.nonfinite_images
if broken:
    st.error(nonfinite_images_sentence(broken, 2 * steps, "images along the two paths"))
if broken < 2 * steps:
    st.image(labelled_rows(["linear", "spherical"], [walked.images["linear"], walked.images["spherical"]]),
             width="stretch", caption=crossed_out_note(broken, 2 * steps, "images"))
    picture_downloads(lambda scale: labelled_rows(["linear", "spherical"],
                                                  [walked.images["linear"], walked.images["spherical"]], scale=scale),
                      file_stem(bundle.path.parent.name, bundle.path.name, "interpolation", f"seeds{start}-{end}",
                                f"{steps}-steps"), "interp_download",
                      numbers={"step": list(range(steps)), "linear code norm": list(walked.code_norms("linear")),
                               "spherical code norm": list(walked.code_norms("spherical"))})
norm_text = {m: "  ".join(f"{v:.1f}" for v in walked.code_norms(m)) for m in walked.paths}
st.caption(f"Code norm of each image, left to right. Linear: {norm_text['linear']}. "
           f"Spherical: {norm_text['spherical']}.")

left, right = st.columns([3, 2])
with left:
    st.plotly_chart(path_norms_figure(comparison.t, comparison.linear_norms, comparison.spherical_norms, reference,
                                      prior), key="interp_norms")
with right:
    st.subheader("The numbers")
    m1, m2 = st.columns(2)
    for col, label, value, dip in ((m1, "shortest code, linear", comparison.linear_min, comparison.linear_dip),
                                   (m2, "shortest code, spherical", comparison.spherical_min,
                                    comparison.spherical_dip)):
        # A dip takes the path off the prior's norms, a loss (red, down); "no dip" is no change at all (no arrow).
        dipped = dip >= 0.005
        # Short enough to fit the column at 150% zoom (the sentence below says against which end).
        col.metric(label, f"{value:.2f}", delta=f"{-dip:.0%} vs the ends" if dipped else "no dip",
                   delta_color="normal" if dipped else "off", delta_arrow="auto" if dipped else "off")
    m1.metric("angle between the ends", f"{comparison.angle_degrees:.0f}°")
    m2.metric(f"typical {prior} norm", f"{reference.mean:.2f}", delta=f"± {reference.std:.2f}", delta_color="off",
              delta_arrow="off", help=f"Mean ± standard deviation of the norms of {prior} codes.")
    st.info(explain_paths(comparison))

with st.expander("How the two paths are built"):
    st.markdown(
        """
* **Linear**: z(t) = (1 − t)·z₀ + t·z₁. Two random codes in many dimensions are almost perpendicular, so the
  midpoint is only about 1/√2 ≈ 71% as long as the ends: a length the training prior almost never produces.
* **Spherical (slerp)**: the direction turns along the great circle from z₀ to z₁ at constant speed while the
  length moves linearly from |z₀| to |z₁|, so every code keeps a typical length.
"""
    )
