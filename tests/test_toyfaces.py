"""Tests for the procedural toy-faces dataset: determinism, labels, caching and that attributes are really drawn."""

from __future__ import annotations

import numpy as np
import pytest

from training.data import toyfaces
from training.data.toyface_drawing import ATTRIBUTES, render_face
from training.data.toyfaces import generate_toyfaces, load_toyfaces
from training.errors import LatentExplorerError


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("LATENT_EXPLORER_CACHE", str(tmp_path))


def _pair(index: int, name: str, a: str, b: str, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The same face rendered twice, differing only in one forced attribute value."""
    img_a, _ = render_face(np.random.default_rng([99, index]), size, {name: a})
    img_b, _ = render_face(np.random.default_rng([99, index]), size, {name: b})
    return np.asarray(img_a).astype(np.float64), np.asarray(img_b).astype(np.float64)


def test_attribute_names_and_values() -> None:
    names = [a.name for a in ATTRIBUTES]
    assert names[:4] == ["hair_colour", "eye_colour", "smiling", "glasses"]
    assert len(ATTRIBUTES[0].values) >= 5
    assert ATTRIBUTES[1].values == ("brown", "blue", "green")
    assert all(a.is_binary for a in ATTRIBUTES[2:])


def test_same_seed_same_bytes_and_different_seed_differs() -> None:
    a_img, a_lab = generate_toyfaces(16, seed=3, workers=1)
    b_img, b_lab = generate_toyfaces(16, seed=3, workers=1)
    c_img, _ = generate_toyfaces(16, seed=4, workers=1)
    assert a_img.tobytes() == b_img.tobytes()
    assert np.array_equal(a_lab, b_lab)
    assert not np.array_equal(a_img, c_img)


def test_prefix_property() -> None:
    long_img, long_lab = generate_toyfaces(40, seed=1, workers=1)
    short_img, short_lab = generate_toyfaces(12, seed=1, workers=1)
    assert np.array_equal(long_img[:12], short_img)
    assert np.array_equal(long_lab[:12], short_lab)


def test_worker_count_does_not_change_result() -> None:
    # More images than one chunk, so two workers really split the work.
    one = generate_toyfaces(300, seed=5, size=32, workers=1)
    two = generate_toyfaces(300, seed=5, size=32, workers=2)
    assert np.array_equal(one[0], two[0])
    assert np.array_equal(one[1], two[1])


@pytest.mark.parametrize("size", [32, 64])
def test_dtype_and_shape(size: int) -> None:
    images, labels = generate_toyfaces(8, seed=0, size=size, workers=1)
    assert images.dtype == np.uint8 and images.shape == (8, size, size, 3)
    assert labels.dtype == np.int64 and labels.shape == (8, len(ATTRIBUTES))


def test_labels_in_range_and_varied() -> None:
    _, labels = generate_toyfaces(200, seed=2, size=16, workers=1)
    for k, attribute in enumerate(ATTRIBUTES):
        column = labels[:, k]
        assert column.min() >= 0 and column.max() < len(attribute.values)
        assert len(np.unique(column)) > 1, attribute.name
    # Binary attributes should be roughly balanced.
    for k, attribute in enumerate(ATTRIBUTES):
        if attribute.is_binary:
            assert 0.3 < labels[:, k].mean() < 0.7, attribute.name


def test_overrides_set_the_label() -> None:
    _, row = render_face(np.random.default_rng(0), 32, {"hair_colour": "blue", "glasses": 1})
    assert ATTRIBUTES[0].values[row[0]] == "blue"
    assert row[3] == 1
    with pytest.raises(LatentExplorerError):
        render_face(np.random.default_rng(0), 32, {"hair_colour": "green"})
    with pytest.raises(LatentExplorerError):
        render_face(np.random.default_rng(0), 32, {"hat": "yes"})


def test_bad_arguments_raise() -> None:
    with pytest.raises(LatentExplorerError):
        generate_toyfaces(0)
    with pytest.raises(LatentExplorerError):
        generate_toyfaces(-3)
    with pytest.raises(LatentExplorerError):
        generate_toyfaces(4, size=8)
    with pytest.raises(LatentExplorerError):
        generate_toyfaces(4, seed=-1)
    with pytest.raises(LatentExplorerError):
        load_toyfaces(0)


def test_cache_round_trip(tmp_path) -> None:
    first = load_toyfaces(24, seed=7, size=32, progress=False)
    images_path, labels_path = toyfaces.cache_paths(24, 7, 32)
    assert images_path.parent == tmp_path
    assert images_path.exists() and labels_path.exists()
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]  # no temp files left behind
    second = load_toyfaces(24, seed=7, size=32, progress=False)
    assert isinstance(second.images, np.memmap)  # read from the file, not regenerated
    assert second.name == "toyfaces" and second.attributes == ATTRIBUTES
    assert np.array_equal(np.asarray(first.images), np.asarray(second.images))
    assert np.array_equal(first.labels, second.labels)
    fresh, fresh_labels = generate_toyfaces(24, seed=7, size=32, workers=1)
    assert np.array_equal(np.asarray(second.images), fresh)
    assert np.array_equal(second.labels, fresh_labels)


def test_broken_cache_is_regenerated() -> None:
    load_toyfaces(8, seed=0, size=16, progress=False)
    images_path, _ = toyfaces.cache_paths(8, 0, 16)
    images_path.write_bytes(b"not a numpy file")
    again = load_toyfaces(8, seed=0, size=16, progress=False)
    assert np.array_equal(np.asarray(again.images), generate_toyfaces(8, seed=0, size=16, workers=1)[0])


def test_head_stays_inside_the_frame() -> None:
    # The background gradient is vertical, so rows are uniform unless something is drawn across them.
    images, _ = generate_toyfaces(64, seed=11, size=32, workers=1)
    top_rows = images[:, 0, :, :].astype(np.int64)
    assert np.abs(top_rows - top_rows[:, :1, :]).max() <= 1
    sides = images[:, : 32 * 3 // 5, [0, -1], :].astype(np.int64)  # above the shoulders
    assert np.abs(sides[:, :, 0] - sides[:, :, 1]).max() <= 1


def test_hair_colour_is_drawn() -> None:
    for i in range(4):
        black, blonde = _pair(i, "hair_colour", "black", "blonde")
        assert blonde.mean() > black.mean() + 5
        _, blue = _pair(i, "hair_colour", "black", "blue")
        changed = np.any(blue != black, axis=-1)
        assert changed.sum() > 50
        assert blue[changed][:, 2].mean() > blue[changed][:, 0].mean() + 60  # blue hair is blue


def test_eye_colour_is_drawn() -> None:
    for i in range(4):
        brown, blue = _pair(i, "eye_colour", "brown", "blue")
        _, green = _pair(i, "eye_colour", "brown", "green")
        changed = np.any(blue != brown, axis=-1)
        assert changed.sum() >= 8  # both irises, visible at 64x64
        assert blue[changed][:, 2].mean() > brown[changed][:, 2].mean() + 40
        assert green[changed][:, 1].mean() > brown[changed][:, 1].mean() + 30


def test_glasses_darken_the_eye_area() -> None:
    for i in range(4):
        without, with_ = _pair(i, "glasses", "no", "yes")
        changed = np.any(with_ != without, axis=-1)
        assert changed.sum() > 40
        assert with_[changed].mean() < without[changed].mean() - 30


def test_smile_is_an_open_dark_mouth() -> None:
    for i in range(4):
        flat, smile = _pair(i, "smiling", "no", "yes")
        changed = np.any(smile != flat, axis=-1)
        assert changed.sum() > 20
        # An open mouth is a dark area, a closed one a thin line: many more dark pixels when smiling.
        dark_smile = (smile.mean(axis=-1) < 90) & changed
        dark_flat = (flat.mean(axis=-1) < 90) & changed
        assert dark_smile.sum() > 2 * dark_flat.sum() + 5
        # And it hangs down from the corners: the open mouth reaches below the closed mouth's line.
        assert np.nonzero(dark_smile)[0].max() >= np.nonzero(dark_flat)[0].mean() + 1.5


def test_beard_is_drawn_in_hair_colour() -> None:
    for i in range(4):
        bare, bearded = (
            np.asarray(render_face(np.random.default_rng([5, i]), 64, {"beard": v, "hair_colour": "blue"})[0])
            for v in ("no", "yes")
        )
        changed = np.any(bare != bearded, axis=-1)
        assert changed.sum() > 100
        assert bearded[changed][:, 2].astype(int).mean() > bearded[changed][:, 0].astype(int).mean() + 40
