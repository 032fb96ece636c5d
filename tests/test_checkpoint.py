import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from training.bundle import FORMAT_VERSION, find_bundles, load_bundle, read_config
from training.errors import LatentExplorerError


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path):
    path = tmp_path / "copy"
    shutil.copytree(tiny_bundle, path)
    return path


def test_trained_bundle_has_every_part(tiny_bundle):
    bundle = load_bundle(tiny_bundle, with_training_networks=True)
    assert bundle.family == "dcgan" and bundle.latent_dim == 16
    assert bundle.config["step"] == 4
    assert bundle.history["step"] == [1, 2, 3, 4]
    assert set(bundle.history) == {"step", "loss_g", "loss_d", "d_real", "d_fake"}
    assert list(bundle.snapshot_paths()) == [0, 2, 4]
    assert bundle.prior.label == "N(0, 1)"
    assert [a.name for a in bundle.attributes][:4] == ["hair_colour", "eye_colour", "smiling", "glasses"]
    assert set(bundle.networks) == {"generator", "discriminator"}


def test_load_is_bit_identical_to_saved_weights(tiny_bundle):
    saved = load_file(str(tiny_bundle / "weights.safetensors"))
    bundle = load_bundle(tiny_bundle, with_training_networks=True)
    for net_name, net in bundle.networks.items():
        for key, tensor in net.state_dict().items():
            assert torch.equal(tensor, saved[f"{net_name}.{key}"]), key


def test_explorer_loads_only_the_generator(tiny_bundle):
    assert set(load_bundle(tiny_bundle).networks) == {"generator"}


def test_find_bundles(tiny_bundle):
    assert find_bundles(tiny_bundle.parent) == [tiny_bundle]


def _edit_config(path, change):
    config = json.loads((path / "config.json").read_text())
    change(config)
    (path / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("damage,message", [
    (lambda p: shutil.rmtree(p), "no such bundle folder"),
    (lambda p: (p / "config.json").unlink(), "missing model config"),
    (lambda p: (p / "config.json").write_text("{not json"), "not valid JSON"),
    (lambda p: (p / "config.json").write_text("[1, 2]"), "expected a JSON object"),
    (lambda p: _edit_config(p, lambda c: c.update(format_version=FORMAT_VERSION + 1)), "newer than this program"),
    (lambda p: _edit_config(p, lambda c: c.pop("format_version")), "format_version"),
    (lambda p: _edit_config(p, lambda c: c.update(family="transformer")), "unknown model family"),
    (lambda p: _edit_config(p, lambda c: c["model"].update(latent_dim=10**9)), "latent_dim"),
    (lambda p: _edit_config(p, lambda c: c["model"].update(latent_dim=17)), "shape"),
    (lambda p: _edit_config(p, lambda c: c["model"].update(latent_dim="16")), "latent_dim"),
    (lambda p: _edit_config(p, lambda c: c["model"].update(colour="red")), "unknown dcgan config fields"),
    (lambda p: (p / "weights.safetensors").unlink(), "missing weights"),
    (lambda p: (p / "weights.safetensors").write_bytes((p / "weights.safetensors").read_bytes()[:5000]),
     "truncated or corrupt"),
    (lambda p: (p / "weights.safetensors").write_bytes(b"\x00" * 64), "truncated or corrupt"),
])
def test_each_failure_names_the_file_and_the_problem(bundle_copy, damage, message):
    damage(bundle_copy)
    with pytest.raises(LatentExplorerError, match=message) as info:
        load_bundle(bundle_copy)
    assert str(bundle_copy) in str(info.value)


def test_missing_and_nan_tensors_are_refused(bundle_copy):
    weights = load_file(str(bundle_copy / "weights.safetensors"))
    broken = {k: v for k, v in weights.items() if k != "generator.main.0.weight"}
    save_file(broken, str(bundle_copy / "weights.safetensors"))
    with pytest.raises(LatentExplorerError, match="missing: main.0.weight"):
        load_bundle(bundle_copy)
    weights["generator.main.0.weight"][0, 0, 0, 0] = float("nan")
    save_file(weights, str(bundle_copy / "weights.safetensors"))
    with pytest.raises(LatentExplorerError, match="NaN"):
        load_bundle(bundle_copy)


def test_read_config_does_not_need_weights(bundle_copy):
    (bundle_copy / "weights.safetensors").unlink()
    assert read_config(bundle_copy)["family"] == "dcgan"


def test_no_pickle_in_a_bundle(tiny_bundle):
    for file in tiny_bundle.rglob("*"):
        if file.is_file():
            assert file.suffix in {".json", ".safetensors", ".png", ".npz"}, file


def test_find_bundles_skips_hidden_folders_stops_at_bundles_and_survives_link_loops(tmp_path):
    from training.bundle import find_bundles

    root = tmp_path / ".hidden-parent" / "checkpoints"  # a hidden folder above root is fine
    for folder in ("toyfaces/dcgan", "toyfaces/dcgan/snapshots/inner", "anime/vae", ".trash/old", "a/b/c"):
        (root / folder).mkdir(parents=True)
    for bundle in ("toyfaces/dcgan", "toyfaces/dcgan/snapshots/inner", "anime/vae", ".trash/old", "a/b/c"):
        (root / bundle / "config.json").write_text("{}")
    (root / "anime" / "loop").symlink_to(root, target_is_directory=True)
    assert find_bundles(root) == [root / "a/b/c", root / "anime/vae", root / "toyfaces/dcgan"]
    assert find_bundles(tmp_path / "missing") == []
