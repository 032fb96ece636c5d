"""Page: upload a netG.pth from the PyTorch DCGAN tutorial and explore it on every generator page."""

import shutil
import tempfile
from pathlib import Path

import streamlit as st

from explorer import bundles
from explorer.diagnostics import generate
from explorer.figures import grid_jpeg
from training.errors import LatentExplorerError
from training.importers import import_tutorial_dcgan
from training.latent import sample_latents

IMPORT_ROOT = Path(tempfile.gettempdir()) / "latent-explorer-imports"
RESULTS_KEY = "upload_results"  # file_id -> ("ok", display name, folder) or ("error", message): import once per file
EXTENSIONS = ("pth", "pt", "pkl")  # many courses name their torch.save files .pkl


def import_upload(uploaded) -> tuple[str, ...]:
    """Write the upload to a private temp folder, import it there, and return the outcome."""
    limit_mb = int(st.get_option("server.maxUploadSize"))
    if uploaded.size > limit_mb * 1024 * 1024:
        return ("error", f"{uploaded.name} is {uploaded.size / 2**20:.0f} MB, over this server's {limit_mb} MB limit "
                         "(server.maxUploadSize in .streamlit/config.toml)")
    IMPORT_ROOT.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="import-", dir=IMPORT_ROOT))
    upload = folder / "upload.pth"
    try:
        upload.write_bytes(uploaded.getvalue())
        out = import_tutorial_dcgan(upload, folder / "bundle", display_filename=uploaded.name)
    except LatentExplorerError as exc:
        return ("error", str(exc))
    except Exception as exc:  # torch's own errors on a file no check foresaw: one student's upload, not a crash
        return ("error", f"{uploaded.name}: cannot be read as a PyTorch state dict ({type(exc).__name__})")
    finally:
        upload.unlink(missing_ok=True)
        if not (folder / "bundle" / "config.json").exists():
            shutil.rmtree(folder, ignore_errors=True)  # nothing of a failed upload stays on the server
    name = bundles.add_session_bundle(f"imported · {uploaded.name}", out)
    return ("ok", name, str(out))


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
            results[uploaded.file_id] = import_upload(uploaded)
    outcome = results[uploaded.file_id]
    if outcome[0] == "error":
        st.error(f"Cannot import this file: {outcome[1]}")
    else:
        _, name, path = outcome
        try:
            bundle = bundles.load(path)
        except LatentExplorerError as exc:
            st.error(f"The imported model cannot be opened any more: {exc}")
            st.stop()
        model = bundle.config["model"]
        st.success(f"Imported **{name}**: a DCGAN generator with nz = {model['latent_dim']}, ngf = {model['g_width']}, "
                   f"{model['channels']} channels, {model['image_size']}x{model['image_size']} images. It is now "
                   "selected in the sidebar model picker of every page, for this browser session only.")
        a, b, c = st.columns(3)
        a.metric("latent dimension nz", model["latent_dim"])
        b.metric("generator width ngf", model["g_width"])
        c.metric("parameters", f"{sum(p.numel() for p in bundle.generator.parameters()):,}")
        z = sample_latents(bundle.prior, 16, bundle.latent_dim, seed=0)
        st.subheader(f"A first look: 16 samples from {bundle.prior.label}")
        st.image(grid_jpeg(generate(bundle.generator, z), nrow=8), output_format="JPEG",
                 width="stretch")
        st.page_link("views/sample.py", label="Explore it on the sampling page", icon="🎲")
        st.caption("An imported generator has no training history or snapshots, so the training replay shows only "
                   "its samples.")

mine = bundles.session_bundles()
if mine:
    st.subheader("Imported in this session")
    st.dataframe([{"model": name, "folder": path} for name, path in mine.items()], hide_index=True,
                 key="upload_list")
