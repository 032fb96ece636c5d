"""A bundle shipped with its generator only: every page's loader opens it, and resuming says why it cannot."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from training.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_bundle
from training.errors import LatentExplorerError
from training.slim import keep_networks


def test_generator_only_bundle_loads_and_samples_the_same(tiny_bundle, tmp_path):
    path = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, path)
    z = torch.randn(4, load_bundle(path).latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = load_bundle(path).generator(z)
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
