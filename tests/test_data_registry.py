"""The dataset registry and the train CLI's data options: names, rebuilding from a bundle, what config.json records."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from PIL import Image

from training.__main__ import build_parser, main
from training.data.registry import DATASETS, load_dataset
from training.errors import LatentExplorerError


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LATENT_EXPLORER_CACHE", str(tmp_path / "cache"))


def make_photos(root, n: int = 6) -> None:
    """A nested folder of small photos with a labels.csv."""
    rows = ["file,smiling"]
    for i in range(n):
        rel = f"person_{i % 2}/img_{i}.jpg"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), (i * 40, 90, 200 - i * 30)).save(root / rel)
        rows.append(f"{rel},{'yes' if i % 3 else 'no'}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")


def make_celeba(root) -> None:
    (root / "img_align_celeba").mkdir(parents=True)
    lines = ["4", "Smiling Eyeglasses Male"]
    for i in range(4):
        Image.new("RGB", (30, 36), (i * 60, 40, 90)).save(root / "img_align_celeba" / f"{i + 1:06d}.jpg")
        lines.append(f"{i + 1:06d}.jpg {' '.join('1' if (i >> k) & 1 else '-1' for k in range(3))}")
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")


def make_fashion(root) -> None:
    root.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for prefix, n in (("train", 8), ("t10k", 2)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
            (root / f"{prefix}-{kind}-ubyte.gz").write_bytes(gzip.compress(header + array.tobytes()))


def test_every_dataset_is_registered() -> None:
    assert DATASETS == ("toyfaces", "celeba", "anime", "fashion-mnist", "folder")
    with pytest.raises(LatentExplorerError, match="unknown dataset 'imagenet'; choose one of toyfaces, celeba"):
        load_dataset("imagenet")


def test_toyfaces_is_unchanged_and_refuses_disk_options(tmp_path) -> None:
    dataset, source = load_dataset("toyfaces", image_size=16, num_images=8, seed=2, progress=False)
    assert source == {"name": "toyfaces", "num_images": 8, "seed": 2, "image_size": 16, "generator_version": 1}
    assert dataset.attribute_names()[:2] == ["hair_colour", "eye_colour"]
    picked, picked_source = load_dataset("toyfaces", image_size=16, num_images=8, seed=2, progress=False,
                                         attributes=["smiling", "hair_colour"])
    assert picked.attribute_names() == ["smiling", "hair_colour"] and picked_source["attributes"] == ["smiling",
                                                                                                      "hair_colour"]
    assert np.array_equal(picked.labels, dataset.labels[:, [2, 0]])
    with pytest.raises(LatentExplorerError, match="drop --data-root"):
        load_dataset("toyfaces", path=str(tmp_path))
    with pytest.raises(LatentExplorerError, match="drop --face-margin"):
        load_dataset("toyfaces", face_margin=0.2)
    with pytest.raises(LatentExplorerError, match="no attribute 'hat'"):
        load_dataset("toyfaces", attributes=["hat"])


def test_options_that_do_not_apply(tmp_path) -> None:
    make_fashion(tmp_path / "fm")
    with pytest.raises(LatentExplorerError, match="--face-margin is for face photos"):
        load_dataset("fashion-mnist", path=str(tmp_path / "fm"), face_margin=0.2)
    with pytest.raises(LatentExplorerError, match="--labels is for the folder dataset"):
        load_dataset("celeba", path=str(tmp_path), labels="x.csv")
    with pytest.raises(LatentExplorerError, match="no train/test partition"):
        load_dataset("folder", path=str(tmp_path), split="train")


def test_the_source_description_rebuilds_the_same_dataset(tmp_path) -> None:
    make_photos(tmp_path / "photos")
    dataset, source = load_dataset("folder", image_size=16, path=str(tmp_path / "photos"), progress=False,
                                   face_margin=0.1, attributes="smiling")
    stored = json.loads(json.dumps(source))  # what config.json keeps
    assert stored["load_args"] == {"name": "folder", "path": str((tmp_path / "photos").resolve()), "image_size": 16,
                                   "num_images": None, "attributes": ["smiling"], "face_margin": 0.1,
                                   "labels": str((tmp_path / "photos" / "labels.csv").resolve())}
    again, again_source = load_dataset(**stored["load_args"], progress=False)
    assert isinstance(again.images, np.memmap) and again_source["cache_file"] == source["cache_file"]
    assert np.array_equal(np.asarray(again.images), np.asarray(dataset.images))
    assert np.array_equal(again.labels, dataset.labels) and again.attributes == dataset.attributes


def test_cli_trains_on_a_folder_and_records_the_dataset(tmp_path) -> None:
    make_photos(tmp_path / "photos")
    out = tmp_path / "bundle"
    code = main(["train", "--data", "folder", "--data-root", str(tmp_path / "photos"), "--image-size", "32",
                 "--steps", "2", "--batch-size", "4", "--g-width", "8", "--d-width", "8", "--face-margin", "0.1",
                 "--attributes", "Smiling", "--out", str(out)])
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    data = config["dataset"]
    assert data["name"] == "folder" and data["num_images"] == 6 and data["image_size"] == 32
    assert [a["name"] for a in data["attributes"]] == ["smiling"]
    source = data["source"]
    assert source["folder"] == "photos" and "root" not in source  # by name under a data root, not by this path
    assert source["preprocessing"]["face_margin"] == 0.1 and source["preprocessing"]["image_size"] == 32
    assert source["skipped"] == {"missing_image": 0, "unlabelled_image": 0, "unreadable_image": 0}
    assert source["load_args"]["name"] == "folder" and source["attributes"] == ["smiling"]


def test_cli_data_options_parse() -> None:
    args = build_parser().parse_args(["train", "--data", "celeba", "--data-root", "/data/celeba", "--attributes",
                                      "Male, Smiling,", "--face-margin", "0.2", "--out", "x"])
    assert (args.data, args.data_root, args.attributes, args.face_margin) == ("celeba", "/data/celeba",
                                                                             ["Male", "Smiling"], 0.2)


def test_cli_trains_on_grey_fashion_mnist(tmp_path) -> None:
    make_fashion(tmp_path / "fm")
    out = tmp_path / "fm-bundle"
    assert main(["train", "--data", "fashion-mnist", "--data-root", str(tmp_path / "fm"), "--image-size", "32",
                 "--steps", "1", "--batch-size", "4", "--g-width", "8", "--d-width", "8", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["channels"] == 1 and config["dataset"]["channels"] == 1
    assert config["dataset"]["source"]["name"] == "fashion-mnist"


def test_cli_data_errors_exit_2_with_the_path(tmp_path, capsys) -> None:
    missing = tmp_path / "nowhere"
    assert main(["train", "--data", "celeba", "--data-root", str(missing), "--image-size", "32", "--steps", "1",
                 "--out", str(tmp_path / "x")]) == 2
    assert f"no such folder {missing}" in capsys.readouterr().err
    make_celeba(tmp_path / "celeba")
    assert main(["train", "--data", "celeba", "--data-root", str(tmp_path / "celeba"), "--attributes", "Smile",
                 "--image-size", "32", "--steps", "1", "--out", str(tmp_path / "x")]) == 2
    assert "no attribute 'Smile'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
