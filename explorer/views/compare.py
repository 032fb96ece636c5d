"""Page: a VAE and a GAN of the same dataset on the same latent settings: blurry but faithful, or sharp but partial?"""

import math

import pandas as pd
import streamlit as st

from explorer.core import bundles, torch_worker
from explorer.core import links as page_links
from explorer.core.bundles import BundleKey, key_of, read_config
from explorer.core.downloads import file_stem, grid_downloads
from explorer.core.page import preamble
from explorer.core.widgets import (
    chosen_distribution,
    data_root_setting,
    distribution_controls,
    distribution_defaults,
    distribution_links,
)
from explorer.logic import links
from explorer.logic.compare import (
    REAL_FOR_SHARPNESS,
    Pairing,
    comparison_rows,
    explain_comparison,
    model_batch,
    model_scores,
    real_sharpness,
    verdict_tone,
)
from explorer.logic.diagnostics import shown
from explorer.logic.figures import crossed_out_note, grid_jpeg
from explorer.logic.real_images import real_images
from explorer.logic.recognition import featurenet_path
from training.errors import LatentExplorerError
from training.latent.priors import LatentDistribution
from training.metrics.nearest import copy_verdict, nearest_real, tiles

DEFAULTS = distribution_defaults("compare_", n=32)
SAMPLES = (4, 64, 4)  # the samples-per-model slider
NEAREST, NEAREST_POOL = 4, 1000  # samples searched, training images searched


def pairing() -> Pairing:
    """Every readable model the app offers, for the VAE and GAN pickers."""
    known = {}
    for name, path in bundles.available().items():
        try:
            known[name] = (path, read_config(path))
        except LatentExplorerError:
            continue
    return Pairing(known)


def cached_batch(bundle: BundleKey, dist: LatentDistribution, n: int, seed: int):
    """Computed once for every session that asks the same batch of the same model."""
    return torch_worker.shared(model_batch, bundle.load(), dist, n, seed)


@st.cache_data(max_entries=8, show_spinner="Drawing real images…")
def cached_real_sharpness(dataset: dict, n: int, data_root: str) -> tuple[float | None, str | None]:
    return real_sharpness(dataset, n, data_root or None)


@st.cache_data(max_entries=8, show_spinner="Searching the training images…")
def cached_nearest(bundle: BundleKey, dist: LatentDistribution, n: int, seed: int, dataset: dict, pool: int,
                   data_root: str) -> tuple[bytes | None, str]:
    """(grid of NEAREST samples, each followed by its nearest training images by features then by pixels, and
    the sentence on them), or (None, why there are no real images)."""
    images = cached_batch(bundle, dist, n, seed).images[:NEAREST]
    try:
        real = real_images(dataset, pool, data_root or None)
    except LatentExplorerError as exc:
        return None, f"The nearest-image search needs the training images, and {exc}."
    net_path = featurenet_path(bundles.CHECKPOINTS, dataset.get("name", ""))
    net = bundles.load(net_path).networks.get("featurenet") if net_path else None
    found = torch_worker.run(nearest_real, images, real, net, 3)
    found = dict(sorted(found.items()))  # feature space first, then pixels
    columns = " and ".join(("then its 3 nearest training images in the feature network's space" if space == "feature"
                            else "then its 3 nearest in pixels") for space in found)
    return (grid_jpeg(tiles(images, real, found), nrow=1 + 3 * len(found)),
            f"Each row is a sample, {columns}. {copy_verdict(found, len(real))}")


def pick(label: str, options: list[str], key: str, container) -> str:
    if st.session_state.get(key) not in options:
        st.session_state[key] = options[0]
    return container.selectbox(label, options, key=key)


