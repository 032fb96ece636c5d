"""Page: your own photo in the latent space: a VAE encodes it (reconstruction, point on the map, how typical its
code is), a GAN searches for the code whose image comes closest; the code then travels to the other pages."""

import hashlib
import json

import numpy as np
import streamlit as st
import torch

from explorer.core import bundles, torch_worker
from explorer.core.downloads import file_stem, picture_downloads
from explorer.core.page import preamble
from explorer.core.widgets import DATA_ROOT_KEPT
from explorer.logic import links
from explorer.logic.figures import image_grid, labelled_rows, latent_scatter
from explorer.logic.held_out import held_out_codes
from explorer.logic.real_images import remembered_data_root
from explorer.logic.vae_map import pca_map, tsne_map
from explorer.logic.your_photo import (
    encode_photos,
    fingerprints,
    inversion_sentence,
    place_on_tsne,
    reconstruction_sentence,
    share_below,
    store_code,
    training_images,
    training_match,
    training_match_sentence,
)
from training.bundle import LATENTS_FILE
from training.errors import LatentExplorerError
from training.latent.inversion import InversionSettings, Inverter
from training.latent.typicality import reference_norms, typicality
from training.untrusted.photos import content_check, read_photo_bytes, training_preprocessing

MAX_PHOTOS = 4
PHOTO_SCALE = 4
RESULTS_KEY = "photo_inversions"  # search settings + photo -> InversionResult: a rerun never searches again
STEPS_PER_UPDATE = 5
DEFAULTS = {"photo_steps": 50, "photo_starts": 4, "photo_projection": "PCA"}


@st.cache_data(max_entries=64, show_spinner=False)
def prepared(data: bytes, name: str, prep_json: str):
    """("ok", PreparedPhoto, ContentCheck) or ("error", message), once per upload and crop."""
    from training.data.prepare import Preprocessing

    try:
        photo = read_photo_bytes(data, name, Preprocessing(**json.loads(prep_json)))
        return "ok", photo, content_check(photo)
    except LatentExplorerError as exc:
        return "error", str(exc)


@st.cache_resource(max_entries=4, show_spinner="Reading the model's training images on this server (once)…")
def cached_training_index(dataset_json: str, data_root: str):
    """(the dataset's images as trained on, their fingerprints); LookupError, which is not cached, where this
    server has no copy (yet: one may be made or pointed at later)."""
    images = training_images(json.loads(dataset_json), data_root or None)
    if images is None:
        raise LookupError("no copy of the dataset here")
    return images, fingerprints(images)


def say_training_images(bundle, photos) -> None:
    """Say so when a photo is one of the model's own training images (or one its VAE held out); nothing when this
    server has no copy of the dataset."""
    from training.loops.vae import holdout_split

    dataset = bundle.config.get("dataset") or {}
    data_root = st.session_state.get(DATA_ROOT_KEPT) or remembered_data_root(dataset.get("name")) or ""
    try:
        images, prints = cached_training_index(json.dumps(dataset, sort_keys=True), data_root)
    except LookupError:
        return
    holdout = bundle.config.get("holdout") or {}
    held = None
    try:
        if "fraction" in holdout and "seed" in holdout:
            held = holdout_split(len(images), float(holdout["fraction"]), int(holdout["seed"]))[1]
    except (LatentExplorerError, TypeError, ValueError):
        return  # a split this dataset cannot have: it is not the copy the model was trained on
    for photo in photos:
        match = training_match(photo.image, images, prints, held)
        if match is not None:
            st.info(training_match_sentence(photo.name, match, len(images) - (0 if held is None else len(held))))


@st.cache_data(max_entries=16)
def cached_reference_norms(prior_json: str, dim: int) -> np.ndarray:
    from training.latent.priors import LatentDistribution

    return reference_norms(LatentDistribution.from_json(json.loads(prior_json)), dim)


@st.cache_data(max_entries=8, show_spinner="Mapping the encoded held-out faces (t-SNE: up to half a minute)…")
def cached_map(path: str, mtime: float, projection: str):
    """(held-out codes, their map positions, indices of the mapped codes, axis titles, PCA or None)."""
    bundle = bundles.load(path)
    held = held_out_codes(bundle.latents(), bundle.attributes, f"{path}/{LATENTS_FILE}")
    if projection == "PCA":
        pca = pca_map(held.codes)
        return held, pca.xy, np.arange(len(held)), (f"PC 1 ({pca.explained[0]:.0%} of the variance)",
                                                    f"PC 2 ({pca.explained[1]:.0%})"), pca
    xy, index, _ = tsne_map(held.codes)
    return held, xy, index, ("t-SNE 1", "t-SNE 2"), None


