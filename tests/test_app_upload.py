"""Drive the upload page headless: a tutorial netG.pth becomes a model on every page; bad files get messages."""

import io
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from training.models.dcgan import DCGANConfig, Generator

APP = str(Path(__file__).resolve().parent.parent / "explorer" / "app.py")


def saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def state_dict_bytes() -> bytes:
    torch.manual_seed(0)
    return saved(Generator(DCGANConfig(g_width=8)).state_dict())  # the tutorial's names: main.0.weight, ...


@pytest.fixture
def app():
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page("views/upload.py").run()
    assert not at.exception, at.exception
    return at


def upload(at, name: str, content: bytes):
    at.file_uploader(key="upload_file").set_value((name, content, "application/octet-stream")).run()
    assert not at.exception, at.exception


def test_imported_generator_is_explored_on_every_page(app, state_dict_bytes):
    upload(app, "netG.pth", state_dict_bytes)
    assert not app.error
    assert "nz = 100, ngf = 8" in app.success[0].value
    assert next(m.value for m in app.metric if m.label == "latent dimension nz") == "100"
    assert len(app.get("image")) == 1  # the first look at 16 samples
    name = app.dataframe[0].value["model"][0]
    assert name == "imported · netG.pth"

    app.switch_page("views/sweep.py").run()
    assert not app.exception
    assert app.sidebar.selectbox(key="bundle_select").value == name  # selected for this session
    assert app.dataframe[0].value["mean"].tolist()[0] == -10

    app.switch_page("views/interpolate.py").run()
    assert not app.exception and float(next(m.value for m in app.metric if m.label == "shortest code, linear")) < 9

    app.switch_page("views/replay.py").run()
    assert not app.exception
    text = "\n".join(i.value for i in app.info)
    assert "without a training record" in text and "imported from a state dict" in text
    assert "No loss history" in text and "no fixed-noise snapshots" in text
    assert "imported without its training data" in text
    assert len(app.get("image")) == 1  # generated samples still shown

    app.switch_page("views/sample.py").run()
    assert not app.exception
    assert app.sidebar.selectbox(key="bundle_select").value == name


class WholeModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.main = torch.nn.Sequential(torch.nn.ConvTranspose2d(100, 8, 4, 1, 0, bias=False))


@pytest.mark.parametrize("name,content,message", [
    ("netG.pth", saved(WholeModel()), 'torch.save(netG.state_dict(), "netG.pth")'),
    ("netG.pth", b"not a checkpoint at all", "not a file written by torch.save"),
    ("netG.pth", saved({"main.0.weight": torch.zeros(100, 60, 4, 4), "main.12.weight": torch.zeros(8, 3, 4, 4)}),
     "not a multiple of 8"),
    ("netG.pt", b"\x89PNG\r\n\x1a\n" + bytes(32), "this is an image"),
])
def test_bad_uploads_get_a_message(app, name, content, message):
    upload(app, name, content)
    assert any(message in e.value for e in app.error), [e.value for e in app.error]
    assert not app.success


def test_upload_over_the_server_limit_is_refused_with_the_setting_named(app):
    from streamlit import config

    before = config.get_option("server.maxUploadSize")
    config.set_option("server.maxUploadSize", 1)
    try:
        upload(app, "big.pth", bytes(3 * 2**20))
    finally:
        config.set_option("server.maxUploadSize", before)
    assert any("over this server's 1 MB limit" in e.value and "maxUploadSize" in e.value for e in app.error)


def test_a_live_run_kept_for_the_tab_is_not_listed_as_imported(app, state_dict_bytes):
    """Train live keeps a run for its tab as a session bundle too; the upload page lists only its own imports."""
    live = Path(__file__).resolve().parent.parent / "checkpoints" / "toyfaces" / "dcgan"
    app.session_state["session_bundles"] = {"live · my run · 12:00": str(live)}
    app.run()
    assert not app.exception and not app.dataframe  # nothing imported yet: no list
    upload(app, "netG.pth", state_dict_bytes)
    assert app.dataframe[0].value["model"].tolist() == ["imported · netG.pth"]
