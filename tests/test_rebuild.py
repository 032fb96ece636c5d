"""build-checkpoints: a bundle's recorded recipe retrains the same model."""

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training.__main__ import main
from training.data.location import data_root_variable
from training.errors import LatentExplorerError
from training.recipes.rebuild import dataset_arguments, recipe

REPO = Path(__file__).resolve().parent.parent


def test_rebuild_reproduces_a_bundle_bit_for_bit(tmp_path):
    shipped = tmp_path / "checkpoints" / "toyfaces" / "tiny"
    assert main(["train", "--data", "toyfaces", "--num-images", "40", "--image-size", "32", "--steps", "3",
                 "--batch-size", "8", "--g-width", "8", "--d-width", "8", "--latent-dim", "12",
                 "--snapshot-steps", "0", "--out", str(shipped)]) == 0
    assert main(["build-checkpoints", "--checkpoints", str(tmp_path / "checkpoints"), "--only", "toyfaces/tiny",
                 "--out", str(tmp_path / "rebuilt")]) == 0
    before = load_file(str(shipped / "weights.safetensors"))
    after = load_file(str(tmp_path / "rebuilt" / "toyfaces" / "tiny" / "weights.safetensors"))
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_unknown_selection_and_missing_real_data(tmp_path, capsys, monkeypatch):
    root = tmp_path / "checkpoints"
    (root / "x").mkdir(parents=True)
    assert main(["build-checkpoints", "--checkpoints", str(root), "--only", "anime/cgan"]) == 2
    assert "no shipped bundle matches" in capsys.readouterr().err
    config = {"family": "cgan", "dataset": {"name": "anime", "source": {"name": "anime", "load_args": {
        "name": "anime", "path": str(tmp_path / "gone"), "image_size": 64}}}}
    monkeypatch.delenv(data_root_variable("anime"), raising=False)
    with pytest.raises(LatentExplorerError, match="LATENT_EXPLORER_ANIME_ROOT"):
        dataset_arguments(config)
    monkeypatch.setenv("LATENT_EXPLORER_ANIME_ROOT", str(tmp_path))
    assert dataset_arguments(config)["path"] == str(tmp_path)


def test_recipe_refuses_fields_it_does_not_know(tiny_bundle, tmp_path):
    import json

    path = tmp_path / "b"
    shutil.copytree(tiny_bundle, path)
    config = json.loads((path / "config.json").read_text())
    family, _, train_config = recipe(config)
    assert family == "dcgan" and train_config.steps == 4
    config["training"]["warp_drive"] = True
    with pytest.raises(LatentExplorerError, match="warp_drive"):
        recipe(config)


def test_shipped_bundles_carry_no_images_of_real_datasets(tmp_path):
    """A real dataset's images may not be redistributed: shipped VAE bundles keep their codes, labels and dataset
    positions only (procedural toyfaces may keep a few renders); build-checkpoints strips them after training."""
    import zipfile

    import numpy as np

    from training.bundle import find_bundles, read_config
    from training.recipes.rebuild import PROCEDURAL_DATASETS, strip_dataset_images

    for bundle in find_bundles(REPO / "checkpoints"):
        latents = bundle / "latents.npz"
        if latents.exists() and read_config(bundle)["dataset"].get("name") not in PROCEDURAL_DATASETS:
            with zipfile.ZipFile(latents) as archive:
                assert "images.npy" not in archive.namelist(), bundle
                assert {"codes.npy", "labels.npy", "indices.npy"} <= set(archive.namelist()), bundle

    codes = np.zeros((3, 2), np.float32)
    np.savez_compressed(tmp_path / "latents.npz", codes=codes, indices=np.arange(3),
                        images=np.zeros((3, 4, 4, 3), np.uint8))
    assert strip_dataset_images(tmp_path, {"dataset": {"name": "toyfaces"}}) is False
    assert strip_dataset_images(tmp_path, {"dataset": {"name": "anime"}}) is True
    with np.load(tmp_path / "latents.npz") as data:
        assert sorted(data.files) == ["codes", "indices"] and np.array_equal(data["codes"], codes)
    assert strip_dataset_images(tmp_path, {"dataset": {"name": "anime"}}) is False  # nothing left to drop


def test_shipped_bundles_stay_small():
    """Issue #6's budget: every bundle under 15 MB and checkpoints/ under 150 MB (each retrain grows git forever)."""
    from training.bundle import find_bundles

    sizes = {bundle: sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file())
             for bundle in find_bundles(REPO / "checkpoints")}
    assert sizes, "no shipped bundles"
    too_big = {str(b): s for b, s in sizes.items() if s >= 15_000_000}
    assert not too_big
    assert sum(sizes.values()) < 150_000_000