def photo_table(names: list[str], columns: dict[str, torch.Tensor]):
    """One row per photo: its images side by side (label -> (n, C, H, W)), then a wider column that is yielded with
    the photo's index for its numbers."""
    for i, name in enumerate(names):
        cells = st.columns([1] * len(columns) + [2], vertical_alignment="center")
        for cell, (label, images) in zip(cells, columns.items()):
            cell.image(image_grid(images[i:i + 1], nrow=1, scale=PHOTO_SCALE, padding=0),
                       caption=name if label == "your photo" else label)
        yield i, cells[-1]


def table_downloads(bundle, names: list[str], columns: dict[str, torch.Tensor], what: str, key: str,
                    numbers: list[dict]) -> None:
    """The photo table as one picture (a row per photo: its images left to right) and its numbers, for the slides."""
    rows = [torch.cat([images[i:i + 1] for images in columns.values()]) for i in range(len(names))]
    picture_downloads(lambda scale: labelled_rows([n[:24] for n in names], rows, scale=scale),
                      file_stem(bundle.path.parent.name, bundle.path.name, what, *columns), key, numbers=numbers)


def read_uploads(uploads, prep) -> list:
    """The uploads that make usable photos; each refusal and warning is said on the page."""
    if len(uploads) > MAX_PHOTOS:
        st.warning(f"{len(uploads)} photos uploaded; this page places the first {MAX_PHOTOS}.")
    photos = []
    prep_json = json.dumps({"size": prep.size, "face_margin": prep.face_margin, "mode": prep.mode})
    names: list[str] = []
    for upload in uploads[:MAX_PHOTOS]:
        name = upload.name if upload.name not in names else f"{upload.name} ({names.count(upload.name) + 1})"
        names.append(upload.name)  # two uploads of one name keep their own codes
        outcome = prepared(upload.getvalue(), name, prep_json)
        if outcome[0] == "error":
            st.error(f"Cannot use this photo: {outcome[1]}")
            continue
        _, photo, check = outcome
        if check.warning:
            st.warning(check.warning)
        photos.append(photo)
    return photos


def typicality_block(bundle, codes: torch.Tensor, names: list[str], held_norms: np.ndarray | None = None) -> None:
    """How typical each code is: against the prior (a GAN's code), or against the encoded held-out faces' codes
    too (a VAE's: an encoder mean is shorter than a prior sample, so the held-out faces are its yardstick)."""
    norms = cached_reference_norms(json.dumps(bundle.prior.to_json()), bundle.latent_dim)
    for name, code in zip(names, codes):
        typical = typicality(code, bundle.prior, norms)
        text = f"**{name}**: " + typical.sentence(bundle.prior.label, conclude=held_norms is None)
        usual = typical.inside
        if held_norms is not None:
            low, high = np.percentile(held_norms, [2.5, 97.5])
            usual = bool(low <= typical.norm <= high)
            text += (f" An encoder's code is the mean of what it would draw (its noise makes up the rest of a "
                     f"sample), so compare it with the encoded held-out faces: 95% of their codes are "
                     f"{low:.2f} to {high:.2f} long and {share_below(held_norms, typical.norm):.0%} are shorter than "
                     "this one." + ("" if usual else " This code lies outside where the encoder puts its dataset's "
                                                     "faces."))
        (st.info if usual else st.warning)(text)


