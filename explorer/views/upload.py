"""Page: upload a netG.pth from the PyTorch DCGAN tutorial, explore it on every generator page, and score it beside
the class's model of the dataset it was trained on."""

import json
from dataclasses import replace

import streamlit as st

from explorer.core import bundles, torch_worker
from explorer.core import links as page_links
from explorer.core.downloads import file_stem, grid_downloads
from explorer.core.widgets import data_root_setting
from explorer.logic import links
from explorer.logic.figures import grid_jpeg
from explorer.logic.real_images import APP_ASK, remembered_data_root
from explorer.logic.upload import (
    EXTENSIONS,
    SCORING_SAMPLES,
    TRAINED_ON_CHOICES,
    ImportResult,
    dataset_chosen,
    import_upload,
    mark_trained_on,
    reference_model,
    score_table,
    scoring_problem,
    versus_sentence,
)
from training.bundle import paths as bundle_paths
from training.errors import LatentExplorerError
from training.latent import sampling
from training.metrics.evaluate import write_metrics
from training.metrics.side_by_side import FLOOR, SideBySide

RESULTS_KEY = "upload_results"  # file_id -> ImportResult: each file is imported once
SCORES_KEY = "upload_scores"  # (folder, its version, class's model, data folder) -> the figures of its scoring
FLOOR_NAME = "real training images (the floor)"


def imported(uploaded, trained_on: str | None) -> ImportResult:
    """Import the upload; a model that worked is listed in the sidebar of every page of this session."""
    result = import_upload(uploaded.name, uploaded.getvalue(), int(st.get_option("server.maxUploadSize")),
                           trained_on, bundles.CHECKPOINTS)
    if result.error is not None:
        return result
    return replace(result, name=bundles.add_session_bundle(f"imported · {uploaded.name}", result.folder))


@st.cache_resource(show_spinner=False)
def class_model_rows() -> dict:
    """Scoring settings -> the class's model's row and the real floor, for every session of this server: a second
    student scoring against the same model computes only their own generator."""
    return {}


def score(bundle, name: str, reference, data_root: str | None) -> dict | None:
    """The imported generator and the class's model scored side by side on the torch thread, with a progress bar;
    the imported one's figures are stored in its bundle (metrics.json), where the other pages read them."""
    dataset = bundle.config["dataset"]["name"]
    net = bundle_paths.featurenet_path(dataset, bundles.CHECKPOINTS)
    settings = (str(reference.path), bundles.key_of(reference).mtime, str(net), bundles.key_of(net).mtime,
                json.dumps(bundle.config["dataset"], sort_keys=True), data_root, SCORING_SAMPLES)
    known = class_model_rows()
    scorer = SideBySide({name: bundle, reference.name: reference}, SCORING_SAMPLES, data_root=data_root,
                        featurenet=net, known=known.get(settings))
    bar = st.progress(0.0, text="Scoring: loading the feature network and the real images…")
    try:
        while not scorer.finished:
            share = torch_worker.run(scorer.run, 1)
            bar.progress(share, text=f"Scoring: {scorer.stage}…")
    except LatentExplorerError as exc:
        bar.empty()
        st.error(f"Cannot score it: {exc}")
        return None
    bar.empty()
    known[settings] = {reference.name: scorer.rows[reference.name], FLOOR: scorer.rows[FLOOR]}
    yours = scorer.result(name)
    try:
        write_metrics(bundle.path, yours)
    except OSError as exc:
        st.warning(f"The figures could not be kept for the other pages ({exc.strerror or exc}).")
    return {"rows": {name: scorer.rows[name], reference.name: scorer.rows[reference.name],
                     FLOOR_NAME: scorer.rows[FLOOR]},
            "reference": reference.name, "samples": scorer.samples, "real": scorer.n_real,
            "set_size": scorer.set_size, "sets": yours["fd_precision_recall"]["model"]["sets"],
            "feature_network": yours["feature_network"]["name"], "seconds": scorer.seconds}


def scoring_section(bundle, outcome: ImportResult) -> None:
    st.subheader("Score it against the class's model")
    dataset = bundle.config["dataset"]
    typed = data_root_setting(dataset.get("name"))
    data_root = typed or remembered_data_root(dataset.get("name"))
    problem = scoring_problem(dataset, bundles.CHECKPOINTS, data_root, APP_ASK)
    if problem is not None:
        st.info(problem)
        return
    reference = bundles.load(reference_model(dataset["name"], bundles.CHECKPOINTS))
    st.write(f"The figures of `python -m training evaluate` for your generator and for **{reference.name}**, the "
             f"class's model of {dataset['name']}, side by side: the same {dataset['name']} feature network, the same "
             f"held-out real images, {SCORING_SAMPLES} generated images each. About a minute on a busy classroom "
             "server; the class's model is scored once per server.")
    key = (outcome.folder, bundles.key_of(bundle).mtime, str(reference.path), data_root)
    found = st.session_state.setdefault(SCORES_KEY, {})
    if key not in found:
        if not st.button("Score it against the class's model", key="upload_score", type="primary"):
            return
        scores = score(bundle, outcome.name, reference, data_root)
        if scores is None:
            return
        found[key] = scores
    scores = found[key]
    rows = scores["rows"]
    st.dataframe(score_table(rows), hide_index=True, key="upload_scores")
    sentence = versus_sentence(rows[outcome.name], rows[scores["reference"]], scores["reference"])
    if sentence is not None:
        st.markdown(sentence)
    st.caption(f"{scores['samples']} generated images of each model against {scores['real']} held-out real images, "
               f"in the feature space of {scores['feature_network']} (not Inception FID: compare only with figures "
               "of the same network). Density, coverage, precision and recall compare sets of "
               f"{scores['set_size']} images, the mean of {scores['sets']} pairs of sets with a 95% interval; "
               "`python -m training evaluate` takes "
               "2,000 images, whose intervals are narrower. The floor is real images against real ones: what a "
               f"perfect model would score. Scored in {scores['seconds']:.0f} s. Your generator's figures now show on "
               "the VAE vs GAN page, in the training replay's table and in the Experiments comparison of its dataset, "
               "for this browser session.")


