"""Any image folder: recursive LFW-style listing, optional labels CSV, face margin, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from training.data.folder import list_images, load_folder
from training.errors import LatentExplorerError


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LATENT_EXPLORER_CACHE", str(tmp_path / "cache"))


def make_lfw(root) -> list[str]:
    """LFW's name/name_0001.jpg layout (one PNG among them) plus things that are not images."""
    files = ["Aaron_Eckhart/Aaron_Eckhart_0001.jpg", "Aaron_Eckhart/Aaron_Eckhart_0002.jpg",
             "Bea_Arthur/Bea_Arthur_0001.png", "Zoe/Zoe_0001.JPG"]
    for i, rel in enumerate(files):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        # A 50x40 photo whose centre (the "face") is red-ish and whose border is the row's grey level.
        arr = np.full((40, 50, 3), 30 + i * 50, dtype=np.uint8)
        arr[12:28, 17:33] = (250, 10, 10)
        Image.fromarray(arr).save(root / rel, quality=95)
    (root / ".hidden").mkdir()
    Image.new("RGB", (8, 8)).save(root / ".hidden" / "x.jpg")
    (root / "Zoe" / "._Zoe_0001.jpg").write_bytes(b"macOS metadata")
    (root / "README.txt").write_text("not an image")
    return files


def test_nested_folder_without_labels(tmp_path) -> None:
    files = make_lfw(tmp_path)
    assert list_images(tmp_path) == files
    dataset, source = load_folder(tmp_path, image_size=16, progress=False)
    assert dataset.images.shape == (4, 16, 16, 3) and dataset.labels.shape == (4, 0) and dataset.attributes == ()
    corners = [int(img[0, 0, 1]) for img in np.asarray(dataset.images)]
    assert corners == sorted(corners)  # listing order is the sorted relative paths
    assert source["name"] == "folder" and source["attributes"] == [] and source["files"] == {}
    assert source["skipped"] == {"unreadable_image": 0}


def test_face_margin_zooms_in_on_the_centre(tmp_path) -> None:
    make_lfw(tmp_path)
    plain, _ = load_folder(tmp_path, image_size=16, progress=False)
    face, source = load_folder(tmp_path, image_size=16, face_margin=0.35, progress=False)
    red = lambda ds: float((np.asarray(ds.images)[..., 0] > 200).mean())  # noqa: E731
    assert red(face) > 0.9 and red(plain) < 0.5
    assert source["preprocessing"]["face_margin"] == 0.35 and source["load_args"]["face_margin"] == 0.35


def test_labels_csv_binary_and_categorical_columns(tmp_path) -> None:
    make_lfw(tmp_path)
    (tmp_path / "labels.csv").write_text(
        "file,smiling,hair\n"
        "Aaron_Eckhart/Aaron_Eckhart_0001.jpg,yes,brown\n"
        "Aaron_Eckhart_0002.jpg,no,grey\n"  # a file name works too
        "Bea_Arthur_0001,1,brown\n"  # and a stem
        "Nobody_0001.jpg,no,black\n"  # no such image: counted, not fatal
    )
    dataset, source = load_folder(tmp_path, image_size=16, progress=False)
    smiling, hair = dataset.attributes
    assert smiling.is_binary and hair.values == ("black", "brown", "grey")  # values from every row, sorted
    assert dataset.labels.tolist() == [[1, 1], [0, 2], [1, 1]]
    assert source["skipped"] == {"missing_image": 1, "unlabelled_image": 1, "unreadable_image": 0}
    assert source["files"]["labels"] == str(tmp_path / "labels.csv")
    only, _ = load_folder(tmp_path, image_size=16, attributes=["HAIR"], progress=False)
    assert only.attribute_names() == ["hair"] and only.labels.tolist() == [[1], [2], [1]]


def test_labels_file_given_elsewhere(tmp_path) -> None:
    make_lfw(tmp_path / "photos")
    (tmp_path / "mine.csv").write_text("image,age\nZoe_0001.JPG,30\nBea_Arthur_0001.png,7\n")
    dataset, _ = load_folder(tmp_path / "photos", image_size=16, labels=tmp_path / "mine.csv", progress=False)
    assert dataset.attributes[0].values == ("7", "30")  # numbers sort as numbers
    assert dataset.labels.tolist() == [[0], [1]]
    with pytest.raises(LatentExplorerError, match="no such labels file"):
        load_folder(tmp_path / "photos", labels=tmp_path / "other.csv", progress=False)


@pytest.mark.parametrize("text,message", [
    ("", "is empty"),
    ("file\nZoe_0001.JPG\n", "header"),
    ("file,a,a\nZoe_0001.JPG,1,2\n", "header"),
    ("file,smiling\nZoe_0001.JPG,yes,extra\n", "line 2"),
    ("file,smiling\nZoe_0001.JPG,\n", "line 2"),
    ("file,smiling\nZoe_0001.JPG,yes\nZoe/Zoe_0001.JPG,no\n", "line 3 labels Zoe/Zoe_0001.JPG a second time"),
    ("file,smiling\nnobody.jpg,yes\n", "no row of"),
])
def test_malformed_labels(tmp_path, text: str, message: str) -> None:
    make_lfw(tmp_path)
    (tmp_path / "labels.csv").write_text(text)
    with pytest.raises(LatentExplorerError, match=message):
        load_folder(tmp_path, image_size=16, progress=False)


def test_unreadable_images_are_skipped_and_counted(tmp_path) -> None:
    make_lfw(tmp_path)
    (tmp_path / "Zoe" / "Zoe_0002.jpg").write_bytes(b"")
    dataset, source = load_folder(tmp_path, image_size=16, progress=False)
    assert len(dataset) == 4 and source["skipped"]["unreadable_image"] == 1
    assert "Zoe_0002.jpg" in source["unreadable_examples"][0]


def test_bad_folders_and_options(tmp_path) -> None:
    with pytest.raises(LatentExplorerError, match="no such folder"):
        load_folder(tmp_path / "nope", progress=False)
    (tmp_path / "file.jpg").write_bytes(b"x")
    with pytest.raises(LatentExplorerError, match="is a file, not a folder"):
        load_folder(tmp_path / "file.jpg", progress=False)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(LatentExplorerError, match="no images under"):
        load_folder(tmp_path / "empty", progress=False)
    make_lfw(tmp_path / "lfw")
    with pytest.raises(LatentExplorerError, match="has no attributes.*labels.csv"):
        load_folder(tmp_path / "lfw", attributes=["Smiling"], progress=False)
    with pytest.raises(LatentExplorerError, match="face margin"):
        load_folder(tmp_path / "lfw", face_margin=0.6, progress=False)
    with pytest.raises(LatentExplorerError, match="image size"):
        load_folder(tmp_path / "lfw", image_size=2, progress=False)
    with pytest.raises(LatentExplorerError, match="--num-images must be positive"):
        load_folder(tmp_path / "lfw", num_images=0, progress=False)
