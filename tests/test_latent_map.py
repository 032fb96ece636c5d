"""The latent map's maths: PCA / t-SNE wrappers, distances from the data cloud, selections, reconstructions."""

import numpy as np
import pytest
import torch
from torch import nn
from wrapped import bundle_of

from explorer.logic.held_out import held_out_codes
from explorer.logic.vae_map import (
    cloud_distance,
    colour_labels,
    explain_map,
    explain_overlay,
    neighbour_agreement,
    pca_map,
    point_from_selection,
    reconstruct,
    subsample,
    tsne_map,
    usable_perplexity,
)
from training.attributes import Attribute
from training.errors import LatentExplorerError

SMILE = Attribute("smiling", ("no", "yes"))


@pytest.fixture(scope="module")
def codes():
    rng = np.random.default_rng(0)
    # Anisotropic: most variance along dimensions 0 and 1.
    return (rng.standard_normal((300, 12)) * np.array([5, 3] + [0.5] * 10)).astype(np.float32)


def test_pca_map_shapes_signs_and_determinism(codes):
    a, b = pca_map(codes), pca_map(codes.copy())
    assert a.xy.shape == (300, 2) and a.components.shape == (2, 12)
    assert np.allclose(a.xy, b.xy) and np.allclose(a.project(codes), a.xy)
    assert abs(a.components[0] @ np.eye(12)[0]) > 0.99 and abs(a.components[1] @ np.eye(12)[1]) > 0.99
    assert all(row[np.argmax(np.abs(row))] > 0 for row in a.components)  # sign convention
    assert 0.8 < a.explained.sum() <= 1 and a.explained[0] > a.explained[1]


def test_tsne_map_is_deterministic_subsampled_and_clamps_perplexity(codes):
    xy, index, used = tsne_map(codes, perplexity=10, seed=0, max_points=60, max_iter=250)
    again, index2, _ = tsne_map(codes, perplexity=10, seed=0, max_points=60, max_iter=250)
    assert xy.shape == (60, 2) and len(index) == 60 and (np.diff(index) > 0).all()
    assert np.allclose(xy, again) and (index == index2).all() and used == 10
    assert usable_perplexity(30, 24) == pytest.approx(23 / 3) and usable_perplexity(5, 1000) == 5
    assert (subsample(10, 20) == np.arange(10)).all() and len(subsample(5000, 2000)) == 2000
    with pytest.raises(LatentExplorerError, match="at least 4 codes"):
        tsne_map(codes[:3])


def test_shifted_codes_land_far_from_the_cloud_and_prior_codes_inside():
    rng = np.random.default_rng(1)
    data = rng.standard_normal((1000, 16))
    far = cloud_distance(data, rng.standard_normal((200, 16)) - 10)
    near = cloud_distance(data, rng.standard_normal((200, 16)))
    assert far.inside == 0 and far.ratio > 8  # ~ sqrt(16 * 101) / 4
    assert far.overlay_distance == pytest.approx(np.sqrt(16 * 101), rel=0.05)
    assert near.inside > 0.9 and near.ratio == pytest.approx(1, abs=0.1)
    assert "0% of it falls inside" in explain_overlay(far, "N(-10, 1)", 200)
    assert "never saw codes there" in explain_overlay(far, "N(-10, 1)", 200)
    with pytest.raises(LatentExplorerError, match="dimensions"):
        cloud_distance(data, np.zeros((2, 3)))


def test_selection_event_gives_the_code_index():
    event = {"points": [{"curve_number": 2, "point_index": 9, "customdata": [41]}], "point_indices": [9]}
    assert point_from_selection(event) == 41
    assert point_from_selection({"points": [{"customdata": 7}]}) == 7
    # What Streamlit 1.67 really sends for array customdata (seen in a browser): an object keyed by position.
    assert point_from_selection({"points": [{"point_index": 300, "customdata": {"0": 1608}}]}) == 1608
    assert point_from_selection({"points": [], "box": []}) is None and point_from_selection(None) is None


def test_neighbour_agreement_sees_clusters_and_chance():
    xy = np.vstack([np.random.default_rng(2).normal(0, 0.1, (50, 2)), np.random.default_rng(3).normal(5, 0.1, (50, 2))])
    groups = np.array(["a"] * 50 + ["b"] * 50)
    agreement, chance = neighbour_agreement(xy, groups, k=5)
    assert agreement == 1.0 and chance == pytest.approx(49 / 99)
    text = explain_map("t-SNE", "smiling", agreement, chance, None, 100)
    assert "100% of each code's nearest neighbours" in text and "clearly groups" in text


def test_held_out_codes_are_checked_and_named():
    arrays = {"codes": np.zeros((5, 3), np.float32), "labels": np.array([[0], [1], [1], [0], [1]]),
              "attribute_names": np.array(["smiling"]), "images": np.zeros((2, 8, 8, 3), np.uint8)}
    held = held_out_codes(arrays, (SMILE,))
    assert len(held) == 5 and held.has_image(1) and not held.has_image(2)
    assert colour_labels(held, "smiling").tolist() == ["no", "yes", "yes", "no", "yes"]
    with pytest.raises(LatentExplorerError, match="written when VAE training finishes"):
        held_out_codes(None, (SMILE,))
    with pytest.raises(LatentExplorerError, match="2 label columns but 1"):
        held_out_codes({**arrays, "labels": np.zeros((5, 2))}, (SMILE,))


def test_reconstruction_mse_per_image():
    class Encoder(nn.Module):
        def forward(self, x):
            return x.flatten(1), x.flatten(1)

    class Decoder(nn.Module):
        def forward(self, z):
            return z.view(-1, 3, 4, 4) * 0.5  # halves every pixel

    images = np.full((2, 4, 4, 3), 255, np.uint8)  # pixels at +1
    images[1] = 0  # pixels at -1
    r = reconstruct(bundle_of(Decoder(), "vae", 48, encoder=Encoder()), images)
    assert r.mse.tolist() == [0.25, 0.25] and r.mean_mse == 0.25
    assert torch.equal(r.originals[0], torch.ones(3, 4, 4))


def test_scatter_keeps_value_order_named_colours_and_code_indices():
    from explorer.logic.figures import NAMED_COLOURS, latent_scatter

    xy = np.arange(12, dtype=float).reshape(6, 2)
    groups = np.array(["red", "black", "red", "blue", "black", "red"])
    fig = latent_scatter(xy, groups, np.array([10, 11, 12, 13, 14, 15]), "map", overlay=xy[:2],
                         overlay_label="N(-10, 1)", selected=13, order=("black", "brown", "red", "blue"))
    names = [t.name for t in fig.data]
    assert names == ["black", "red", "blue", "N(-10, 1)", "code 13"]
    assert fig.data[1].marker.color == NAMED_COLOURS["red"]
    assert list(fig.data[1].customdata) == [10, 12, 15]  # the selection event reports these code numbers
    assert list(fig.data[4].x) == [6.0]  # the ring sits on code 13