def vae_section(bundle, photos, x: torch.Tensor) -> None:
    encoded = torch_worker.run(encode_photos, bundle.encoder, bundle.generator, x)
    names = [p.name for p in photos]
    st.header("What the VAE makes of it")
    holdout = ((bundle.metrics or {}).get("holdout_reconstruction") or {}).get("mse")
    holdout = holdout if isinstance(holdout, (int, float)) else None
    for i, cell in photo_table(names, {"your photo": x, "reconstruction": encoded.reconstructions}):
        cell.metric(f"reconstruction MSE, {names[i]}", f"{encoded.mse[i]:.4f}",
                    help="decoder(encoder mean of the photo) against the photo; pixels in [-1, 1], divide by 4 for "
                         "the [0, 1] scale")
        text, far = reconstruction_sentence(names[i], float(encoded.mse[i]), holdout)
        (cell.warning if far else cell.info)(text)
    table_downloads(bundle, names, {"your photo": x, "reconstruction": encoded.reconstructions}, "photo",
                    "photo_vae_download",
                    [{"photo": n, "reconstruction mse": float(m)} for n, m in zip(names, encoded.mse)])
    for name, code in zip(names, encoded.codes):
        store_code(st.session_state, str(bundle.path), name, code)

    st.header("Where it lands on the latent map")
    latents = bundle.path / LATENTS_FILE
    if not latents.exists():
        st.info("This VAE has no latents.npz (it is written when training finishes), so there is no map of its "
                "held-out faces to place the photo on.")
        typicality_block(bundle, encoded.codes, names)
        return
    projection = st.radio("projection", ["PCA", "t-SNE"], horizontal=True, key="photo_projection")
    held, xy, index, axes, pca = cached_map(str(bundle.path), latents.stat().st_mtime, projection)
    codes = encoded.codes.double().numpy()
    if pca is not None:
        photo_xy = pca.project(codes)
        how = ("The photo is projected with the same PCA as the held-out codes (fitted on them): its position is "
               "exact in these two directions, and the other directions are not shown.")
    else:
        photo_xy = place_on_tsne(held.codes[index], xy, codes)
        how = ("t-SNE has no way to place a new point, so the photo is put at the average position of its 10 "
               "nearest held-out codes in the full latent space (weighted by closeness): an approximation.")
    figure = latent_scatter(xy, np.array(["held-out face"] * len(index)), index,
                            f"{projection} of {len(index)} encoded held-out faces, and your photo", axes)
    figure.add_scatter(x=photo_xy[:, 0], y=photo_xy[:, 1], mode="markers+text", text=names, textposition="top center",
                       name="your photo" if len(names) == 1 else "your photos", hoverinfo="text",
                       marker=dict(size=22, symbol="star", color="#e4572e", line=dict(width=2, color="#111")))
    st.plotly_chart(figure, key="photo_map")
    st.caption(how)
    typicality_block(bundle, encoded.codes, names, np.linalg.norm(held.codes, axis=1))


def featurenet_of(bundle):
    try:
        found = bundles.featurenet_bundle(bundle)
    except LatentExplorerError as exc:
        st.warning(f"The feature network cannot be read ({exc}); the search uses pixels alone.")
        return None
    return found.networks["featurenet"] if found is not None else None


def search(bundle, photo, x: torch.Tensor, net, settings: InversionSettings):
    """The inversion of one photo with a progress bar, or the result of the same search earlier in this session."""
    mtime = (bundle.path / "config.json").stat().st_mtime
    key = "|".join([str(bundle.path), str(mtime), hashlib.sha1(photo.image.tobytes()).hexdigest(), repr(settings),
                    str(net is not None)])
    results = st.session_state.setdefault(RESULTS_KEY, {})
    if key not in results:
        bar = st.progress(0.0, text=f"Searching the code of {photo.name}: scoring {settings.candidates} random codes…")
        inverter = torch_worker.run(Inverter, bundle.generator, x, bundle.prior, bundle.latent_dim, net, settings)
        while not inverter.finished:
            share = torch_worker.run(inverter.run, STEPS_PER_UPDATE)
            bar.progress(share, text=f"Searching the code of {photo.name}: step {inverter.done} of {settings.steps}")
        results[key] = torch_worker.run(inverter.result)
        bar.empty()
    return results[key]


