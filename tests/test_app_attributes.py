"""Drive the three attribute pages headless: cGAN switches and pairs, InfoGAN codes, directions for a VAE and a DCGAN;
each says which models it applies to."""

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


def explanation(at) -> str:
    return "\n".join(e.value for e in at.info)


def test_conditional_gan_switches_and_pairs(tiny):
    at = open_page("conditions", "cgan")
    assert metric_labels(at)[:5] == ["hair_colour = black: recognised", "eye_colour = brown: recognised",
                                     "smiling = no: recognised", "glasses = no: recognised",
                                     "beard = no: recognised"]
    at.toggle(key="attr_cond_smiling").set_value(True)
    at.selectbox(key="attr_cond_hair_colour").set_value("blonde")
    at.slider(key="attr_n").set_value(8).run()
    assert not at.exception, at.exception
    assert "smiling = yes: recognised" in metric_labels(at)
    assert metric(at, "hair_colour = blonde: recognised").endswith("%")
    # The pairs: smiling no vs yes by default, 10 of them.
    assert "Each of the 10 pairs" in explanation(at) and "smiling = no" in explanation(at)
    ratio = metric(at, "attribute change vs changing z")
    pair = metric(at, "change within a pair (per pixel)")
    face = metric(at, "change between codes (per pixel)")
    assert float(face) > 0 and ratio.endswith("%")
    assert f"differ by {pair} per pixel" in explanation(at) and f"codes differ by {face}" in explanation(at)
    # A categorical pair, then the same value twice (a message, not a traceback).
    at.selectbox(key="attr_pair_attr").set_value("hair_colour").run()
    at.selectbox(key="attr_pair_first").set_value("red")
    at.selectbox(key="attr_pair_second").set_value("blue")
    at.slider(key="attr_pairs").set_value(4).run()
    assert not at.exception, at.exception
    assert "Each of the 4 pairs" in explanation(at) and "hair_colour = red" in explanation(at)
    assert metric(at, "recognised as hair_colour = blue").endswith("%")
    at.selectbox(key="attr_pair_second").set_value("red").run()
    assert not at.exception and any("Pick two different values" in w.value for w in at.warning)


def test_vae_directions_from_its_held_out_codes(tiny):
    held = load_bundle(tiny / "toyfaces" / "vae").latents()
    at = open_page("directions", "vae")
    assert any(f"{len(held['codes'])} encoded held-out images" in c.value for c in at.caption)
    smiling = held["labels"][:, list(held["attribute_names"]).index("smiling")]
    assert metric(at, "codes with / without") == f"{int(smiling.sum())} / {int((smiling == 0).sum())}"
    assert "Codes with smiling = yes" in explanation(at)
    assert metric(at, "recognised at t = -1.5 / +1.5").count("%") == 2  # the feature network scores the walk
    at.radio(key="attr_dir_method").set_value("logistic regression")
    at.slider(key="attr_dir_t").set_value(3.0)
    at.checkbox(key="attr_dir_real").check().run()
    assert not at.exception, at.exception
    assert "logistic regression direction" in explanation(at)
    assert "recognised at t = -3 / +3" in metric_labels(at)
    # A categorical attribute: one value against all the others (the most common one has enough codes).
    hair = held["labels"][:, list(held["attribute_names"]).index("hair_colour")]
    common = ("black", "brown", "blonde", "red", "blue")[int(np.bincount(hair).argmax())]
    at.selectbox(key="attr_dir_attr").set_value("hair_colour").run()
    at.selectbox(key="attr_dir_value").set_value(common).run()
    assert not at.exception, at.exception
    assert metric(at, "codes with / without") == f"{int((hair == np.bincount(hair).argmax()).sum())} / " \
                                                  f"{int((hair != np.bincount(hair).argmax()).sum())}"


def test_dcgan_directions_from_feature_network_labels(tiny):
    at = open_page("directions", "dcgan")
    at.slider(key="attr_label_n").set_value(128).run()
    assert not at.exception, at.exception
    assert any("128 generated samples labelled by the feature network" in c.value for c in at.caption)
    # An untrained feature network may see the attribute everywhere or nowhere: a number or a clear message.
    if at.warning:
        assert "a direction needs at least 2 on each side" in at.warning[0].value
    else:
        with_, without = (int(v) for v in metric(at, "codes with / without").split(" / "))
        assert with_ + without == 128


def test_without_a_feature_network_a_dcgan_says_what_the_page_needs(root, tmp_path, monkeypatch):
    use_checkpoints(monkeypatch, copy_root(root, tmp_path, ("dcgan",)))
    at = open_page("directions", "dcgan")
    assert "python -m training train-featurenet --data toyfaces" in explanation(at)
    assert not at.get("image")


def test_infogan_codes(tiny):
    at = open_page("codes", "infogan")
    at.selectbox(key="attr_info_category_1").set_value(2)
    at.slider(key="attr_info_continuous_1").set_value(1.5).run()
    assert not at.exception, at.exception
    assert any("outside [-1, 1]" in w.value for w in at.warning)
    effects = at.dataframe[0].value
    assert list(effects["code"]) == ["category_1", "continuous_1", "continuous_2"]
    at.selectbox(key="attr_info_sweep").set_value("continuous_2").run()
    assert not at.exception and "changes the image by" in explanation(at)
    assert len(at.get("image")) == 2  # the grid and the sweep


@pytest.mark.parametrize("page,family,listed", [("conditions", "dcgan", "tiny cgan"), ("codes", "vae", "tiny infogan"),
                                                ("directions", "cgan", "tiny dcgan, tiny vae")])
def test_an_attribute_page_names_the_models_it_applies_to(tiny, page, family, listed):
    at = open_page(page, family)
    assert "does not apply" in explanation(at) and f"in the sidebar: {listed}." in explanation(at)
    assert not at.get("image") and not at.exception


@shipped("cgan")
def test_shipped_conditional_gan():
    at = open_page("conditions", "cgan", timeout=300)
    at.toggle(key="attr_cond_glasses").set_value(True).run()
    assert not at.exception, at.exception
    assert "Each of the 10 pairs" in explanation(at)
    assert int(metric(at, "attribute change vs changing z").rstrip("%")) > 0  # the condition changes the image
    if "glasses = yes: recognised" in metric_labels(at):  # with the shipped feature network
        assert 0 <= int(metric(at, "glasses = yes: recognised").rstrip("%")) <= 100


@pytest.mark.slow
@shipped("vae")
def test_shipped_vae_directions():
    at = open_page("directions", "vae", timeout=300)
    at.selectbox(key="attr_dir_attr").set_value("glasses").run()
    assert not at.exception, at.exception
    assert float(metric(at, "separation (std devs)")) > 1  # glasses are written clearly into the codes
