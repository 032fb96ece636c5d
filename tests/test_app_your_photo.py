"""Drive "Your photo in the latent space" headless: a photo is prepared, a VAE reconstructs it and marks it on the
map, a GAN finds its code; the code reaches the interpolation, attribute and sampling pages; bad uploads are said."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from latent_bundles import metric, metric_labels, open_page, pick_model, shared_root, use_checkpoints
from PIL import Image

from explorer.logic.your_photo import PHOTO_CODES_KEY
from training.data.toyfaces import generate_toyfaces


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return shared_root(tmp_path_factory)


@pytest.fixture
def tiny(root, monkeypatch):
    use_checkpoints(monkeypatch, root)
    return root


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def face() -> bytes:
    return png(generate_toyfaces(1, seed=21, size=96, workers=1)[0][0])


def upload(at, *files):
    at.file_uploader(key="photo_files").set_value([(name, data, "image/png") for name, data in files]).run()
    assert not at.exception, at.exception


def trace_names(at) -> list[str]:
    return [trace.get("name") for trace in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]


def captions(image) -> str:
    return " ".join(i.caption for i in image.proto.imgs)


def texts(at) -> str:
    return "\n".join(e.value for e in [*at.info, *at.warning, *at.success, *at.error, *at.caption])


@pytest.mark.slow
def test_a_vae_reconstructs_the_photo_marks_it_on_the_map_and_walks_it(tiny, face):
    at = open_page("your_photo", "vae")
    assert "Upload a photo of a face" in texts(at)
    upload(at, ("me.png", face))
    assert not at.error, [e.value for e in at.error]
    assert "as its config records" not in texts(at)  # procedural toyfaces record no crop: the page says what it did
    assert "cropped and resized the DCGAN tutorial's way (this model's config records no crop; toyfaces images " \
           "were made at 32x32)" in texts(at)
    assert len(at.get("image")) >= 2  # the photo as the model sees it; photo and reconstruction
    assert float(metric(at, "reconstruction MSE, me.png")) > 0
    assert "me.png: reconstruction MSE" in texts(at) and "of its held-out training-set faces" in texts(at)
    assert "your photo" in trace_names(at)
    assert "projected with the same PCA as the held-out codes" in texts(at)
    assert "The code's length is" in texts(at)
    assert "compare it with the encoded held-out faces: 95% of their" in texts(at)
    assert "off its map" not in texts(at)  # an encoder mean is judged by the held-out codes, not by prior samples
    code = at.session_state[PHOTO_CODES_KEY][str(tiny / "toyfaces" / "vae")]["me.png"]
    assert code.shape == (16,)
    at.radio(key="photo_projection").set_value("t-SNE").run()
    assert not at.exception, at.exception
    assert "average position of its 10 nearest held-out codes" in texts(at)
    assert "your photo" in trace_names(at)

    # The attribute page walks the photo's code along the direction it finds (from the VAE's labelled codes).
    at.switch_page("views/directions.py").run()
    assert not at.exception, at.exception
    walked = [captions(i) for i in at.get("image") if "your photo's code walked along the direction" in captions(i)]
    assert len(walked) == 1 and walked[0].endswith("at t = -1.5, -0.75, +0, +0.75, +1.5")


def test_a_gan_finds_the_code_for_the_interpolation_and_sampling_pages(tiny, face):
    at = open_page("your_photo", "dcgan")
    at.session_state["photo_steps"] = 10
    upload(at, ("me.png", face), ("friend.png", png(generate_toyfaces(1, seed=22, size=80, workers=1)[0][0])))
    assert not at.error, [e.value for e in at.error]
    assert "feature distance, me.png" in metric_labels(at) and "pixel MSE, friend.png" in metric_labels(at)
    assert "closer than the best of 64 random codes" in texts(at)
    assert "The code's length is" in texts(at)
    dcgan = str(tiny / "toyfaces" / "dcgan")
    assert set(at.session_state[PHOTO_CODES_KEY][dcgan]) == {"me.png", "friend.png"}
    found = dict(at.session_state["photo_inversions"])
    at.run()  # a rerun shows the same searches, never new ones
    assert len(found) == 2 and all(at.session_state["photo_inversions"][k] is v for k, v in found.items())

    at.switch_page("views/interpolate.py").run()
    assert not at.exception, at.exception
    at.selectbox(key="interp_photo_a").set_value("your photo: me.png").run()
    assert not at.exception, at.exception
    assert any(h.value == "From your photo: me.png to seed 1 in 9 steps" for h in at.subheader)

    at.switch_page("views/sample.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="sample_photo").options == ["me.png", "friend.png"]
    pick_model(at, "vae")  # another model: the photo's GAN code means nothing there, so nothing is offered
    assert "sample_photo" not in [s.key for s in at.selectbox]


def test_bad_uploads_are_said_and_the_good_one_still_placed(tiny, face):
    at = open_page("your_photo", "vae")
    flat = png(np.full((64, 64, 3), 128, np.uint8))
    noise = png(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    upload(at, ("notes.png", b"this is not a picture"), ("wall.png", flat), ("static.png", noise), ("me.png", face))
    errors = [e.value for e in at.error]
    assert any(e.startswith("Cannot use this photo: notes.png: cannot read the photo as an image") for e in errors)
    assert any("wall.png: after the crop the picture is almost one flat colour" in e for e in errors)
    assert any("static.png looks like noise or a fine texture" in w.value for w in at.warning)
    assert "reconstruction MSE, me.png" in metric_labels(at) and "reconstruction MSE, static.png" in metric_labels(at)


def test_a_conditional_model_is_not_offered_a_photo(tiny):
    at = open_page("your_photo", "cgan")
    assert not at.exception and not at.get("file_uploader")
    assert "varies z alone" in "\n".join(i.value for i in at.info)


def test_more_photos_than_the_page_places_and_two_of_one_name(tiny, face):
    at = open_page("your_photo", "vae")
    other = png(generate_toyfaces(1, seed=23, size=64, workers=1)[0][0])
    upload(at, ("me.png", face), ("me.png", other), ("a.png", face), ("b.png", other), ("c.png", face))
    assert any("5 photos uploaded; this page places the first 4" in w.value for w in at.warning)
    labels = metric_labels(at)
    assert "reconstruction MSE, me.png" in labels and "reconstruction MSE, me.png (2)" in labels
    assert "reconstruction MSE, c.png" not in labels
    assert set(at.session_state[PHOTO_CODES_KEY][str(tiny / "toyfaces" / "vae")]) == {"me.png", "me.png (2)",
                                                                                      "a.png", "b.png"}


def test_a_vae_still_training_has_no_map_but_places_the_photo(root, tmp_path, monkeypatch, face):
    # A run that is still training has no latents.npz and no held-out MSE yet (the CelebA VAE, for a while).
    from latent_bundles import copy_root

    private = copy_root(root, tmp_path, ("vae",))
    (private / "toyfaces" / "vae" / "latents.npz").unlink()
    (private / "toyfaces" / "vae" / "metrics.json").unlink()
    use_checkpoints(monkeypatch, private)
    at = open_page("your_photo", "vae")
    upload(at, ("me.png", face))
    assert not at.error and not at.get("plotly_chart")
    assert "this model records no held-out MSE to compare with" in texts(at)
    assert "no map of its held-out faces to place the photo on" in texts(at)
    assert "The code's length is" in texts(at)
