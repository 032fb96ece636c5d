"""Face arithmetic: the pure functions on made-up codes and probabilities, and the page on tiny and shipped models."""

from pathlib import Path

import numpy as np
import pytest
from latent_bundles import open_page, shared_root, use_checkpoints

from explorer.logic.arithmetic import (
    PAPER_FIGURES,
    LabelledPool,
    SuccessRate,
    arithmetic_code,
    draw_exemplars,
    noisy_neighbours,
    paper_figures,
    verdict,
)
from training.attributes import Attribute

SMILING, MALE = Attribute("Smiling", ("no", "yes")), Attribute("Male", ("no", "yes"))
SMILE = PAPER_FIGURES[0].analogy


def test_the_paper_analogy_names_its_concepts():
    assert SMILE.concept("A") == {"Smiling": "yes", "Male": "no"}  # smiling woman
    assert SMILE.concept("B") == {"Smiling": "no", "Male": "no"}  # neutral woman
    assert SMILE.concept("C") == {"Smiling": "no", "Male": "yes"}  # neutral man
    assert SMILE.concept("D") == {"Smiling": "yes", "Male": "yes"}  # smiling man
    glasses = PAPER_FIGURES[1].analogy
    assert glasses.concept("A") == {"Eyeglasses": "yes", "Male": "yes"}
    assert glasses.concept("D") == {"Eyeglasses": "yes", "Male": "no"}


def test_paper_figures_need_the_attributes():
    assert [f.analogy for f in paper_figures((SMILING, MALE))] == [SMILE]
    assert paper_figures((Attribute("hair_colour", ("black", "blonde")),)) == []


def test_arithmetic_averages_each_group_then_adds():
    a, b, c = np.full((3, 4), 1.0), np.full((3, 4), 2.0), np.array([[0.0] * 4, [3.0] * 4, [6.0] * 4])
    assert np.allclose(arithmetic_code(a, b, c), [1 - 2 + 3] * 4)


def test_noisy_neighbours_keep_the_result_first_and_stay_within_the_noise():
    code = np.arange(5, dtype=np.float32)
    out = noisy_neighbours(code, count=8, noise=0.25, seed=3)
    assert out.shape == (9, 5) and np.array_equal(out[0], code)
    assert np.abs(out[1:] - code).max() <= 0.25 and not np.allclose(out[1], out[2])


def test_members_are_the_samples_with_every_value_most_confident_first():
    p_smile = np.array([0.9, 0.2, 0.7, 0.99])
    p_male = np.array([0.1, 0.1, 0.4, 0.8])
    pool = LabelledPool(np.zeros((4, 2), np.float32),
                        {"Smiling": np.stack([1 - p_smile, p_smile], 1), "Male": np.stack([1 - p_male, p_male], 1)},
                        (SMILING, MALE))
    assert list(pool.members({"Smiling": "yes", "Male": "no"})) == [0, 2]  # 0.81 > 0.42
    assert list(pool.members({"Smiling": "yes", "Male": "yes"})) == [3]


def test_exemplar_draws_differ_but_draw_zero_is_the_most_confident():
    candidates = np.arange(40)
    assert list(draw_exemplars(candidates, 0)) == [0, 1, 2]
    assert set(draw_exemplars(candidates, 1)) != set(draw_exemplars(candidates, 2))
    assert set(draw_exemplars(candidates, 5)) <= set(range(24))
    with pytest.raises(Exception, match="only 2"):
        draw_exemplars(np.arange(2), 0)


def test_the_verdict_compares_with_c_alone_and_the_base_rate():
    assert verdict(SuccessRate(50, 40, 0.1, 0.05)) == "works"
    assert verdict(SuccessRate(50, 20, 0.1, 0.05)) == "partly"
    assert verdict(SuccessRate(50, 20, 0.35, 0.05)) == "fails"  # no better than a random sample
    assert verdict(SuccessRate(50, 45, 0.1, 0.85)) == "fails"  # C's average alone already has it


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return shared_root(tmp_path_factory)


def test_the_page_on_a_tiny_dcgan_shows_the_arithmetic_and_its_numbers(root, monkeypatch):
    use_checkpoints(monkeypatch, root)
    at = open_page("arithmetic", "dcgan")
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    # toyfaces has no Male: the page offers the teacher's own analogy over the attributes it has.
    assert at.radio(key="arith_figure").value == "your own analogy"
    words = " ".join(m.value for m in [*at.success, *at.warning, *at.info])
    assert "random draws of exemplars" in words or "generated samples with" in words
    if "random draws" in words:
        labels = [m.label for m in at.metric]
        assert "C's own average" in labels and "all generated samples" in labels
        at.button(key="arith_swap_B").click().run()
        assert not at.exception and at.session_state["arith_draw_B"] == 1


CELEBA = Path(__file__).resolve().parent.parent / "checkpoints" / "celeba"


@pytest.mark.slow
@pytest.mark.skipif(not (CELEBA / "featurenet" / "config.json").exists(), reason="no shipped CelebA feature network")
def test_the_celeba_dcgan_offers_both_paper_figures_and_says_whether_they_work():
    from streamlit.testing.v1 import AppTest

    from explorer.core import bundles

    at = AppTest.from_file(str(CELEBA.parent.parent / "explorer" / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("views/arithmetic.py").run()
    name = next(n for n, p in bundles.available().items() if Path(p).resolve() == (CELEBA / "dcgan").resolve())
    at.sidebar.selectbox(key="bundle_select").set_value(name).run()
    assert not at.exception and not at.error, at.exception
    assert at.radio(key="arith_figure").options[:2] == [f.title for f in PAPER_FIGURES]
    words = " ".join(m.value for m in [*at.success, *at.warning])
    assert "Over 50 random draws of exemplars" in words
    assert any(w in words for w in ("works on this model", "only part of the time", "does not work on this model"))
