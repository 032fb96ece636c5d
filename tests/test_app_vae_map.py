"""Drive the VAE latent map headless: PCA with a distribution overlay, t-SNE, a chosen code, reconstructions."""

import json
from pathlib import Path

import numpy as np
import pytest
from latent_bundles import copy_root, metric, metric_labels, open_page, shared_root, shipped, use_checkpoints

from training.bundle import load_bundle


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return shared_root(tmp_path_factory)


@pytest.fixture
def tiny(root, monkeypatch):
    use_checkpoints(monkeypatch, root)
    return root


def texts(at) -> str:
    return "\n".join(e.value for e in [*at.info, *at.warning, *at.success])


def test_pca_map_with_the_n_minus_10_overlay(tiny):
    vae = load_bundle(tiny / "toyfaces" / "vae")
    n = len(vae.latents()["codes"])
    at = open_page("vae_map", "vae")
    assert not at.error
    # Default: PCA, coloured by the first attribute, N(-10,1) overlaid: far outside the cloud of real codes.
    assert metric(at, "overlay codes inside the data cloud") == "0%"
    far = float(metric(at, "distance of N(-10, 1) codes from the data centre"))
    data = float(metric(at, "held-out codes' distance (mean / 99%)").split(" / ")[1])
    assert far == pytest.approx((16 * 101) ** 0.5, rel=0.1) and far > 5 * data
    assert "0% of it falls inside the data cloud" in texts(at)
    assert "PCA axes hold" in texts(at) and f"of the {n} codes" in texts(at)
    assert "neighbours with the same hair_colour" in metric_labels(at)
    # Reconstructions of the held-out images, and the training run's number for all of them.
    holdout = vae.metrics["holdout_reconstruction"]
    assert metric(at, f"MSE on all {holdout['images']} held-out images") == f"{holdout['mse']:.4f}"
    assert float(metric(at, "MSE of these 16 images (pixels in [-1, 1])")) > 0
    at.selectbox(key="map_overlay").set_value("N(0,1)")
    at.selectbox(key="map_colour").set_value("(one colour)")
    at.slider(key="map_recon_n").set_value(4).run()
    assert not at.exception, at.exception
    assert "distance of N(0, 1) codes from the data centre" in metric_labels(at)
    assert "MSE of these 4 images (pixels in [-1, 1])" in metric_labels(at)
    assert "neighbours with the same hair_colour" not in metric_labels(at)
    at.selectbox(key="map_overlay").set_value("none").run()
    assert not any(label.startswith("distance of") for label in metric_labels(at))


def test_tsne_perplexity_and_choosing_a_code(tiny):
    at = open_page("vae_map", "vae")
    at.radio(key="map_projection").set_value("t-SNE").run()
    assert not at.exception, at.exception
    assert "t-SNE places the 24 codes" in texts(at)
    assert any("using 7.67." in c.value for c in at.caption)  # perplexity 30 is too much for 24 codes: said so
    at.slider(key="map_perplexity").set_value(5).run()
    assert not at.exception and not any("using" in c.value for c in at.caption)
    at.selectbox(key="map_colour").set_value("smiling").run()
    assert "neighbours with the same smiling" in metric_labels(at)
    at.number_input(key="map_point").set_value(3).run()
    assert not at.exception
    assert any(h.value == "Code 3" for h in at.subheader)
    assert float(metric(at, "reconstruction MSE of this face")) > 0
    assert any(c.value.startswith("labels: hair_colour = ") for c in at.caption)


def test_not_a_vae_and_a_vae_without_latents(root, tmp_path, monkeypatch):
    copy = copy_root(root, tmp_path, ("dcgan", "vae"))
    (copy / "toyfaces" / "vae" / "latents.npz").unlink()  # a run still training has none yet
    use_checkpoints(monkeypatch, copy)
    at = open_page("vae_map", "dcgan")
    assert "has no encoder" in texts(at) and "does not apply" in texts(at)
    assert not at.get("image")
    at = open_page("vae_map", "vae")
    assert "written when VAE training finishes" in texts(at)
    assert len(at.get("image")) == 1  # the 32 random samples still show
    at.number_input(key="map_sample_seed").set_value(4).run()
    assert not at.exception


@shipped("vae")
def test_shipped_vae_map():
    at = open_page("vae_map", "vae", timeout=300)
    assert not at.exception
    if "overlay codes inside the data cloud" in metric_labels(at):  # latents.npz is there
        assert metric(at, "overlay codes inside the data cloud") == "0%"
        assert "never saw codes there" in texts(at)
        far = float(metric(at, "distance of N(-10, 1) codes from the data centre"))
        at.selectbox(key="map_overlay").set_value("N(0,1)").run()
        near = float(metric(at, "distance of N(0, 1) codes from the data centre"))
        data = float(metric(at, "held-out codes' distance (mean / 99%)").split(" / ")[0])
        # The KL term keeps the encoded means near N(0,1)'s region (a bit inside it: the rest is encoder noise).
        assert near < 2 * data < far / 5


