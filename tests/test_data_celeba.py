"""CelebA from a tiny folder in each official layout: partial copies, attribute choice, splits and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from training.data.celeba import load_celeba
from training.errors import LatentExplorerError

NAMES = ["Smiling", "Eyeglasses", "Male"]
LABELS = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 0]])
PARTITION = [0, 0, 0, 0, 1, 2]
# Where each layout keeps (images, attribute file, partition file).
LAYOUTS = {
    "flat": ("img_align_celeba", "list_attr_celeba.txt", "list_eval_partition.txt"),
    "official": ("Img/img_align_celeba", "Anno/list_attr_celeba.txt", "Eval/list_eval_partition.txt"),
    "root": ("", "list_attr_celeba.txt", "list_eval_partition.txt"),
    "kaggle": ("img_align_celeba/img_align_celeba", "list_attr_celeba.csv", "list_eval_partition.csv"),
}


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LATENT_EXPLORER_CACHE", str(tmp_path / "cache"))


def _file(i: int) -> str:
    return f"{i + 1:06d}.jpg"


def make_celeba(root, layout: str = "flat", partition: bool = True) -> None:
    """Six 24x30 JPEGs whose red channel is 40 x their row number, plus the label files of the layout."""
    images, attr, part = LAYOUTS[layout]
    folder = root / images if images else root
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(len(LABELS)):
        Image.new("RGB", (24, 30), (i * 40, 100, 200)).save(folder / _file(i), quality=95)
    (root / attr).parent.mkdir(parents=True, exist_ok=True)
    if layout == "kaggle":
        rows = [",".join(["image_id", *NAMES])]
        rows += [",".join([_file(i), *("1" if v else "-1" for v in row)]) for i, row in enumerate(LABELS)]
        parts = ["image_id,partition"] + [f"{_file(i)},{p}" for i, p in enumerate(PARTITION)]
    else:
        rows = [str(len(LABELS)), " ".join(NAMES)]
        rows += [_file(i) + "".join(f" {'1' if v else '-1':>2}" for v in row) for i, row in enumerate(LABELS)]
        parts = [f"{_file(i)} {p}" for i, p in enumerate(PARTITION)]
    (root / attr).write_text("\n".join(rows) + "\n")
    if partition:
        (root / part).parent.mkdir(parents=True, exist_ok=True)
        (root / part).write_text("\n".join(parts) + "\n")


def _rows_of(dataset) -> list[int]:
    """Which fixture image each dataset row came from, read back from its red channel."""
    return [int(round(float(np.asarray(img)[..., 0].mean()) / 40)) for img in dataset.images]


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_loads_with_all_attributes(tmp_path, layout: str) -> None:
    make_celeba(tmp_path, layout)
    dataset, source = load_celeba(tmp_path, image_size=16, progress=False)
    assert dataset.images.shape == (6, 16, 16, 3) and dataset.name == "celeba"
    assert dataset.attribute_names() == NAMES and all(a.is_binary for a in dataset.attributes)
    assert _rows_of(dataset) == list(range(6))
    assert np.array_equal(dataset.labels, LABELS)
    assert source["num_images"] == 6 and source["attributes"] == NAMES and source["root"] == str(tmp_path.resolve())
    assert source["skipped"] == {"missing_image": 0, "unreadable_image": 0}
    assert source["preprocessing"]["image_size"] == 16


def test_partial_copy_uses_only_the_images_present(tmp_path, capsys) -> None:
    make_celeba(tmp_path)
    for i in (1, 4):
        (tmp_path / "img_align_celeba" / _file(i)).unlink()
    data = (tmp_path / "img_align_celeba" / _file(2)).read_bytes()
    (tmp_path / "img_align_celeba" / _file(2)).write_bytes(data[: len(data) // 2])  # truncated download
    dataset, source = load_celeba(tmp_path, image_size=16, progress=False)
    assert _rows_of(dataset) == [0, 3, 5]
    assert np.array_equal(dataset.labels, LABELS[[0, 3, 5]])
    assert source["skipped"] == {"missing_image": 2, "unreadable_image": 1}
    assert _file(2) in source["unreadable_examples"][0]
    assert "skipped 1 unreadable image" in capsys.readouterr().err


def test_chosen_attributes_in_the_order_given(tmp_path) -> None:
    make_celeba(tmp_path)
    dataset, source = load_celeba(tmp_path, image_size=16, attributes=["male", "Smiling"], progress=False)
    assert dataset.attribute_names() == ["Male", "Smiling"]
    assert np.array_equal(dataset.labels, LABELS[:, [2, 0]])
    assert source["attributes"] == ["Male", "Smiling"]
    # The images come from the same cache entry whatever the attributes.
    other, other_source = load_celeba(tmp_path, image_size=16, attributes=["Eyeglasses"], progress=False)
    assert isinstance(other.images, np.memmap) and other_source["cache_file"] == source["cache_file"]


def test_unknown_attribute_names_the_close_ones(tmp_path) -> None:
    make_celeba(tmp_path)
    with pytest.raises(LatentExplorerError, match="no attribute 'Smilling'.*Did you mean Smiling"):
        load_celeba(tmp_path, image_size=16, attributes=["Smilling"], progress=False)


def test_splits_follow_list_eval_partition(tmp_path) -> None:
    make_celeba(tmp_path, "official")
    train, source = load_celeba(tmp_path, image_size=16, split="train", progress=False)
    assert _rows_of(train) == [0, 1, 2, 3] and source["split"] == "train"
    assert source["skipped"]["other_split"] == 2
    test, _ = load_celeba(tmp_path, image_size=16, split="test", progress=False)
    assert _rows_of(test) == [5]
    with pytest.raises(LatentExplorerError, match="split must be one of"):
        load_celeba(tmp_path, image_size=16, split="validation", progress=False)


def test_split_without_partition_file(tmp_path) -> None:
    make_celeba(tmp_path, partition=False)
    assert len(load_celeba(tmp_path, image_size=16, progress=False)[0]) == 6
    with pytest.raises(LatentExplorerError, match="list_eval_partition.txt"):
        load_celeba(tmp_path, image_size=16, split="train", progress=False)


def test_num_images_takes_the_first(tmp_path) -> None:
    make_celeba(tmp_path)
    dataset, source = load_celeba(tmp_path, image_size=16, num_images=2, progress=False)
    assert _rows_of(dataset) == [0, 1] and source["num_images_requested"] == 2


def test_missing_folder_and_missing_files(tmp_path) -> None:
    with pytest.raises(LatentExplorerError, match=f"no such folder {tmp_path / 'nope'}"):
        load_celeba(tmp_path / "nope", progress=False)
    with pytest.raises(LatentExplorerError, match="needs --data-root"):
        load_celeba(None, progress=False)
    (tmp_path / "img_align_celeba").mkdir()
    with pytest.raises(LatentExplorerError, match="no list_attr_celeba.txt"):
        load_celeba(tmp_path, progress=False)
    (tmp_path / "list_attr_celeba.txt").write_text("1\nSmiling\n000001.jpg 1\n")
    with pytest.raises(LatentExplorerError, match="no images in"):
        load_celeba(tmp_path, progress=False)
    (tmp_path / "img_align_celeba.zip").write_bytes(b"PK")
    with pytest.raises(LatentExplorerError, match="still zipped.*unzip"):
        load_celeba(tmp_path, progress=False)


def test_no_listed_image_present(tmp_path) -> None:
    make_celeba(tmp_path)
    attr = tmp_path / "list_attr_celeba.txt"
    attr.write_text(attr.read_text().replace("0000", "9990"))
    with pytest.raises(LatentExplorerError, match="none of the 6 images"):
        load_celeba(tmp_path, progress=False)


@pytest.mark.parametrize("bad_row,message", [
    ("000003.jpg 1 -1", "line 5 has 2 values for 3 attributes"),
    ("000003.jpg 1 -1 2", "line 5: attribute Male is '2'"),
    ("000003.jpg 1 -1 yes", "line 5: attribute Male is 'yes'"),
])
def test_malformed_attribute_rows(tmp_path, bad_row: str, message: str) -> None:
    make_celeba(tmp_path)
    attr = tmp_path / "list_attr_celeba.txt"
    lines = attr.read_text().splitlines()
    lines[4] = bad_row
    attr.write_text("\n".join(lines) + "\n")
    with pytest.raises(LatentExplorerError, match=message) as info:
        load_celeba(tmp_path, progress=False)
    assert str(attr) in str(info.value)


def test_held_out_images_of_a_copy_without_test_partition(tmp_path) -> None:
    """The shared 10,000-face copy lies wholly in the official train partition: the feature network and the
    metrics then hold images out by seed instead of finding no test image at all."""
    from training.metrics.real import load_real

    make_celeba(tmp_path, "official")
    part = tmp_path / LAYOUTS["official"][2]
    part.write_text("".join(f"{_file(i)} 0\n" for i in range(len(LABELS))))
    real = load_real("celeba", image_size=16, data_root=tmp_path, n_test=4)
    assert len(real.test) == 2 and len(real.train) == len(LABELS) - 2
    assert "no test partition" in real.test_source["held_out"]
