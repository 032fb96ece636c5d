"""Page: walk from one code to another in a straight line and along the sphere, and compare the code norms."""

import json

import streamlit as st
import torch

from explorer import bundles, photo_hooks, torch_worker
from explorer.diagnostics import generate, nonfinite_count, nonfinite_images_sentence, prior_norm_reference
from explorer.figures import crossed_out_note, labelled_rows, path_norms_figure
from explorer.interpolation import compare_paths, explain_paths, interpolate
from training.errors import LatentExplorerError
from training.latent import sample_latents

DEFAULTS = {"interp_seed_a": 0, "interp_seed_b": 1, "interp_steps": 9}


@st.cache_data(max_entries=16)
def cached_reference(prior_json: str, dim: int):
    from training.latent import LatentDistribution

    return prior_norm_reference(LatentDistribution.from_json(json.loads(prior_json)), dim)


for key, value in DEFAULTS.items():
    st.session_state.setdefault(key, value)

st.title("Interpolation: straight line or great circle?")
st.write("Walking in a straight line between two codes passes through the prior's nearly empty middle, "
         "where codes are much shorter than any the generator trained on; walking along the sphere does not.")

bundle = bundles.unconditional_picker()

with st.container(border=True):
    a, b, c = st.columns(3)
    a.number_input("seed of the start code", min_value=0, max_value=2**31 - 1, step=1, key="interp_seed_a")
    b.number_input("seed of the end code", min_value=0, max_value=2**31 - 1, step=1, key="interp_seed_b")
    c.slider("images along each path", 3, 12, step=1, key="interp_steps")

seed_a, seed_b = int(st.session_state["interp_seed_a"]), int(st.session_state["interp_seed_b"])
steps = int(st.session_state["interp_steps"])
z0 = sample_latents(bundle.prior, 1, bundle.latent_dim, seed=seed_a)[0]
z1 = sample_latents(bundle.prior, 1, bundle.latent_dim, seed=seed_b)[0]
z0, start = photo_hooks.endpoint(bundle, z0, f"seed {seed_a}", key="interp_photo_a", prompt="start at", where=a)
z1, end = photo_hooks.endpoint(bundle, z1, f"seed {seed_b}", key="interp_photo_b", prompt="end at", where=b)
if torch.equal(z0, z1):
    st.warning("Both ends use the same seed, so both paths stand still. Pick two different seeds."
               if start == f"seed {seed_a}" else f"Both ends are {start}, so both paths stand still. Pick two others.")

reference = cached_reference(json.dumps(bundle.prior.to_json()), bundle.latent_dim)
try:
    comparison = compare_paths(z0, z1, reference, bundle.prior.label)
    paths = {method: interpolate(z0, z1, steps, method) for method in ("linear", "spherical")}
except LatentExplorerError as exc:
    st.error(f"{exc}. Pick other seeds.")
    st.stop()
images = {method: torch_worker.run(generate, bundle.generator, path) for method, path in paths.items()}

st.subheader(f"From {start} to {end} in {steps} steps")
broken = sum(nonfinite_count(x) for x in images.values())
if broken:
    st.error(nonfinite_images_sentence(broken, 2 * steps, "images along the two paths"))
if broken < 2 * steps:
    st.image(labelled_rows(["linear", "spherical"], [images["linear"], images["spherical"]]), width="stretch",
             caption=crossed_out_note(broken, 2 * steps, "images"))
norm_text = {m: "  ".join(f"{v:.1f}" for v in p.double().norm(dim=1).tolist()) for m, p in paths.items()}
st.caption(f"Code norm of each image, left to right. Linear: {norm_text['linear']}. "
           f"Spherical: {norm_text['spherical']}.")

left, right = st.columns([3, 2])
with left:
    st.plotly_chart(path_norms_figure(comparison.t, comparison.linear_norms, comparison.spherical_norms, reference,
                                      bundle.prior.label), key="interp_norms")
with right:
    st.subheader("The numbers")
    m1, m2 = st.columns(2)
    for col, label, value, dip in ((m1, "shortest code, linear", comparison.linear_min, comparison.linear_dip),
                                   (m2, "shortest code, spherical", comparison.spherical_min,
                                    comparison.spherical_dip)):
        col.metric(label, f"{value:.2f}", delta=f"{-dip:.0%} vs the shorter end" if dip >= 0.005 else "no dip",
                   delta_color="inverse" if dip >= 0.005 else "off")
    m1.metric("angle between the ends", f"{comparison.angle_degrees:.0f}°")
    m2.metric(f"typical {bundle.prior.label} norm", f"{reference.mean:.2f} ± {reference.std:.2f}")
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
