"""Page: a VAE and a GAN of the same dataset on the same latent settings: blurry but faithful, or sharp but partial?"""

import json
import math

import pandas as pd
import streamlit as st

from explorer import bundles, torch_worker
from explorer.bundles import read_config
from explorer.comparison import ModelScores, comparison_rows, explain_comparison, metric_scores
from explorer.conditions import featurenet_path
from explorer.diagnostics import shown
from explorer.figures import crossed_out_note, grid_jpeg
from explorer.replay import real_images
from explorer.sampling import sample_and_diagnose
from explorer.sharpness import mean_sharpness
from explorer.widgets import chosen_distribution, data_root_setting, distribution_controls, distribution_defaults
from training.errors import LatentExplorerError
from training.latent import LatentDistribution
from training.metrics.nearest import copy_verdict, nearest_real, tiles

GAN_FAMILIES = ("dcgan", "cgan", "infogan")
DEFAULTS = distribution_defaults("compare_", n=32)
NEAREST, NEAREST_POOL = 4, 1000  # samples searched, training images searched


def configs() -> dict[str, tuple[str, dict]]:
    """Display name -> (folder, config) of every readable generator bundle."""
    out = {}
    for name, path in bundles.available().items():
        try:
            out[name] = (path, read_config(path))
        except LatentExplorerError:
            continue
    return out


@st.cache_resource(max_entries=16, show_spinner="Sampling…")
def cached_batch(path: str, mtime: float, dist_json: str, n: int, seed: int):
    bundle = bundles.load(path)
    batch = torch_worker.run(sample_and_diagnose, bundle, LatentDistribution.from_json(json.loads(dist_json)), n,
                             seed)
    # NaN or infinite pixels have no sharpness (clamped, infinity would even look like a sharp edge).
    sharpness = mean_sharpness(batch.images) if not batch.diagnostics.nonfinite_images else float("nan")
    return batch.images, batch.diagnostics, sharpness


@st.cache_data(max_entries=8, show_spinner="Drawing real images…")
def cached_real_sharpness(dataset_json: str, n: int, data_root: str) -> tuple[float | None, str | None]:
    """(mean sharpness of n real images, None), or (None, why there are no real images)."""
    try:
        return mean_sharpness(real_images(json.loads(dataset_json), n, data_root or None)), None
    except LatentExplorerError as exc:
        return None, str(exc)


@st.cache_data(max_entries=8, show_spinner="Searching the training images…")
def cached_nearest(path: str, mtime: float, dist_json: str, n: int, seed: int, dataset_json: str, pool: int,
                   data_root: str) -> tuple[bytes | None, str]:
    """(grid of NEAREST samples, each followed by its nearest training images by features then by pixels, and
    the sentence on them), or (None, why there are no real images)."""
    images = cached_batch(path, mtime, dist_json, n, seed)[0][:NEAREST]
    dataset = json.loads(dataset_json)
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


def dataset_of(name: str) -> str | None:
    return known[name][1]["dataset"].get("name")


def fmt(value: float) -> str:
    return shown(value, ".0f" if abs(value) >= 100 else ".3g")


for key, value in DEFAULTS.items():
    st.session_state.setdefault(key, value)

st.title("VAE vs GAN")
st.write("Feed a VAE's decoder and a GAN's generator codes from the same distribution: the VAE paints soft, "
         "average faces that cover the data, the GAN crisp faces that may cover only part of it. The numbers say "
         "how far that holds for these two models.")

selected = bundles.sidebar_picker()
if selected is None:
    st.stop()
known = configs()
vaes = [n for n, (_, c) in known.items() if c["family"] == "vae"]
gans_all = [n for n, (_, c) in known.items() if c["family"] in GAN_FAMILIES]
if not vaes or not gans_all:
    missing = " and no ".join(w for w, have in (("VAE", vaes), ("GAN", gans_all)) if not have)
    st.info(f"This page compares a VAE with a GAN of the same dataset, and there is no {missing} to compare yet, so "
            "it does not apply. Train the missing model with `python -m training train --model vae` (or `dcgan`) "
            "into checkpoints/<dataset>/.")
    st.stop()
selected_name = next((n for n, (p, _) in known.items() if p == str(selected.path)), None)
if st.session_state.get("compare_sidebar_seen") != selected_name:
    # The sidebar's model just changed: compare it (and a partner trained on the same dataset).
    st.session_state["compare_sidebar_seen"] = selected_name
    if selected_name in vaes:
        st.session_state["compare_vae"] = selected_name
    elif selected_name in gans_all:
        partners = [v for v in vaes if dataset_of(v) == dataset_of(selected_name)]
        if partners:
            st.session_state["compare_vae"] = partners[0]
            st.session_state["compare_gan"] = selected_name
        else:
            st.info(f"No VAE is trained on {dataset_of(selected_name)}, the dataset of **{selected_name}**, so it has "
                    "no partner here; pick a VAE and a GAN of another dataset below.")

with st.container(border=True):
    left, right = st.columns(2)
    vae_name = pick("VAE", vaes, "compare_vae", left)
    dataset = dataset_of(vae_name)
    gans = [n for n in gans_all if dataset_of(n) == dataset]
    if not gans:
        st.info(f"There is no GAN trained on {dataset}, the VAE's dataset, so this comparison does not apply to "
                f"**{vae_name}**. Pick another VAE, or train a GAN on {dataset}.")
        st.stop()
    gan_name = pick("GAN (same dataset)", gans, "compare_gan", right)

    distribution_controls("compare_", "samples per model", (4, 64, 4))