def _drop_images(bundle) -> None:
    import numpy as np

    with np.load(bundle / "latents.npz") as data:
        kept = {k: data[k] for k in data.files if k != "images"}
    np.savez_compressed(bundle / "latents.npz", **kept)


def test_originals_read_from_the_dataset_when_the_bundle_ships_codes_only(root, tmp_path, monkeypatch):
    import json

    import numpy as np
    from latent_bundles import tiny_faces

    from explorer.logic.vae_map import reconstruct

    copy = copy_root(root, tmp_path, ("vae",))
    vae_dir = copy / "toyfaces" / "vae"
    _drop_images(vae_dir)
    use_checkpoints(monkeypatch, copy)
    at = open_page("vae_map", "vae")
    assert not at.exception and not at.error
    # The originals are regenerated at the codes' dataset positions: the MSE shown is the one of those faces.
    vae = load_bundle(vae_dir)
    indices, faces = vae.latents()["indices"], tiny_faces().images
    expected = reconstruct(vae, faces[indices[:16]])
    assert metric(at, "MSE of these 16 images (pixels in [-1, 1])") == f"{expected.mean_mse:.4f}"
    at.number_input(key="map_point").set_value(20).run()  # any code has its original, not only the first ones
    one = reconstruct(vae, faces[indices[20:21]])
    assert metric(at, "reconstruction MSE of this face") == f"{one.mse[0]:.4f}"

    # A real dataset that is not on this machine: the page says why there are no originals, and still works.
    config = json.loads((vae_dir / "config.json").read_text())
    config["dataset"]["name"] = "anime"
    config["dataset"]["source"] = {"name": "anime", "path": str(tmp_path / "no-such-folder")}
    (vae_dir / "config.json").write_text(json.dumps(config))
    at = open_page("vae_map", "vae")
    assert not at.exception
    assert "ships codes and labels only" in texts(at) and "local copy" in texts(at)
    assert 'sidebar box "Folder of your datasets"' in texts(at) and "LATENT_EXPLORER_ANIME_ROOT" in texts(at)
    assert np.isfinite(float(metric(at, "held-out codes' distance (mean / 99%)").split(" / ")[0]))


CELEBA_VAE = Path(__file__).resolve().parent.parent / "checkpoints" / "celeba" / "vae"


@pytest.mark.skipif(not (CELEBA_VAE / "latents.npz").exists(), reason="the shipped CelebA VAE is not there")
def test_the_celeba_map_opens_coloured_by_an_attribute_a_class_can_see():
    """CelebA's first attribute is 5_o_Clock_Shadow; the map opens coloured by Male, which splits it visibly."""
    from streamlit.testing.v1 import AppTest

    from explorer.core import bundles

    at = AppTest.from_file(str(CELEBA_VAE.parent.parent.parent / "explorer" / "app.py"), default_timeout=180)
    at.run()
    at.switch_page("views/vae_map.py").run()
    name = next(n for n, p in bundles.available().items() if Path(p).resolve() == CELEBA_VAE.resolve())
    at.sidebar.selectbox(key="bundle_select").set_value(name).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="map_colour").value == "Male"
    assert "neighbours with the same Male" in metric_labels(at)


def test_the_map_in_three_dimensions_decodes_the_code_in_the_box(tiny):
    from explorer.logic.vae_map import pca_map, tsne_map

    at = open_page("vae_map", "vae")
    at.radio(key="map_dims").set_value("3-D").run()
    assert not at.exception, at.exception
    assert "three PCA axes hold" in texts(at)

    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert {trace["type"] for trace in spec["data"]} == {"scatter3d"}
    assert any("customdata" in t for t in spec["data"])  # the held-out codes carry their index for a click
    at.number_input(key="map_point").set_value(3).run()  # in 3-D the box picks a code (hover shows its number)
    assert not at.exception and "Code 3" in [h.value for h in at.subheader]
    at.radio(key="map_projection").set_value("t-SNE").run()
    assert not at.exception, at.exception
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert {trace["type"] for trace in spec["data"]} == {"scatter3d"}
    codes = np.random.default_rng(0).normal(size=(30, 8))
    assert pca_map(codes, 3).xy.shape == (30, 3) and pca_map(codes).xy.shape == (30, 2)
    assert tsne_map(codes, perplexity=5, dims=3, max_iter=250)[0].shape == (30, 3)
