"""A bundle shipped with its generator only: every page's loader opens it, and resuming says why it cannot."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from training.bundle import CONFIG_FILE, WEIGHTS_FILE, load_bundle
from training.bundle.slim import keep_networks
from training.errors import LatentExplorerError


@pytest.fixture
def copied(tiny_bundle, tmp_path):
    """A copy of the tiny bundle, its generator's images for fixed codes (before any slimming), and the codes."""
    path = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, path)
    z = torch.randn(16, load_bundle(path).latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return path, z, load_bundle(path).generator(z)


def test_generator_only_bundle_loads_and_samples_the_same(copied):
    path, z, before = copied
    size = (path / WEIGHTS_FILE).stat().st_size
    saved = keep_networks(path, ["generator"])
    assert 0 < saved < size and (path / WEIGHTS_FILE).stat().st_size == size - saved
    assert json.loads((path / CONFIG_FILE).read_text())["networks_shipped"] == ["generator"]
    with torch.no_grad():
        assert torch.equal(load_bundle(path).generator(z), before)
    with pytest.raises(LatentExplorerError, match="ships only its generator.*build-checkpoints"):
        load_bundle(path, with_training_networks=True)


def test_the_generator_cannot_be_dropped(tiny_bundle, tmp_path):
    path = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, path)
    with pytest.raises(LatentExplorerError, match="needs the generator"):
        keep_networks(path, ["discriminator"])


def test_half_precision_weights_give_the_same_pictures(copied):
    path, z, before = copied
    keep_networks(path, ["generator"], half=True)
    assert json.loads((path / CONFIG_FILE).read_text())["weights_stored_as"] == "float16"
    bundle = load_bundle(path)
    assert all(p.dtype == torch.float32 for p in bundle.generator.parameters())
    with torch.no_grad():
        after = bundle.generator(z)
    assert float((after - before).abs().max()) * 127.5 < 1  # under one 8-bit level of the shown image


def test_half_precision_tensors_are_refused_unless_the_config_says_so(tiny_bundle, tmp_path):
    path = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, path)
    keep_networks(path, ["generator"], half=True)
    config = json.loads((path / CONFIG_FILE).read_text())
    del config["weights_stored_as"]
    (path / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(LatentExplorerError, match="dtype torch.float16"):
        load_bundle(path)
