"""A link to any view, on every page, through AppTest's query parameters: a good link reproduces the settings and
the page writes them back; a hostile one (a model that is not there, a mean of 1e300, a 10,000-character string,
text where a number belongs) falls back to the defaults with one sentence, never an exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from latent_bundles import open_with_link
from streamlit.testing.v1 import AppTest

from explorer.core.links import RUN_KEY

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
INFOGAN = next((f"experiments/infogan/{p.name}" for p in sorted((CHECKPOINTS / "experiments" / "infogan").glob("*"))
                if (p / "config.json").is_file()), None)
LONG = "x" * 10_000
SENTENCE = "This link asked for settings"

# page: (its file, a link's parameters, what they must set (session key -> value), a hostile link, the defaults
# its hostile values must leave (session key -> value))
PAGES = {
    "sample": ("views/sample.py", {"model": "toyfaces/dcgan", "mean": "-10", "seed": "7", "n": "16"},
               {"mean": -10.0, "seed": 7, "n": 16},
               {"model": "../../etc", "mean": "1e300", "seed": LONG, "n": "abc", "kind": "Cauchy"},
               {"mean": 0.0, "seed": 0, "n": 64, "kind": "Normal"}),
    "sweep": ("views/sweep.py", {"model": "toyfaces/dcgan", "range": "-4,4", "step": "1", "seed": "3", "shown": "4"},
              {"sweep_range": (-4.0, 4.0), "sweep_step": 1.0, "sweep_seed": 3, "sweep_shown": 4},
              {"model": "toyfaces/nothing", "range": "4,-4", "std": "1e300", "seed": "-1"},
              {"sweep_range": (-10.0, 10.0), "sweep_std": 1.0, "sweep_seed": 0}),
    "interpolate": ("views/interpolate.py", {"model": "toyfaces/dcgan", "from": "5", "to": "9", "steps": "5"},
                    {"interp_seed_a": 5, "interp_seed_b": 9, "interp_steps": 5},
                    {"from": "nan", "to": LONG, "steps": "99"},
                    {"interp_seed_a": 0, "interp_seed_b": 1, "interp_steps": 9}),
    "conditions": ("views/conditions.py", {"model": "toyfaces/cgan", "n": "8", "seed": "2", "smiling": "true",
                                           "hair_colour": "red", "pair": "glasses"},
                   {"attr_n": 8, "attr_seed": 2, "attr_cond_smiling": True, "attr_cond_hair_colour": "red",
                    "attr_pair_attr": "glasses"},
                   {"model": "toyfaces/cgan", "n": "7", "smiling": "maybe", "hair_colour": LONG, "pair": "tail"},
                   {"attr_n": 16, "attr_cond_smiling": False, "attr_cond_hair_colour": "black",
                    "attr_pair_attr": "smiling"}),
    "codes": ("views/codes.py", {"model": INFOGAN, "n": "8", "seed": "4"}, {"attr_n": 8, "attr_seed": 4},
              {"model": INFOGAN, "n": "1e300", "seed": "[4]"}, {"attr_n": 16, "attr_seed": 0}),
    "directions": ("views/directions.py", {"model": "toyfaces/vae", "t": "2", "faces": "4", "seed": "5",
                                           "method": "logistic regression"},
                   {"attr_dir_t": 2.0, "attr_dir_faces": 4, "attr_dir_seed": 5,
                    "attr_dir_method": "logistic regression"},
                   {"model": "toyfaces/vae", "t": "1e300", "method": LONG, "attribute": "tail_length"},
                   {"attr_dir_t": 1.5, "attr_dir_method": "mean difference"}),
    "arithmetic": ("views/arithmetic.py", {"model": "toyfaces/vae", "draw_A": "2", "noise_seed": "3"},
                   {"arith_draw_A": 2, "arith_noise_seed": 3},
                   {"model": "toyfaces/vae", "draw_A": "-5", "noise_seed": LONG, "figure": "no such figure"},
                   {"arith_draw_A": 0, "arith_noise_seed": 0}),
    "vae_map": ("views/vae_map.py", {"model": "toyfaces/vae", "dims": "3-D", "seed": "6", "overlay": "U(0,1)"},
                {"map_dims": "3-D", "map_sample_seed": 6, "map_overlay": "U(0,1)"},
                {"model": "toyfaces/vae", "dims": "4-D", "seed": "1e300", "overlay": LONG},
                {"map_dims": "2-D", "map_sample_seed": 0, "map_overlay": "N(-10,1)"}),
    "compare": ("views/compare.py", {"model": "toyfaces/vae", "mean": "-3", "seed": "2", "n": "8"},
                {"compare_mean": -3.0, "compare_seed": 2, "compare_n": 8},
                {"model": "toyfaces/vae", "mean": "1e300", "n": "5", "vae": LONG},
                {"compare_mean": 0.0, "compare_n": 32}),
    "replay": ("views/replay.py", {"model": "toyfaces/dcgan", "step": "1000", "seed": "3", "smooth": "false"},
               {"replay_step": 1000, "replay_seed": 3, "replay_smooth": False},
               {"model": "toyfaces/dcgan", "step": "1001", "seed": LONG, "smooth": "perhaps"},
               {"replay_step": 3000, "replay_seed": 0, "replay_smooth": True}),
    "train_live": ("views/train_live.py", {"family": "vae", "kl_weight": "0.01", "seed": "5", "latent_dim": "16"},
                   {"live_family": "vae", "live_kl_weight": 0.01, "live_seed": 5, "live_latent_dim": 16},
                   {"family": "transformer", "kl_weight": "1e300", "latent_dim": "17", "seed": LONG},
                   {"live_family": "dcgan", "live_kl_weight": 1e-4, "live_latent_dim": 100, "live_seed": 0}),
    "experiments": ("views/experiments.py", {"group": "data-size", "step": "500", "all_faces": "true"},
                    {"experiments_group": "data-size", "experiments_step_data-size": 500,
                     "experiments_all_faces": True},
                    {"group": LONG, "all_faces": "1e300"}, {"experiments_all_faces": False}),
    "upload": ("views/upload.py", {"trained_on": "celeba"}, {"upload_trained_on": "celeba"},
               {"trained_on": "../../etc/passwd"}, {}),
    "your_photo": ("views/your_photo.py", {"model": "toyfaces/dcgan", "steps": "100", "starts": "2"},
                   {"photo_steps": 100, "photo_starts": 2},
                   {"model": LONG, "steps": "105", "starts": "1e300", "projection": "UMAP"},
                   {"photo_steps": 50, "photo_starts": 4, "photo_projection": "PCA"}),
}


def link_warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning if w.value.startswith(SENTENCE)]


@pytest.mark.parametrize("name", list(PAGES))
def test_a_good_link_reproduces_the_settings_and_is_written_back(name):
    page, params, expected, _, _ = PAGES[name]
    if params.get("model") is None and "model" in params:
        pytest.skip("no shipped InfoGAN")
    at = open_with_link(page, params)
    assert not link_warnings(at)
    for key, value in expected.items():
        assert at.session_state[key] == value, key
    # The URL still says what the link said (values at their defaults are left out), and the link box shows it.
    assert {k: at.query_params[k] for k in params} == params
    codes = [c.value for c in at.sidebar.code]
    assert len(codes) == 1 and all(f"{k}=" in codes[0] for k in params), codes  # one box, drawn over not beside
    assert link_fields_match_their_controls(at)


@pytest.mark.parametrize("name", list(PAGES))
def test_a_hostile_link_falls_back_to_the_defaults_with_one_sentence(name):
    page, params, _, hostile, defaults = PAGES[name]
    if params.get("model") is None and "model" in params:
        pytest.skip("no shipped InfoGAN")
    at = open_with_link(page, hostile)
    assert len(link_warnings(at)) == 1, [w.value for w in at.warning]
    sentence = link_warnings(at)[0]
    assert LONG not in sentence and len(sentence) < 400
    for key, value in defaults.items():
        assert at.session_state[key] == value, key
    # The page's own URL no longer holds the refused values.
    assert LONG not in str(dict(at.query_params))


def test_moving_a_control_updates_the_url_and_a_new_session_opening_it_sees_the_same():
    at = open_with_link("views/sample.py", {"model": "toyfaces/dcgan"})
    at.slider(key="mean").set_value(-9.5).run()
    at.number_input(key="seed").set_value(11).run()
    assert not at.exception
    params = {k: at.query_params[k] for k in at.query_params}
    assert params == {"model": "toyfaces/dcgan", "mean": "-9.5", "seed": "11"}
    again = open_with_link("views/sample.py", params)
    assert (again.session_state["mean"], again.session_state["seed"]) == (-9.5, 11)
    assert again.subheader[0].value == at.subheader[0].value  # "64 samples from z ~ N(-9.5,1)"


def test_a_second_run_of_the_same_link_does_not_undo_what_the_visitor_changed():
    at = open_with_link("views/sweep.py", {"model": "toyfaces/dcgan", "seed": "3"})
    at.number_input(key="sweep_seed").set_value(4).run()
    at.run()
    assert at.session_state["sweep_seed"] == 4 and at.query_params["seed"] == "4"


def link_fields_match_their_controls(at: AppTest) -> bool:
    """Every numeric setting a link may carry has the limits of the slider or box that shows it."""
    fields = [field for field, _ in at.session_state[RUN_KEY]["fields"] if field.kind in ("number", "span")]
    widgets = {w.key: w for w in [*at.slider, *at.number_input] if w.key}
    for field in fields:
        widget = widgets.get(field.key)
        if widget is None or field.key in ("map_point", "map_points", "replay_step") \
                or field.key.startswith("experiments_step"):
            continue  # not drawn on this run, or limits the page sets from the model (it clamps the value itself)
        low, high = (widget.min, widget.max) if hasattr(widget, "min") else (widget.min_value, widget.max_value)
        assert (field.low, field.high) == (float(low), float(high)), (field.key, low, high)
    return True


def test_vae_vs_gan_names_its_two_models_only_when_they_are_not_the_sidebars_pair():
    at = open_with_link("views/compare.py", {"model": "toyfaces/vae"})
    assert "gan" not in at.query_params and "vae" not in at.query_params
    others = [g for g in at.selectbox(key="compare_gan").options if g != at.session_state["compare_gan"]]
    if not others:
        pytest.skip("one GAN of the toyfaces dataset only")
    at.selectbox(key="compare_gan").set_value(others[0]).run()
    link = {k: at.query_params[k] for k in at.query_params}
    assert link["gan"] == others[0]
    again = open_with_link("views/compare.py", link)
    assert again.session_state["compare_gan"] == others[0] and not link_warnings(again)


def test_a_model_uploaded_in_this_tab_is_not_put_in_the_link_and_the_box_says_so():
    import io

    import torch

    from training.models.dcgan import DCGANConfig, Generator

    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.save(Generator(DCGANConfig(g_width=8)).state_dict(), buffer)
    at = open_with_link("views/upload.py", {})
    at.file_uploader(key="upload_file").set_value(("netG.pth", buffer.getvalue(), "application/octet-stream")).run()
    at.switch_page("views/sample.py").run()
    assert not at.exception, at.exception
    assert "model" not in at.query_params
    assert any("lives in this browser tab only" in c.value for c in at.sidebar.caption)
