"""Page: draw z from any normal or uniform distribution and see, with numbers, when and why samples collapse."""

import streamlit as st

from explorer.core import blocks, photo_hooks, torch_worker
from explorer.core.downloads import file_stem, grid_downloads
from explorer.core.page import page_fragment, preamble
from explorer.core.widgets import chosen_distribution, distribution_controls, distribution_defaults, distribution_links
from explorer.logic.diagnostics import explain, prior_norm_reference, shown
from explorer.logic.diversity import JUDGED_IMAGES
from explorer.logic.figures import crossed_out_note, grid_jpeg, norm_histogram
from explorer.logic.sample import FIRST_BLOCK_NOTE, diagnostics_rows, prior_norms, shown_count
from training.bundle import Bundle
from training.latent.priors import LatentDistribution

ALL_ASKED_KEY = "sample_all_asked"  # the setting for which the student asked to see every sample while busy


def _ask_for_all(setting: tuple) -> None:
    st.session_state[ALL_ASKED_KEY] = setting


@st.cache_resource(max_entries=16)
def cached_prior_norms(prior: LatentDistribution, dim: int):
    return prior_norm_reference(prior, dim), prior_norms(prior, dim)


bundle = preamble("Sample the latent space",
                  "A generator only knows the codes it was trained on. Move the distribution away from the training "
                  "prior and watch the numbers explain why the pictures change.",
                  "sample", distribution_defaults("", n=64), linked=distribution_links("", (1, 128, 1)))


