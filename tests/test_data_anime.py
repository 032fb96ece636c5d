"""Anime faces from a tiny images/ folder plus tags.csv: value names, missing/untagged images, malformed rows."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from anime_folder import make_anime
from PIL import Image

from training.data.anime import load_anime
from training.errors import LatentExplorerError


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LATENT_EXPLORER_CACHE", str(tmp_path / "cache"))


def _ids(dataset) -> list[int]:
    return [int(round(float(np.asarray(img)[..., 0].mean()) / 40)) for img in dataset.images]


def test_hair_and_eye_colour_become_two_named_attributes(tmp_path) -> None:
    make_anime(tmp_path, extra_images=1)
    (tmp_path / "images" / "2.jpg").unlink()
    dataset, source = load_anime(tmp_path, image_size=16, progress=False)
    assert dataset.images.shape == (4, 16, 16, 3)
    hair, eyes = dataset.attributes
    assert (hair.name, hair.values) == ("hair_colour", ("aqua", "blonde", "pink"))  # from the whole file, sorted
    assert (eyes.name, eyes.values) == ("eye_colour", ("aqua", "blue", "red"))
    assert _ids(dataset) == [0, 1, 3, 4]
    named = [(hair.values[h], eyes.values[e]) for h, e in dataset.labels]
    assert named == [("aqua", "aqua"), ("pink", "blue"), ("aqua", "blue"), ("pink", "aqua")]
    assert source["skipped"] == {"missing_image": 1, "untagged_image": 1, "unreadable_image": 0}
    assert source["files"]["tags"].endswith("tags.csv") and source["attributes"] == ["hair_colour", "eye_colour"]


def test_images_in_the_root_and_one_attribute(tmp_path) -> None:
    make_anime(tmp_path, images_dir="")
    dataset, _ = load_anime(tmp_path, image_size=16, attributes=["eye_colour"], progress=False)
    assert dataset.attribute_names() == ["eye_colour"] and dataset.labels.shape == (5, 1)


def test_unreadable_image_is_skipped_and_counted(tmp_path) -> None:
    make_anime(tmp_path)
    (tmp_path / "images" / "1.jpg").write_bytes(b"\xff\xd8\xff broken")
    dataset, source = load_anime(tmp_path, image_size=16, progress=False)
    assert _ids(dataset) == [0, 2, 3, 4] and source["skipped"]["unreadable_image"] == 1
    assert dataset.labels.tolist()[1] == [1, 2]  # row 2's labels (blonde, red) moved up with its image


@pytest.mark.parametrize("row,message", [
    ("5 aqua hair aqua eyes", "line 6"),
    ("5,aqua hair", "line 6"),
    ("5,aqua hair aqua eyes smiling", "line 6"),
    (",aqua hair aqua eyes", "line 6"),
    ("2,pink hair pink eyes", "line 6: id '2' is tagged twice"),
])
def test_malformed_tag_rows(tmp_path, row: str, message: str) -> None:
    make_anime(tmp_path)
    with open(tmp_path / "tags.csv", "a") as f:
        f.write(row + "\n")
    with pytest.raises(LatentExplorerError, match=message) as info:
        load_anime(tmp_path, image_size=16, progress=False)
    assert str(tmp_path / "tags.csv") in str(info.value)


def test_header_line_is_explained(tmp_path) -> None:
    make_anime(tmp_path)
    text = (tmp_path / "tags.csv").read_text()
    (tmp_path / "tags.csv").write_text("id,tags\n" + text)
    with pytest.raises(LatentExplorerError, match="line 1.*no header line"):
        load_anime(tmp_path, progress=False)


def test_missing_folder_tags_or_images(tmp_path) -> None:
    with pytest.raises(LatentExplorerError, match="no such folder"):
        load_anime(tmp_path / "nope", progress=False)
    (tmp_path / "images").mkdir()
    with pytest.raises(LatentExplorerError, match="no tags.csv"):
        load_anime(tmp_path, progress=False)
    (tmp_path / "a.csv").write_text("0,aqua hair aqua eyes\n")
    (tmp_path / "b.csv").write_text("0,aqua hair aqua eyes\n")
    with pytest.raises(LatentExplorerError, match="several CSV files"):
        load_anime(tmp_path, progress=False)
    (tmp_path / "b.csv").unlink()
    with pytest.raises(LatentExplorerError, match="no images"):
        load_anime(tmp_path, progress=False)
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "77.jpg")
    with pytest.raises(LatentExplorerError, match="none of the 1 ids"):
        load_anime(tmp_path, progress=False)
    with pytest.raises(LatentExplorerError, match="no attribute 'hair'"):
        make_anime(tmp_path / "ok")
        load_anime(tmp_path / "ok", attributes=["hair"], progress=False)


def test_explorer_finds_the_recorded_copy_of_a_real_dataset(tmp_path) -> None:
    """A bundle records where its real dataset was (source.load_args); the explorer reads images from there at
    given dataset positions (the latent map's originals), and names the dataset when the copy is gone."""
    import torch

    from explorer.logic.real_images import real_images
    from training.data.registry import load_dataset

    make_anime(tmp_path / "anime")
    dataset, source = load_dataset("anime", image_size=16, path=str(tmp_path / "anime"), progress=False)
    description = {"name": "anime", "image_size": 16, "source": source}
    picked = real_images(description, 2, indices=np.array([3, 1]))
    expected, _ = dataset.batch(np.array([3, 1]))
    assert torch.equal(picked, expected)
    assert real_images(description, 2).shape == (2, 3, 16, 16)
    shutil.rmtree(tmp_path / "anime")
    with pytest.raises(LatentExplorerError, match="anime images are not shipped"):
        real_images(description, 2)
