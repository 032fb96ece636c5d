"""Attribute directions, cGAN label rows and pairs, InfoGAN code grids: pure functions on small tensors."""

import numpy as np
import pytest
import torch
from torch import nn
from wrapped import bundle_of

from explorer.logic.codes import CodeSetting, code_sweep, info_codes, sweep_change
from explorer.logic.conditions import attribute_pairs, condition_rows, explain_pairs, pair_rows
from explorer.logic.directions import (
    attribute_direction,
    attribute_target,
    direction_cosine,
    explain_direction,
    walk,
    walk_positions,
)
from explorer.logic.image_change import between_faces
from explorer.logic.recognition import featurenet_column, recognition_rate
from training.attributes import Attribute
from training.errors import LatentExplorerError
from training.models.cgan import CGANConfig, ConditionalGenerator
from training.models.infogan import InfoGANConfig, InfoGenerator

HAIR = Attribute("hair_colour", ("black", "brown", "blonde"))
SMILE = Attribute("smiling", ("no", "yes"))


@pytest.fixture(scope="module")
def codes_e3():
    """Codes whose attribute is the sign of dimension 3: the true direction is e3."""
    codes = np.random.default_rng(0).standard_normal((600, 10))
    return codes, codes[:, 3] > 0


@pytest.mark.parametrize("method", ["mean difference", "logistic regression"])
def test_direction_points_along_the_dimension_that_decides_the_attribute(codes_e3, method):
    codes, target = codes_e3
    d = attribute_direction(codes, target, method, "smiling", "yes")
    e3 = np.eye(10)[3]
    assert d.vector @ e3 > 0.95 and np.linalg.norm(d.vector) == pytest.approx(1)
    # |x| of a half-normal has mean sqrt(2/pi): the two groups' means are 2 * 0.80 apart along e3.
    assert d.gap == pytest.approx(2 * np.sqrt(2 / np.pi), rel=0.1)
    assert d.accuracy > 0.9 and d.separation > 2  # the ideal e3 gives 2.65 (half-normal gap / its std)
    assert (d.n_with, d.n_without) == (int(target.sum()), int((~target).sum()))


def test_both_methods_agree_and_walk_moves_by_gaps(codes_e3):
    codes, target = codes_e3
    mean = attribute_direction(codes, target, "mean difference")
    logistic = attribute_direction(codes, target, "logistic regression")
    assert direction_cosine(mean, logistic) > 0.95
    z = torch.zeros(4, 10)
    moved = walk(z, mean, 1.0)
    assert moved.dtype == z.dtype and moved.shape == z.shape
    assert torch.allclose(moved[0].double(), torch.from_numpy(mean.vector * mean.gap), atol=1e-6)
    assert torch.allclose(walk(z, mean, -2.0), -2 * moved)
    assert walk_positions(1.5, 5) == [-1.5, -0.75, 0.0, 0.75, 1.5]


def test_an_attribute_unrelated_to_the_codes_gives_a_weak_direction():
    rng = np.random.default_rng(1)
    codes = rng.standard_normal((400, 10))
    d = attribute_direction(codes, rng.random(400) > 0.5, "mean difference", "glasses", "yes")
    assert d.separation < 0.6
    assert "barely carries the attribute" in explain_direction(d)


def test_direction_needs_codes_on_both_sides_and_a_known_method(codes_e3):
    codes, _ = codes_e3
    one = np.zeros(len(codes), dtype=bool)
    one[0] = True
    with pytest.raises(LatentExplorerError, match="1 codes have smiling = yes"):
        attribute_direction(codes, one, "mean difference", "smiling", "yes")
    with pytest.raises(LatentExplorerError, match="unknown direction method"):
        attribute_direction(codes, one, "pca")


def test_attribute_target_picks_one_value_against_the_rest():
    labels = np.array([[0, 1], [2, 0], [2, 1]])
    assert attribute_target(labels, (HAIR, SMILE), "hair_colour", "blonde").tolist() == [False, True, True]
    assert attribute_target(labels, (HAIR, SMILE), "smiling", "yes").tolist() == [True, False, True]
    with pytest.raises(LatentExplorerError, match="no value 'red'"):
        attribute_target(labels, (HAIR, SMILE), "hair_colour", "red")


def test_explanation_quotes_the_recognition_numbers(codes_e3):
    d = attribute_direction(*codes_e3, "mean difference", "smiling", "yes")
    text = explain_direction(d, {-1.0: 0.1, 0.0: 0.4, 1.0: 0.9}, {-1.0: 10.0, 0.0: 10.0, 1.0: 14.0}, 10.0)
    assert "10% of the images at t = -1" in text and "40% at t = 0" in text and "90% at t = 1" in text
    assert "really turns the attribute on" in text and "norm 14.0" in text
    assert f"{d.accuracy:.0%}" in text


# --- conditional GAN ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cgan_generator():
    torch.manual_seed(0)
    config = CGANConfig.for_dataset((HAIR, SMILE), latent_dim=8, image_size=32, g_width=4, d_width=4)
    return ConditionalGenerator(config).eval()