@page_fragment
def sampling_view(bundle: Bundle) -> None:
    """Everything the page's controls change: the controls, the pictures, the numbers and the chart."""
    with st.container(border=True):
        choice = distribution_controls("", "number of samples", (1, 128, 1))
    dist = chosen_distribution(choice)

    asked, seed = choice.n, choice.seed
    setting = (str(bundle.path), choice.kind, choice.parameters, asked, seed)
    queued_s = torch_worker.expected_wait()
    n = shown_count(asked, queued_s, st.session_state.get(ALL_ASKED_KEY) == setting, blocks.preview_threshold())
    if n < asked:
        st.info(f"{FIRST_BLOCK_NOTE} {n} of your {asked} samples, and the numbers below are for those {n}: the "
                f"server is busy (about {queued_s:.0f} s of work queued), so everyone gets an answer quickly. Ask for "
                "all of them with the button, or move a slider again once the class is quieter.")
        st.button(f"Show all {asked}", key="sample_all", on_click=_ask_for_all, args=(setting,))
    if n < 2:
        st.warning("Pairwise numbers (cosine, diversity) need at least 2 samples; showing the single image only.")
    reference, reference_norms = cached_prior_norms(bundle.prior, bundle.latent_dim)
    # One request shared by every session (explorer/core/blocks.py): when the class clicks the same preset the batch
    # is computed once, the prior's blocks of rows once per model and seed, and a new number of samples only costs
    # the blocks nobody has made yet.
    batch = blocks.sampled_batch(bundle, dist, n, seed, reference)
    d = batch.diagnostics

    pictures, numbers = st.columns([3, 2])
    with pictures:
        st.subheader(f"{n} samples from z ~ {dist.label}" if n == asked else
                     f"{n} of {asked} samples from z ~ {dist.label}")
        note = crossed_out_note(d.nonfinite_images, n)
        if d.nonfinite_images == n:
            st.warning(note)
        else:
            st.image(torch_worker.shared_here(grid_jpeg, batch.images), output_format="JPEG", width="stretch",
                     caption=note)
            grid_downloads(batch.images, file_stem(bundle.path.parent.name, bundle.path.name, dist.label, f"seed{seed}",
                                                   f"{n}-samples"), "sample_download",
                           numbers=diagnostics_rows(bundle.name, dist.label, seed, d))
    with numbers:
        st.subheader("Why they look like this")
        verdict_box = {"non-finite": st.error, "collapsed": st.error, "reduced diversity": st.warning,
                       "off-distribution": st.warning, "healthy": st.success}[d.verdict]
        verdict_box(f"**{d.verdict.capitalize()}.** {explain(d)}")
        # "n/a" where a number cannot be computed: one sample has no pairs, NaN pixels have no diversity. Labels stay
        # short enough to fit a narrow column at 150% zoom; what each number is goes in its help.
        a, b = st.columns(2)
        a.metric("cosine of codes", shown(d.cosine, ".3f"),
                 help=f"Mean pairwise cosine similarity of the codes. {d.prior} codes: {shown(d.prior_cosine, '.3f')}.")
        b.metric("code norm", shown(d.norm_mean, ".1f"),
                 help=f"Mean length ||z|| of the codes. Training prior: {d.prior_norm.mean:.1f} ± "
                      f"{d.prior_norm.std:.2f}.")
        a.metric("norm vs prior", shown(d.norm_zscore, "+.1f", " std"),
                 help="How far the mean code norm lies from the training prior's, in standard deviations of the "
                      "prior's norms.")
        b.metric("output diversity", shown(d.diversity_ratio, ".0%"),
                 help=f"How varied the images are, as a share of the variety of {d.prior} samples of this model.")
        a.metric("saturated pixels", shown(d.saturated, ".1%"),
                 help=f"Share of output values pinned at black or white. {d.prior} samples: "
                      f"{shown(d.prior_saturated, '.1%')}.")
        if d.first_layer_shift is not None:
            b.metric("first-layer shift", shown(d.first_layer_shift, ".1f"),
                     help="Distance of the first layer's pre-activations from BatchNorm's running mean, in running "
                          f"standard deviations. {d.prior} codes: {shown(d.prior_first_layer_shift, '.1f')}.")
        a.metric("code spread", shown(d.code_spread_ratio, ".2f", "x"),
                 help=f"Mean pairwise distance between the codes, as a multiple of the same for {d.prior} codes.")

    # Built once per batch for every session (plotly validates what it is handed: a tenth of a cached rerun).
    st.plotly_chart(torch_worker.shared_here(norm_histogram, batch.code_norms, reference_norms, reference, dist.label,
                                             d.prior), key="norms")
    photo_hooks.near_photo(bundle)
    with st.expander("How are these numbers computed?"):
        st.markdown(
            f"""
* **Cosine**: the average cosine similarity over all pairs of the {n} codes. Independent {d.prior} codes in
  {d.latent_dim} dimensions are nearly orthogonal (about 0). A shared offset makes every code point the same way:
  N(-10,1) gives about 100/101 = 0.99, U(0,1) about 0.25/(1/3) = 0.75.
* **Code norm**: the length of z. Under N(0,1) it concentrates near √{d.latent_dim} ≈ {d.prior_norm.mean:.1f}
  (the chi distribution); the generator never saw codes much longer or shorter.
* **Diversity**: how far apart the generated images are in the eyes of the dataset's feature network (the
  classifier the metrics use), divided by the same number for {d.prior} samples drawn with the same seed from
  this model. Two images closer than a third of the typical distance between two {d.prior} samples look like the
  same picture to a person, so only distance beyond that counts (saturated images that differ in a few
  blotches count as one). Below 80% the samples look alike; at 10% or less they have collapsed into nearly one
  image. The feature network reads the first {JUDGED_IMAGES} samples. A dataset without a feature network falls
  back to pixels averaged down to 16x16, which overstate how varied saturated images are.
* **Saturated pixels**: the share of output values with |x| > 0.98: tanh is pinned at black or white.
* **First-layer shift**: the typical distance (root mean square) of the first layer's pre-activations from the
  BatchNorm running mean recorded in training, in running standard deviations. About 1 for training-like codes;
  it grows with the code's length. The model runs in eval mode, as a deployed model does.
"""
        )


sampling_view(bundle)