st.session_state.setdefault(RESULTS_KEY, {})

st.title("Bring your own generator")
st.write("Upload the generator you trained in the PyTorch DCGAN tutorial and explore its latent space with "
         "every page of this app: the same sliders, the same diagnostics, your own model.")
# A link carries the dataset choice; the uploaded file itself stays in the visitor's tab.
page_links.adopt([links.choice("upload_trained_on", TRAINED_ON_CHOICES, name="trained_on")])

limit = int(st.get_option("server.maxUploadSize"))
with st.container(border=True):
    st.markdown(
        f"""
**What to upload**: the *state dict* of the tutorial's `netG` (32x32, 64x64 or 128x128 images, grey or
colour, any `nz` and `ngf`; a `nn.DataParallel` model's `module.` prefix is fine, and so is a training checkpoint
dict holding it as `netG`, `generator`, `generator_state`, `G`, `state_dict` or `model_state_dict`). In your
notebook run

```python
torch.save(netG.state_dict(), "netG.pth")
```

The file is read with `torch.load(..., weights_only=True)`: only tensors come out, and nothing in the file can run.
A whole pickled model (`torch.save(netG, ...)`) is refused for that reason. Up to {limit} MB.

**Trained on**: name the dataset your generator learnt from (celeba, anime, toyfaces or fashion-mnist) and it is
scored like the class's models, beside the class's model of that dataset, with the same feature network and the
same real images. Its images must fit the dataset (64x64 colour for the faces, 32x32 grey for Fashion-MNIST).
Trained on something else, it is explored on every page but not scored.
From a terminal: `python -m training import-dcgan netG.pth --out checkpoints/mine/dcgan --data celeba`, then
`python -m training evaluate checkpoints/mine/dcgan`.
"""
    )
    st.selectbox("Trained on", TRAINED_ON_CHOICES, key="upload_trained_on",
                 help="The dataset your generator was trained on; you can change it after the upload. "
                      "\"something else\": explored, not scored.")
    # Streamlit refuses other extensions itself, in the browser and again on the server.
    uploaded = st.file_uploader("netG state dict", type=list(EXTENSIONS), key="upload_file",
                                help="A .pth, .pt or .pkl file written by torch.save(netG.state_dict(), ...)")

results = st.session_state[RESULTS_KEY]
trained_on = dataset_chosen(st.session_state["upload_trained_on"])
if uploaded is not None:
    outcome = results.get(uploaded.file_id)
    if outcome is None or (outcome.error is not None and outcome.trained_on != trained_on):
        with st.spinner(f"Importing {uploaded.name}…"):
            results[uploaded.file_id] = imported(uploaded, trained_on)
    elif outcome.error is None and outcome.trained_on != trained_on:  # chosen after the upload: marked now
        results[uploaded.file_id], problem = mark_trained_on(outcome, trained_on, bundles.CHECKPOINTS)
        if problem is not None:
            st.error(problem)
    outcome = results[uploaded.file_id]
    if outcome.error is not None:
        st.error(f"Cannot import this file: {outcome.error}")
    else:
        try:
            bundle = bundles.load(outcome.folder)
        except LatentExplorerError as exc:
            st.error(f"The imported model cannot be opened any more: {exc}")
            st.stop()
        model = bundle.config["model"]
        st.success(f"Imported **{outcome.name}**: a DCGAN generator with nz = {model['latent_dim']}, ngf = "
                   f"{model['g_width']}, {model['channels']} channels, {model['image_size']}x{model['image_size']} "
                   f"images, trained on {outcome.trained_on or 'something else'}. It is now selected in the sidebar "
                   "model picker of every page, for this browser session only.")
        a, b, c = st.columns(3)
        a.metric("latent dimension nz", model["latent_dim"])
        b.metric("generator width ngf", model["g_width"])
        c.metric("parameters", f"{sum(p.numel() for p in bundle.generator.parameters()):,}")
        first_look = torch_worker.run(sampling.sample, bundle, bundle.prior, 16, 0)
        st.subheader(f"A first look: 16 samples from {bundle.prior.label}")
        st.image(grid_jpeg(first_look.images, nrow=8), output_format="JPEG", width="stretch")
        grid_downloads(first_look.images, file_stem(outcome.name, bundle.prior.label, "seed0", "16-samples"),
                       "upload_download",
                       numbers=[{"model": outcome.name, "trained on": outcome.trained_on or "something else",
                                 "latent dimension nz": model["latent_dim"], "generator width ngf": model["g_width"],
                                 "channels": model["channels"], "image size": model["image_size"],
                                 "parameters": sum(p.numel() for p in bundle.generator.parameters())}])
        st.page_link("views/sample.py", label="Explore it on the sampling page", icon=":material/casino:")
        st.caption("An imported generator has no training history or snapshots, so the training replay shows only "
                   "its samples.")
        scoring_section(bundle, outcome)

# Only what this page imported: a live run kept for this tab is a session bundle too, but it was trained here.
uploaded_names = {r.name for r in st.session_state[RESULTS_KEY].values() if r.error is None}
mine = {name: path for name, path in bundles.session_bundles().items() if name in uploaded_names}
if mine:
    st.subheader("Imported in this session")
    st.dataframe([{"model": name, "folder": path} for name, path in mine.items()], hide_index=True,
                 key="upload_list")
