"""The generator pages on a conditional GAN and a VAE: say when a page does not apply, explain VAE curves."""

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from explorer.logic.replay import explain_vae_losses, run_status, vae_story
from training.bundle import save_bundle
from training.data.toyfaces import ATTRIBUTES
from training.models import registry
from training.models.cgan import CGANConfig
from training.models.vae import VAEConfig

APP = str(Path(__file__).resolve().parent.parent / "explorer" / "app.py")


def vae_history(n: int = 200) -> dict:
    t = np.arange(1, n + 1)
    return {"step": t.tolist(), "loss": (0.3 / np.sqrt(t)).tolist(), "recon": (0.3 / np.sqrt(t)).tolist(),
            "kl": (5 + 20 * t / n).tolist()}


def untrained_bundle(folder: Path, family: str, model, history: dict | None = None) -> Path:
    """Fresh weights are enough here: these tests are about what the pages say, not what the models draw."""
    config = {"name": f"tiny {family}", "family": family, "model": asdict(model),
              "training": {"steps": 200, "batch_size": 16},
              "dataset": {"name": "toyfaces", "image_size": 32, "attributes": [a.to_json() for a in ATTRIBUTES],
                          "source": {"name": "toyfaces", "num_images": 40, "seed": 0, "image_size": 32}},
              "step": 200}
    networks = registry.build_networks(family, config["model"])
    return save_bundle(folder, config, networks, history)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    cgan = untrained_bundle(root / "cgan", "cgan", CGANConfig.for_dataset(ATTRIBUTES, ["smiling"], latent_dim=16,
                                                                          image_size=32, g_width=4, d_width=4))
    vae = untrained_bundle(root / "vae", "vae", VAEConfig(latent_dim=16, image_size=32, g_width=4, d_width=4),
                           vae_history())
    return {"tiny cgan": str(cgan), "tiny vae": str(vae)}


@pytest.fixture
def app(bundles):
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["session_bundles"] = bundles  # as if imported in this browser session
    at.run()
    return at


def pick(at, page: str, name: str):
    at.switch_page(page).run()
    at.sidebar.selectbox(key="bundle_select").set_value(name).run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("page", ["views/sweep.py", "views/interpolate.py"])
def test_z_only_pages_say_they_do_not_apply_to_a_conditional_gan(app, page):
    pick(app, page, "tiny cgan")
    assert any("does not apply" in i.value for i in app.info)
    assert not app.get("image")


def test_vae_decoder_is_swept_and_its_curves_are_explained(app):
    pick(app, "views/sweep.py", "tiny vae")
    assert app.dataframe[0].value["mean"].tolist()[0] == -10
    pick(app, "views/replay.py", "tiny vae")
    text = "\n".join(i.value for i in app.info)
    assert "fixed target" in text and "KL term rose" in text
    pick(app, "views/replay.py", "tiny cgan")
    assert any("balanced cycle" in c.value for c in app.caption)  # generated with default conditions


def test_vae_story_and_run_status():
    s = vae_story(vae_history())
    assert s.recon_last.mean < s.recon_first.mean and s.kl_last.mean > s.kl_first.mean
    assert f"{s.recon_first.mean:.4f}" in explain_vae_losses(s)
    assert run_status({"training": {"steps": 5000}, "step": 5000}) == "finished"
    assert run_status({"training": {"steps": 5000}, "step": 1500}) == "stopped at step 1500 of 5000"
    assert run_status({"step": 3}) == "unknown"
