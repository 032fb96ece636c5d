"""Page: upload a netG.pth from the PyTorch DCGAN tutorial and explore it on every generator page."""

from dataclasses import replace

import streamlit as st

from explorer.core import bundles, torch_worker
from explorer.core.figures import grid_jpeg
from explorer.logic.upload import EXTENSIONS, ImportResult, import_upload
from training import sampling
from training.errors import LatentExplorerError

RESULTS_KEY = "upload_results"  # file_id -> ImportResult: each file is imported once


def imported(uploaded) -> ImportResult:
    """Import the upload; a model that worked is listed in the sidebar of every page of this session."""
    result = import_upload(uploaded.name, uploaded.getvalue(), int(st.get_option("server.maxUploadSize")))
    if result.error is not None:
        return result
    return replace(result, name=bundles.add_session_bundle(f"imported · {uploaded.name}", result.folder))


st.session_state.setdefault(RESULTS_KEY, {})

st.title("Bring your own generator")
st.write("Upload the generator you trained in the PyTorch DCGAN tutorial and explore its latent space with "
         "every page of this app: the same sliders, the same diagnostics, your own model.")

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
From a terminal: `python -m training import-dcgan netG.pth --out checkpoints/mine/dcgan`.
"""
    )
    # Streamlit refuses other extensions itself, in the browser and again on the server.
    uploaded = st.file_uploader("netG state dict", type=list(EXTENSIONS), key="upload_file",
                                help="A .pth, .pt or .pkl file written by torch.save(netG.state_dict(), ...)")

results = st.session_state[RESULTS_KEY]
if uploaded is not None:
    if uploaded.file_id not in results:
        with st.spinner(f"Importing {uploaded.name}…"):
            results[uploaded.file_id] = imported(uploaded)
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
                   "images. It is now selected in the sidebar model picker of every page, for this browser session "
                   "only.")
        a, b, c = st.columns(3)
        a.metric("latent dimension nz", model["latent_dim"])
        b.metric("generator width ngf", model["g_width"])
        c.metric("parameters", f"{sum(p.numel() for p in bundle.generator.parameters()):,}")
        first_look = torch_worker.run(sampling.sample, bundle, bundle.prior, 16, 0)
        st.subheader(f"A first look: 16 samples from {bundle.prior.label}")
        st.image(grid_jpeg(first_look.images, nrow=8), output_format="JPEG", width="stretch")
        st.page_link("views/sample.py", label="Explore it on the sampling page", icon=":material/casino:")
        st.caption("An imported generator has no training history or snapshots, so the training replay shows only "
                   "its samples.")

# Only what this page imported: a live run kept for this tab is a session bundle too, but it was trained here.
uploaded_names = {r.name for r in st.session_state[RESULTS_KEY].values() if r.error is None}
mine = {name: path for name, path in bundles.session_bundles().items() if name in uploaded_names}
if mine:
    st.subheader("Imported in this session")
    st.dataframe([{"model": name, "folder": path} for name, path in mine.items()], hide_index=True,
                 key="upload_list")