def follow_sidebar(models: Pairing, selected_name: str | None) -> None:
    """When the sidebar's model has just changed, compare it (and a partner trained on the same dataset)."""
    if st.session_state.get("compare_sidebar_seen") == selected_name:
        return
    st.session_state["compare_sidebar_seen"] = selected_name
    if selected_name in models.vaes:
        st.session_state["compare_vae"] = selected_name
        partners = models.gans_like(selected_name)
        if partners:  # the dataset's unconditional GAN: like the VAE, it draws from z alone
            st.session_state["compare_gan"] = partners[0]
    elif selected_name in models.gans:
        partners = models.vaes_like(selected_name)
        if partners:
            st.session_state["compare_vae"] = partners[0]
            st.session_state["compare_gan"] = selected_name
        else:
            st.info(f"No VAE is trained on {models.dataset_of(selected_name)}, the dataset of **{selected_name}**, so "
                    "it has no partner here; pick a VAE and a GAN of another dataset below.")


def sidebar_pair(models: Pairing, selected_name: str | None) -> dict[str, str]:
    """The VAE and GAN that follow_sidebar picks for the sidebar's model."""
    if selected_name in models.vaes:
        partners = models.gans_like(selected_name)
        return {"compare_vae": selected_name, **({"compare_gan": partners[0]} if partners else {})}
    if selected_name in models.gans and (partners := models.vaes_like(selected_name)):
        return {"compare_vae": partners[0], "compare_gan": selected_name}
    return {}


def fmt(value: float) -> str:
    return shown(value, ".0f" if abs(value) >= 100 else ".3g")


selected = preamble("VAE vs GAN",
                    "Feed a VAE's decoder and a GAN's generator codes from the same distribution: the VAE paints "
                    "soft, average images that cover the data, the GAN crisp images that may cover only part of it. "
                    "The numbers say how far that holds for these two models.",
                    "compare", DEFAULTS, caption=None, linked=distribution_links("compare_", SAMPLES))
models = pairing()
missing = models.missing()
if missing:
    st.info(f"This page compares a VAE with a GAN of the same dataset, and there is no {missing} to compare yet, so "
            "it does not apply. Train the missing model with `python -m training train --model vae` (or `dcgan`) "
            "into checkpoints/<dataset>/.")
    st.stop()
selected_name = models.name_of(str(selected.path))
follow_sidebar(models, selected_name)
# After following the sidebar: a link's two models win over the sidebar's partner, and name them only when they are
# not the pair the sidebar's model opens with.
page_links.adopt([links.choice("compare_vae", models.vaes, name="vae"),
                  links.choice("compare_gan", models.gans, name="gan")], sidebar_pair(models, selected_name))

with st.container(border=True):
    left, right = st.columns(2)
    vae_name = pick("VAE", models.vaes, "compare_vae", left)
    dataset = models.dataset_of(vae_name)
    gans = models.gans_like(vae_name)
    if not gans:
        st.info(f"There is no GAN trained on {dataset}, the VAE's dataset, so this comparison does not apply to "
                f"**{vae_name}**. Pick another VAE, or train a GAN on {dataset}.")
        st.stop()
    gan_name = pick("GAN (same dataset)", gans, "compare_gan", right)
    choice = distribution_controls("compare_", "samples per model", SAMPLES)
dist = chosen_distribution(choice)

n, seed = choice.n, choice.seed
scores, images, opened = {}, {}, {}
try:
    for role, name in (("VAE", vae_name), ("GAN", gan_name)):
        opened[role] = bundles.load(models.known[name][0])
        batch = cached_batch(key_of(opened[role]), dist, n, seed)
        images[role], scores[role] = batch.images, model_scores(name, opened[role], batch)
except LatentExplorerError as exc:
    st.error(f"Cannot open this model: {exc}")
    st.stop()

data_root = data_root_setting(dataset)
real, no_real = cached_real_sharpness(models.known[vae_name][1]["dataset"], REAL_FOR_SHARPNESS, data_root or "")
vae, gan = scores["VAE"], scores["GAN"]