def test_condition_and_pair_rows_differ_only_in_the_chosen_attribute():
    rows = condition_rows((HAIR, SMILE), {"hair_colour": "blonde", "smiling": "yes"}, 3)
    assert rows.dtype == torch.int64 and rows.tolist() == [[2, 1]] * 3
    a, b = pair_rows((HAIR, SMILE), {"hair_colour": "brown"}, "smiling", "no", "yes", 10)
    assert a.shape == b.shape == (10, 2)
    assert (a[:, 0] == b[:, 0]).all() and a[:, 0].eq(1).all()
    assert a[:, 1].eq(0).all() and b[:, 1].eq(1).all()
    with pytest.raises(LatentExplorerError, match="two different values"):
        pair_rows((HAIR, SMILE), {}, "smiling", "yes", "yes", 2)
    with pytest.raises(LatentExplorerError, match="not conditioned on"):
        condition_rows((HAIR,), {"beard": "yes"}, 1)


def test_pairs_share_z_and_measure_the_change(cgan_generator):
    z = torch.randn(10, 8, generator=torch.Generator().manual_seed(1))
    cgan = bundle_of(cgan_generator, "cgan", 8, model={"conditions": [a.to_json() for a in (HAIR, SMILE)]})
    pairs = attribute_pairs(cgan, z, {"hair_colour": "black"}, "smiling", "no", "yes")
    a, b = pair_rows(cgan_generator.conditions, {"hair_colour": "black"}, "smiling", "no", "yes", 10)
    with torch.no_grad():
        assert torch.allclose(pairs.first_images, cgan_generator(z, a))
        assert torch.allclose(pairs.second_images, cgan_generator(z, b))
    assert pairs.pair_change > 0 and pairs.face_change == pytest.approx(
        np.mean([between_faces(pairs.first_images), between_faces(pairs.second_images)]))
    assert "Each of the 10 pairs" in explain_pairs(pairs, 0.9, 0.8)
    assert "80% of the second" in explain_pairs(pairs, 0.9, 0.8)
    assert "hardly better than guessing (50%)" not in explain_pairs(pairs, 0.9, 0.8, chance=0.5)
    assert "hardly better than guessing (20%)" in explain_pairs(pairs, 0.25, 0.3, chance=0.2)


def test_a_generator_that_ignores_the_condition_scores_zero():
    class Deaf(nn.Module):
        def forward(self, z, labels=None):
            return torch.tanh(z[:, :1, None, None].expand(-1, 3, 4, 4))

    z = torch.randn(6, 8)
    deaf = bundle_of(Deaf(), "cgan", 8, model={"conditions": [a.to_json() for a in (HAIR, SMILE)]})
    pairs = attribute_pairs(deaf, z, {}, "smiling", "no", "yes")
    assert pairs.pair_change == 0 and pairs.ratio == 0
    assert "hardly listens" in explain_pairs(pairs)


def test_recognition_rate_and_feature_network_columns():
    predicted = torch.tensor([[0, 1], [2, 1], [2, 0], [2, 1]])
    assert recognition_rate(predicted, 0, 2) == 0.75
    assert recognition_rate(predicted, 1, 1) == 0.75
    assert featurenet_column((HAIR, SMILE), SMILE) == 1
    assert featurenet_column((HAIR,), Attribute("hair_colour", ("black", "red"))) is None  # other values


# --- InfoGAN ----------------------------------------------------------------------------------------------------

def test_info_codes_and_a_sweep_over_each_code():
    from dataclasses import asdict

    torch.manual_seed(0)
    config = InfoGANConfig(latent_dim=8, image_size=32, g_width=4, d_width=4, categorical_codes=[3],
                           continuous_codes=2, q_width=8)
    generator = InfoGenerator(config).eval()
    layout = config.code_layout()
    codes = info_codes(generator, layout, 2, CodeSetting({"category_1": 2}, {"continuous_2": 0.5}))
    assert codes.tolist() == [[0, 0, 1, 0, 0.5]] * 2
    infogan = bundle_of(generator, "infogan", 8, model=asdict(config))
    z = torch.randn(4, 8)
    labels, columns = code_sweep(infogan, z, "category_1", CodeSetting())
    assert labels == ["category_1 = 0", "category_1 = 1", "category_1 = 2"] and columns[0].shape == (4, 3, 32, 32)
    labels, columns = code_sweep(infogan, z, "continuous_1", CodeSetting(), positions=[-1.0, 1.0])
    assert labels == ["continuous_1 = -1.00", "continuous_1 = +1.00"]
    assert sweep_change(columns) > 0
    with pytest.raises(LatentExplorerError, match="takes values 0..2"):
        info_codes(generator, layout, 1, CodeSetting({"category_1": 3}))


def test_default_attribute_prefers_smiling_only_when_both_sides_have_codes():
    from explorer.logic.directions import default_attribute
    from training.attributes import Attribute

    attributes = (Attribute("Bald", ("no", "yes")), Attribute("Smiling", ("no", "yes")),
                  Attribute("Male", ("no", "yes")))
    labels = np.array([[0, 1, 1], [0, 0, 0], [0, 1, 1], [1, 0, 0], [0, 0, 1], [0, 0, 0]])
    assert default_attribute(labels, attributes) == "Smiling"  # 2 smiling, 4 not
    labels[2, 1] = 0  # one smiling face left: too few for a direction
    assert default_attribute(labels, attributes) == "Male"  # 3 and 3
