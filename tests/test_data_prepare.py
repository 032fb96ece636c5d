"""Tests for the shared decode/crop/cache step behind every file-based dataset."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from training.data import prepare
from training.data.prepare import Preprocessing, decode_file, prepare_images, preprocess_image
from training.errors import LatentExplorerError


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LATENT_EXPLORER_CACHE", str(tmp_path / "cache"))


def _noise_image(w: int, h: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    arr = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    return Image.fromarray(arr).convert(mode)


def _write(path, colour, size=(20, 24)) -> str:
    Image.new("RGB", size, colour).save(path, quality=95)
    return str(path)


@pytest.mark.parametrize("w,h", [(37, 50), (50, 37), (40, 40), (9, 12)])
def test_matches_the_dcgan_tutorials_resize_and_centre_crop(w: int, h: int) -> None:
    from torchvision import transforms

    img = _noise_image(w, h, seed=w * h)
    expected = np.asarray(transforms.Compose([transforms.Resize(16), transforms.CenterCrop(16)])(img))
    ours = preprocess_image(img, Preprocessing(16))
    assert ours.shape == (16, 16, 3) and ours.dtype == np.uint8
    assert np.array_equal(ours, expected)


def test_grey_mode_has_one_channel() -> None:
    out = preprocess_image(_noise_image(30, 20), Preprocessing(16, mode="L"))
    assert out.shape == (16, 16, 1)


def test_face_margin_keeps_the_centre() -> None:
    # A red square a little larger than the middle half of a blue frame: with margin 0.25 only the red is left.
    arr = np.zeros((80, 100, 3), dtype=np.uint8)
    arr[..., 2] = 255
    arr[16:64, 26:74] = (255, 0, 0)
    img = Image.fromarray(arr)
    cropped = preprocess_image(img, Preprocessing(16, face_margin=0.25)).astype(int)
    assert (cropped[..., 0] > 200).all() and (cropped[..., 2] < 60).all()
    plain = preprocess_image(img, Preprocessing(16)).astype(int)
    assert (plain[..., 2] > 200).sum() > 50  # without the margin the blue frame is still there


@pytest.mark.parametrize("kwargs", [{"size": 4}, {"size": 4096}, {"size": 64, "face_margin": 0.5},
                                    {"size": 64, "face_margin": -0.1}, {"size": 64, "mode": "CMYK"}])
def test_bad_preprocessing_options_raise(kwargs: dict) -> None:
    with pytest.raises(LatentExplorerError):
        Preprocessing(**kwargs)


def test_truncated_jpeg_fails_on_decode(tmp_path) -> None:
    good = _write(tmp_path / "a.jpg", (10, 200, 30), (64, 64))
    data = open(good, "rb").read()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    assert decode_file(good, Preprocessing(16)).shape == (16, 16, 3)
    with pytest.raises(OSError):
        decode_file(tmp_path / "cut.jpg", Preprocessing(16))


def test_prepare_skips_and_counts_bad_files_and_caches(tmp_path, capsys) -> None:
    colours = [(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0)]
    paths = [_write(tmp_path / f"{i}.png", c) for i, c in enumerate(colours)]
    (tmp_path / "junk.jpg").write_bytes(b"this is not a jpeg")
    paths.insert(2, str(tmp_path / "junk.jpg"))
    first = prepare_images(paths, Preprocessing(8), "unit", progress=False, workers=1)
    assert not first.from_cache
    assert first.images.shape == (4, 8, 8, 3)
    assert first.kept.tolist() == [0, 1, 3, 4]
    assert len(first.skipped) == 1 and first.skipped[0]["path"].endswith("junk.jpg")
    # The rows are the good files in order.
    assert [int(np.argmax(first.images[i, 4, 4])) for i in range(3)] == [0, 1, 2]
    assert "skipped 1 unreadable image" in capsys.readouterr().err
    cache = prepare.cache_dir()
    assert first.cache_file.parent == cache
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]

    second = prepare_images(paths, Preprocessing(8), "unit", progress=False, workers=1)
    assert second.from_cache and isinstance(second.images, np.memmap)
    assert np.array_equal(np.asarray(second.images), np.asarray(first.images))
    assert second.kept.tolist() == first.kept.tolist() and len(second.skipped) == 1
    # Another size or margin is another cache entry.
    assert not prepare_images(paths, Preprocessing(8, face_margin=0.1), "unit", progress=False).from_cache


def test_every_file_unreadable_is_an_error(tmp_path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"nope")
    with pytest.raises(LatentExplorerError, match="none of the 1 images could be read"):
        prepare_images([str(tmp_path / "a.jpg")], Preprocessing(8), "unit", progress=False)
    assert not [p for p in prepare.cache_dir().iterdir() if p.name.startswith("unit-") or p.suffix == ".tmp"]


def test_interrupted_prepare_leaves_no_cache(tmp_path, monkeypatch) -> None:
    paths = [_write(tmp_path / f"{i}.png", (i * 40, 0, 0)) for i in range(5)]

    def broken(paths, prep, workers):
        yield 0, np.zeros((1, 8, 8, 3), np.uint8), []
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare, "_decoded_chunks", broken)
    with pytest.raises(KeyboardInterrupt):
        prepare_images(paths, Preprocessing(8), "unit", progress=False)
    assert not [p for p in prepare.cache_dir().iterdir() if "unit" in p.name]


def test_broken_cache_is_rebuilt(tmp_path) -> None:
    paths = [_write(tmp_path / f"{i}.png", (0, i * 40, 0)) for i in range(3)]
    first = prepare_images(paths, Preprocessing(8), "unit", progress=False)
    first.cache_file.write_bytes(b"garbage")
    again = prepare_images(paths, Preprocessing(8), "unit", progress=False)
    assert not again.from_cache and again.images.shape == (3, 8, 8, 3)


def test_two_workers_give_the_same_bytes(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(prepare, "CHUNK", 3)  # several chunks from a few files, so the pool really splits them
    paths = []
    for i in range(8):
        _noise_image(20 + i, 24, seed=i).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    paths.insert(4, str(tmp_path / "bad.png"))
    one = prepare_images(paths, Preprocessing(16), "one", progress=False, workers=1)
    two = prepare_images(paths, Preprocessing(16), "two", progress=False, workers=2)
    assert np.array_equal(np.asarray(one.images), np.asarray(two.images))
    assert one.kept.tolist() == two.kept.tolist() == [0, 1, 2, 3, 5, 6, 7, 8]