def gan_section(bundle, photos, x: torch.Tensor) -> None:
    st.header("The closest image the GAN makes")
    with st.expander("Search settings"):
        a, b = st.columns(2)
        a.slider("Adam steps", 10, 300, step=10, key="photo_steps", help="more steps: closer, slower")
        b.slider("starts searched side by side", 1, 8, step=1, key="photo_starts",
                 help="the best of 64 random codes start the search; more starts escape more local minima")
    settings = InversionSettings(starts=int(st.session_state["photo_starts"]),
                                 steps=int(st.session_state["photo_steps"]))
    net = featurenet_of(bundle)
    if net is None:
        st.info("No feature network for this dataset, so the search compares pixels only.")
    results = [search(bundle, photo, x[i:i + 1], net, settings) for i, photo in enumerate(photos)]
    columns = {"your photo": x, "closest found": torch.cat([r.best.image for r in results]),
               f"best of {settings.candidates} random": torch.cat([r.best_random.image for r in results])}
    for i, cell in photo_table([p.name for p in photos], columns):
        best, rand = results[i].best, results[i].best_random
        left, right = cell.columns(2)
        if best.feature_distance is not None:
            left.metric(f"feature distance, {photos[i].name}", f"{best.feature_distance:.2f}",
                        delta=f"{best.feature_distance - rand.feature_distance:+.2f} vs random", delta_color="inverse")
        right.metric(f"pixel MSE, {photos[i].name}", f"{best.pixel_mse:.3f}")
        cell.info(inversion_sentence(photos[i].name, results[i]))
        store_code(st.session_state, str(bundle.path), photos[i].name, best.code)
    table_downloads(bundle, [p.name for p in photos], columns, f"photo_steps{settings.steps}", "photo_gan_download",
                    [{"photo": p.name, "feature distance": r.best.feature_distance, "pixel mse": r.best.pixel_mse,
                      "random feature distance": r.best_random.feature_distance,
                      "random pixel mse": r.best_random.pixel_mse} for p, r in zip(photos, results)])
    st.subheader("Is the code one the GAN was trained on?")
    typicality_block(bundle, torch.stack([r.best.code for r in results]), [p.name for p in photos])


bundle = preamble("Your photo in the latent space",
                  "Where would the model put your face? A VAE's encoder answers at once; a GAN has no encoder, so the "
                  "page searches for the code whose image comes closest. What the model cannot make is a lesson too.",
                  "photo", DEFAULTS,
                  linked=[links.whole("photo_steps", 10, 300, 10, name="steps"),
                          links.whole("photo_starts", 1, 8, name="starts"),
                          links.choice("photo_projection", ["PCA", "t-SNE"], name="projection")])
try:
    prep, how = training_preprocessing(bundle.config)
except LatentExplorerError as exc:
    st.error(f"This model's config does not say how to crop a photo for it: {exc}")
    st.stop()
# No `type=` list: Streamlit raises its own exception for any other file name, in place of the uploader. The
# content decides (JPEG, PNG or WebP), and any other file gets one sentence from read_uploads.
uploads = st.file_uploader("Face photos (JPEG or PNG, any size)", accept_multiple_files=True, key="photo_files",
                           help=f"Up to {MAX_PHOTOS} at a time, JPEG, PNG or WebP; the face should fill most of the "
                           "frame, as in the training images.")
st.caption(f"Each photo is cropped and resized {how}. A phone's EXIF rotation is applied first, and transparent "
           "parts are laid on white. There is no face detector: a picture with nothing in it is refused and noise "
           "is flagged; whether the rest looks like a face to the model, its own numbers below tell.")
photos = read_uploads(uploads or [], prep)
if not photos:
    st.info("Upload a photo of a face to see where this model puts it.")
    st.stop()

x = torch.cat([p.tensor for p in photos])
st.image(labelled_rows(["as the model sees it"], [x], scale=PHOTO_SCALE, font_size=18),
         caption=", ".join(f"{p.name} ({p.decoded_size[0]}x{p.decoded_size[1]} as decoded)" for p in photos))
for photo in photos:
    for note in photo.notes:
        st.caption(f"{photo.name}: {note}.")
say_training_images(bundle, photos)

if bundle.capabilities.has_encoder:
    vae_section(bundle, photos, x)
else:
    gan_section(bundle, photos, x)

st.subheader("Take your photo's code to the other pages")
st.write("The code is kept for this model while the app is open in this browser: start an interpolation from "
         "your face, walk it along an attribute direction, or sample around it.")
links = st.columns(3)
links[0].page_link("views/interpolate.py", label="Interpolation", icon=":material/linear_scale:")
links[1].page_link("views/directions.py", label="Attribute directions", icon=":material/north_east:")
links[2].page_link("views/sample.py", label="Sample around it", icon=":material/casino:")