dist = chosen_distribution("compare_")

n, seed = int(st.session_state["compare_n"]), int(st.session_state["compare_seed"])
scores, images = {}, {}
try:
    for role, name in (("VAE", vae_name), ("GAN", gan_name)):
        path = known[name][0]
        bundle = bundles.load(path)
        mtime = (bundle.path / "config.json").stat().st_mtime
        images[role], diagnostics, sharpness = cached_batch(path, mtime, json.dumps(dist.to_json()), n, seed)
        m = metric_scores(bundle.metrics)
        scores[role] = ModelScores(name=name, family=bundle.family, diagnostics=diagnostics, sharpness=sharpness,
                                   precision=m["precision"], recall=m["recall"], fd=m["fd"],
                                   reconstruction_mse=m["reconstruction_mse"], feature_network=m["feature_network"],
                                   estimates=m["estimates"])
except LatentExplorerError as exc:
    st.error(f"Cannot open this model: {exc}")
    st.stop()

vae_config = known[vae_name][1]
data_root = data_root_setting(dataset)
real_sharpness, no_real = cached_real_sharpness(json.dumps(vae_config["dataset"], sort_keys=True), n, data_root or "")
same_dim = scores["VAE"].diagnostics.latent_dim == scores["GAN"].diagnostics.latent_dim

pictures = st.columns(2)
for col, role in zip(pictures, ("VAE", "GAN")):
    s = scores[role]
    col.subheader(f"{role}: {s.name}")
    note = crossed_out_note(s.diagnostics.nonfinite_images, n)
    if s.diagnostics.nonfinite_images == n:
        col.warning(note)
    else:
        col.image(grid_jpeg(images[role]), output_format="JPEG", width="stretch",
                  caption=f"{n} samples, z ~ {dist.label}, seed {seed}; {s.diagnostics.verdict}"
                  + (f". {note}" if note else ""))
    readable = real_sharpness and math.isfinite(s.sharpness)
    col.metric("sharpness (variance of the Laplacian)", fmt(s.sharpness),
               delta=f"{s.sharpness / real_sharpness:.0%} of real images" if readable else None, delta_color="off")
if scores["GAN"].family in ("cgan", "infogan"):
    st.caption(f"{gan_name} is a {scores['GAN'].family}: its conditions / codes take their default values, a balanced "
               "cycle through all of them.")
if not same_dim:
    st.caption(f"The two models have different latent dimensions ({scores['VAE'].diagnostics.latent_dim} and "
               f"{scores['GAN'].diagnostics.latent_dim}): they get codes from the same distribution and seed, but not "
               "the same codes.")

st.subheader("The numbers")
rows = comparison_rows([scores["VAE"], scores["GAN"]], real_sharpness)
if real_sharpness:
    rows.append({"model": "real images", "family": "data",
                 "sharpness (Laplacian variance)": float(f"{real_sharpness:.4g}"), "sharpness vs real images": 1.0})
st.dataframe(pd.DataFrame(rows), hide_index=True, key="compare_table")
if no_real:
    st.info(f"No sharpness of real images to compare with: {no_real}.")
notes = {s.feature_network for s in scores.values() if s.feature_network}
st.caption("Sharpness and diagnostics are measured on the batches above. Precision, recall and FD come from each "
           "bundle's metrics.json (the model at its training prior"
           + (f", feature network: {', '.join(sorted(notes))}" if notes else "") + "); empty where not evaluated.")
if "non-finite" in (scores["VAE"].diagnostics.verdict, scores["GAN"].diagnostics.verdict):
    verdict_box = st.error
elif dist.label in (scores["VAE"].diagnostics.prior, scores["GAN"].diagnostics.prior):
    verdict_box = st.success
else:
    verdict_box = st.warning
verdict_box(explain_comparison(scores["VAE"], scores["GAN"], dist.label, real_sharpness))
if st.toggle("Is it copying? Show the nearest training images of a few samples", key="compare_nearest"):
    for role, name in (("VAE", vae_name), ("GAN", gan_name)):
        path = known[name][0]
        grid, words = cached_nearest(path, (bundles.load(path).path / "config.json").stat().st_mtime,
                                     json.dumps(dist.to_json()), n, seed, json.dumps(known[name][1]["dataset"]),
                                     NEAREST_POOL, data_root or "")
        if grid is None:
            st.info(words)
            break
        st.image(grid, output_format="JPEG", caption=f"{role} ({name}). {words}")
with st.expander("What the numbers mean"):
    st.markdown(
        """
* **Sharpness**: the variance of the Laplacian (a second-derivative filter) over each grey image, averaged over the
  batch. Edges make it large; blur makes it small. Compare it with real images of the same size.
* **Precision** (Kynkäänniemi et al. 2019): the share of generated images that fall inside the region of real
  images in the feature network's space: are the samples realistic? **Recall**: the share of real images that
  fall inside the region of generated ones: does the model cover all kinds of faces?
* **Density** and **coverage** (Naeem et al. 2020), which the explanation leads with: density counts how many real
  images' neighbourhoods hold each sample (about 1 for real images), so one odd real image cannot make a whole
  batch look realistic; coverage is the share of real images with a sample in their neighbourhood, so a collapsed
  model covers few. Each figure compares sets of the same size with a 95% interval; two models are called
  different only when their intervals do not overlap.
* **Output diversity**: mean distance between the samples (pooled to 16x16); "vs its own prior samples" compares
  the batch with the same model fed its training prior, as on the sampling page.
"""
    )