for col, role in zip(st.columns(2), ("VAE", "GAN")):
    s = scores[role]
    col.subheader(f"{role}: {s.name}")
    note = crossed_out_note(s.diagnostics.nonfinite_images, n)
    if s.diagnostics.nonfinite_images == n:
        col.warning(note)
    else:
        col.image(grid_jpeg(images[role]), output_format="JPEG", width="stretch",
                  caption=f"{n} samples, z ~ {dist.label}, seed {seed}; {s.diagnostics.verdict}"
                  + (f". {note}" if note else ""))
        opened_path = opened[role].path
        with col:
            grid_downloads(images[role], file_stem(opened_path.parent.name, opened_path.name, dist.label, f"seed{seed}",
                                                   f"{n}-samples"), f"compare_download_{role}",
                           numbers=lambda: comparison_rows([vae, gan], real))
    readable = real and math.isfinite(s.sharpness)
    col.metric("sharpness (variance of the Laplacian)", fmt(s.sharpness),
               delta=f"{s.sharpness / real:.0%} of real images" if readable else None, delta_color="off",
               delta_arrow="off")
if opened["GAN"].capabilities.conditional or opened["GAN"].capabilities.info_codes:
    st.caption(f"{gan_name} is a {gan.family}: its conditions / codes take their default values, a balanced "
               "cycle through all of them.")
if vae.diagnostics.latent_dim != gan.diagnostics.latent_dim:
    st.caption(f"The two models have different latent dimensions ({vae.diagnostics.latent_dim} and "
               f"{gan.diagnostics.latent_dim}): they get codes from the same distribution and seed, but not "
               "the same codes.")

st.subheader("The numbers")
rows = comparison_rows([vae, gan], real)
if real:
    rows.append({"model": "real images", "family": "data",
                 "sharpness (Laplacian variance)": float(f"{real:.4g}"), "sharpness vs real images": 1.0})
st.dataframe(pd.DataFrame(rows), hide_index=True, key="compare_table")
if no_real:
    st.info(f"No sharpness of real images to compare with: {no_real}.")
notes = {s.feature_network for s in scores.values() if s.feature_network}
st.caption("Sharpness and diagnostics are measured on the batches above. Precision, recall and FD come from each "
           "bundle's metrics.json (the model at its training prior"
           + (f", feature network: {', '.join(sorted(notes))}" if notes else "") + "); empty where not evaluated.")
verdict_box = {"error": st.error, "success": st.success, "warning": st.warning}[verdict_tone(vae, gan, dist.label)]
verdict_box(explain_comparison(vae, gan, dist.label, real))
if st.toggle("Is it copying? Show the nearest training images of a few samples", key="compare_nearest"):
    for role, name in (("VAE", vae_name), ("GAN", gan_name)):
        grid, words = cached_nearest(key_of(opened[role]), dist, n, seed, models.known[name][1]["dataset"],
                                     NEAREST_POOL, data_root or "")
        if grid is None:
            st.info(words)
            break
        st.image(grid, output_format="JPEG", caption=f"{role} ({name}). {words}")
with st.expander("What the numbers mean"):
    st.markdown(
        f"""
* **Sharpness**: the edge strength of each grey image, averaged over the batch: the variance of its Laplacian (a
  second-derivative filter) after a light 3x3 blur. Edges make it large; blur makes it small. The blur removes the
  finest checkerboard a GAN's upsampling leaves behind, so those artefacts do not count as detail. Compared with
  {REAL_FOR_SHARPNESS} real images of the same size.
* **Precision** (Kynkäänniemi et al. 2019): the share of generated images that fall inside the region of real
  images in the feature network's space: are the samples realistic? **Recall**: the share of real images that
  fall inside the region of generated ones: does the model cover all kinds of images in the data?
* **Density** and **coverage** (Naeem et al. 2020), which the explanation leads with: density counts how many real
  images' neighbourhoods hold each sample (about 1 for real images), so one odd real image cannot make a whole
  batch look realistic; coverage is the share of real images with a sample in their neighbourhood, so a collapsed
  model covers few. Each figure compares sets of the same size with a 95% interval; two models are called
  different only when their intervals do not overlap.
* **Output diversity**: how far apart the samples are in the dataset's feature network, beyond the distance at
  which two pictures count as the same image (pooled pixels where the dataset has none); "vs its own prior
  samples" compares the batch with the same model fed its training prior, as on the sampling page.
"""
    )
