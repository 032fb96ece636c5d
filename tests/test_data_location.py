"""Bundles record their dataset by a folder name under a data root, never by a path of the machine that made them,
and find it again on another machine: an explicit path, $LATENT_EXPLORER_<NAME>_ROOT, $LATENT_EXPLORER_DATA_ROOT."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from anime_folder import TAGS, make_anime

from explorer.logic.real_images import real_images
from training.__main__ import main
from training.data.location import find_dataset_folder, load_arguments, portable_record, portable_source
from training.data.registry import load_dataset
from training.errors import LatentExplorerError
from training.metrics.real import load_real_for_bundle

TINY = ["--image-size", "32", "--steps", "2", "--batch-size", "4"]


def all_strings(value: object) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *all_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in all_strings(v)]
    return [value] if isinstance(value, str) else []


def assert_portable(file, *machine_paths) -> None:
    strings = all_strings(json.loads(file.read_text()))
    assert strings, file
    for s in strings:
        assert not s.startswith("/") and not any(p in s for p in machine_paths), f"{file}: {s!r}"


def test_a_source_record_loses_every_path_of_this_machine(tmp_path) -> None:
    (tmp_path / "photos" / "a").mkdir(parents=True)
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (20, 20), (40 * i, 0, 0)).save(tmp_path / "photos" / "a" / f"{i}.png")
    (tmp_path / "photos" / "a" / "bad.png").write_bytes(b"not a png")
    (tmp_path / "photos" / "labels.csv").write_text("file,smiling\na/0.png,1\na/1.png,0\na/2.png,1\na/bad.png,0\n")
    _, source = load_dataset("folder", image_size=16, path=str(tmp_path / "photos"), progress=False)
    portable = portable_source(source)
    assert portable["folder"] == "photos" and "root" not in portable and "path" not in portable["load_args"]
    assert portable["files"] == {"labels": "labels.csv"} and portable["load_args"]["labels"] == "labels.csv"
    assert portable["unreadable_examples"][0].startswith("a/bad.png: ")
    assert str(tmp_path) not in json.dumps(portable) and portable_source(portable) == portable
    # The same dataset, found again by its folder name under another data root, labels file and all.
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.move(tmp_path / "photos", moved / "photos")
    args = load_arguments(portable, moved)
    assert args["path"] == str(moved / "photos") and args["labels"] == str(moved / "photos" / "labels.csv")
    again, _ = load_dataset(**args, progress=False)
    assert len(again) == 3 and again.attribute_names() == ["smiling"]


def test_the_folder_is_found_in_order_and_otherwise_the_message_says_how(tmp_path, monkeypatch) -> None:
    for where in ("explicit", "own", "shared/anime64", "old"):
        (tmp_path / where).mkdir(parents=True)
    old = {"name": "anime", "root": str(tmp_path / "old")}
    portable = {"name": "anime", "folder": "anime64"}
    assert find_dataset_folder(old) == tmp_path / "old"  # an older bundle's path, while it exists
    assert find_dataset_folder(portable, tmp_path / "shared") == tmp_path / "shared" / "anime64"  # the folder above
    monkeypatch.setenv("LATENT_EXPLORER_DATA_ROOT", str(tmp_path / "shared"))
    assert find_dataset_folder(portable) == tmp_path / "shared" / "anime64"
    monkeypatch.setenv("LATENT_EXPLORER_ANIME_ROOT", str(tmp_path / "own"))
    assert find_dataset_folder(portable) == tmp_path / "own"
    assert find_dataset_folder(portable, str(tmp_path / "explicit")) == tmp_path / "explicit"
    monkeypatch.setenv("LATENT_EXPLORER_ANIME_ROOT", str(tmp_path / "gone"))
    with pytest.raises(LatentExplorerError, match="LATENT_EXPLORER_ANIME_ROOT is .*gone, which is not a folder"):
        find_dataset_folder(portable)
    monkeypatch.delenv("LATENT_EXPLORER_ANIME_ROOT")
    monkeypatch.setenv("LATENT_EXPLORER_DATA_ROOT", str(tmp_path / "explicit"))
    with pytest.raises(LatentExplorerError) as info:
        find_dataset_folder(portable)
    assert str(info.value) == (
        "the anime images are not on this machine: pass --data-root with your anime64 folder, or set "
        "LATENT_EXPLORER_ANIME_ROOT to that folder, or LATENT_EXPLORER_DATA_ROOT to the folder that holds it "
        f"(LATENT_EXPLORER_DATA_ROOT is {tmp_path / 'explicit'}, which has no anime64 folder)")
    assert find_dataset_folder({"name": "toyfaces"}) is None
    from training.data import fashion_mnist

    monkeypatch.setattr(fashion_mnist, "DEFAULT_ROOTS", (tmp_path / "absent",))
    with pytest.raises(LatentExplorerError, match="set LATENT_EXPLORER_FASHION_MNIST_ROOT to that folder"):
        find_dataset_folder({"name": "fashion-mnist", "folder": "fashion-mnist"})
    monkeypatch.setattr(fashion_mnist, "DEFAULT_ROOTS", (tmp_path / "absent", tmp_path / "old"))
    assert find_dataset_folder({"name": "fashion-mnist", "folder": "fashion-mnist"}) is None  # Debian's package


def test_a_bundle_trained_here_is_found_again_elsewhere(tmp_path, monkeypatch) -> None:
    """Train and score a tiny bundle on a folder dataset: its JSON names no path of this machine, and its real
    images are found again on "another machine" through each of the three ways of pointing at them."""
    here = tmp_path / "machine-a"
    make_anime(here / "anime64", tags=TAGS * 8)
    bundle, net = tmp_path / "bundle", tmp_path / "featurenet"
    data = ["--data", "anime", "--data-root", str(here / "anime64")]
    assert main(["train", *data, *TINY, "--g-width", "8", "--d-width", "8", "--out", str(bundle)]) == 0
    assert main(["train-featurenet", *data, *TINY, "--heldout", "4", "--width", "4", "--out", str(net)]) == 0
    assert main(["evaluate", str(bundle), "--feature-net", str(net), "--samples", "8", "--k", "1",
                 "--data-root", str(here / "anime64"), "--quiet", "--write"]) == 0
    for file in (bundle / "config.json", bundle / "metrics.json", net / "config.json", net / "metrics.json"):
        assert_portable(file, str(tmp_path), str(here))
    config = json.loads((bundle / "config.json").read_text())
    assert config["dataset"]["source"]["folder"] == "anime64"
    assert json.loads((bundle / "metrics.json").read_text())["bundle"]["path"] == f"{tmp_path.name}/bundle"

    there = tmp_path / "machine-b"
    there.mkdir()
    shutil.move(here / "anime64", there / "anime64")
    expected = load_real_for_bundle(config, there / "anime64", n_test=4).train.images
    first = real_images(config["dataset"], 3, str(there / "anime64"))
    with pytest.raises(LatentExplorerError, match="not on this machine: pass --data-root"):
        load_real_for_bundle(config)
    # The app's server remembers the folder it last read the dataset from (a reload finds it again) ...
    assert np.array_equal(real_images(config["dataset"], 3).numpy(), first.numpy())
    from explorer.logic import real_images as app_memory

    app_memory._READ_FROM.clear()  # ... a server that never read it asks for the folder
    with pytest.raises(LatentExplorerError, match="not shipped with the app: type the folder that holds your anime64"):
        real_images(config["dataset"], 3)
    assert main(["evaluate", str(bundle), "--feature-net", str(net), "--samples", "8", "--k", "1", "--no-write",
                 "--quiet"]) == 2
    for variable, value in (("LATENT_EXPLORER_DATA_ROOT", there), ("LATENT_EXPLORER_ANIME_ROOT", there / "anime64")):
        with monkeypatch.context() as env:
            env.setenv(variable, str(value))
            assert np.array_equal(load_real_for_bundle(config, n_test=4).train.images, expected)
            assert np.array_equal(real_images(config["dataset"], 3).numpy(), first.numpy())
            assert main(["evaluate", str(bundle), "--feature-net", str(net), "--samples", "8", "--k", "1",
                         "--no-write", "--quiet"]) == 0
    assert np.array_equal(real_images(config["dataset"], 3, str(there)).numpy(), first.numpy())  # the folder above


def test_a_run_started_before_records_were_portable_resumes(tmp_path, monkeypatch) -> None:
    from training.loops import provenance

    make_anime(tmp_path / "anime64", tags=TAGS * 2)
    out = tmp_path / "run"
    args = ["train", "--data", "anime", "--data-root", str(tmp_path / "anime64"), *TINY, "--g-width", "8",
            "--d-width", "8", "--out", str(out)]
    with monkeypatch.context() as old_code:
        old_code.setattr(provenance, "portable_source", lambda source: source)
        assert main([*args, "--keep-training-state"]) == 0
    assert str(tmp_path) in (out / "config.json").read_text()
    assert main([*args, "--steps", "3", "--resume"]) == 0  # the last --steps counts
    config = json.loads((out / "config.json").read_text())
    assert config["step"] == 3 and config["dataset"]["source"]["folder"] == "anime64"


def test_portable_paths_rewrites_old_bundles_and_leaves_the_weights(tiny_bundle, tmp_path, capsys) -> None:
    bundle = tmp_path / "checkpoints" / "anime" / "old"
    shutil.copytree(tiny_bundle, bundle)
    config = json.loads((bundle / "config.json").read_text())
    config["dataset"]["source"] = {"name": "anime", "root": "/work/data/anime64",
                                   "files": {"tags": "/work/data/anime64/tags.csv"},
                                   "load_args": {"name": "anime", "path": "/work/data/anime64", "image_size": 32}}
    (bundle / "config.json").write_text(json.dumps(config))
    metrics = {"bundle": {"name": "old", "path": "/root/runs/old"}, "real": {"train": config["dataset"]["source"]}}
    (bundle / "metrics.json").write_text(json.dumps(metrics))
    weights = (bundle / "weights.safetensors").read_bytes()
    assert main(["portable-paths", str(tmp_path / "checkpoints")]) == 0
    assert "2 file(s) rewritten" in capsys.readouterr().out
    for file in ("config.json", "metrics.json"):
        assert_portable(bundle / file, str(tmp_path), "/work", "/root")
    source = json.loads((bundle / "config.json").read_text())["dataset"]["source"]
    assert source == {"name": "anime", "folder": "anime64", "files": {"tags": "tags.csv"},
                      "load_args": {"name": "anime", "image_size": 32}}
    assert json.loads((bundle / "metrics.json").read_text())["bundle"]["path"] == "runs/old"
    assert (bundle / "weights.safetensors").read_bytes() == weights
    assert main(["portable-paths", str(bundle)]) == 0 and "0 file(s) rewritten" in capsys.readouterr().out
    assert portable_record({"a": [config]}, tmp_path)["a"][0]["dataset"]["source"]["folder"] == "anime64"
