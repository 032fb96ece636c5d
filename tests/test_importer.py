"""Importing a student's netG.pth (PyTorch DCGAN tutorial names) safely, and refusing everything else clearly."""

from __future__ import annotations

import pathlib
from collections import OrderedDict

import pytest
import torch
from torch import nn

from training.__main__ import main
from training.checkpoint import load_bundle
from training.errors import LatentExplorerError
from training.importers import import_tutorial_dcgan, load_state_dict
from training.models.dcgan import DCGANConfig, Generator


class TutorialGenerator(nn.Module):
    """The PyTorch DCGAN tutorial's netG, as students type it (nz=100, 64x64, nc=3), with a small ngf."""

    def __init__(self, nz: int = 100, ngf: int = 8, nc: int = 3):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
        )

    def forward(self, x):
        return self.main(x)


def _randomise_batchnorm(module: nn.Module) -> None:
    # Fresh BatchNorm statistics are 0/1; make them distinctive so a wrong mapping would show in the outputs.
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)


@pytest.fixture
def our_state_file(tmp_path):
    torch.manual_seed(0)
    g = Generator(DCGANConfig(g_width=8))
    _randomise_batchnorm(g)
    path = tmp_path / "netG.pth"
    torch.save(g.state_dict(), path)
    return g.eval(), path


def test_state_dict_with_tutorial_names_becomes_a_bundle_that_generates_the_same_images(our_state_file, tmp_path):
    g, path = our_state_file
    out = import_tutorial_dcgan(path, tmp_path / "bundle")
    bundle = load_bundle(out)
    assert bundle.family == "dcgan" and bundle.latent_dim == 100
    assert bundle.config["model"]["g_width"] == 8 and bundle.config["model"]["image_size"] == 64
    assert bundle.history == {} and bundle.snapshot_paths() == {}
    assert bundle.config["imported_from"]["ngf"] == 8 and len(bundle.config["imported_from"]["sha256"]) == 64
    z = torch.randn(4, 100)
    with torch.no_grad():
        assert torch.allclose(bundle.generator(z), g(z), atol=1e-6)


def test_the_tutorial_class_itself_with_dataparallel_prefix_imports(tmp_path):
    torch.manual_seed(1)
    net = TutorialGenerator(ngf=8).eval()
    _randomise_batchnorm(net)
    state = OrderedDict((f"module.{k}", v) for k, v in net.state_dict().items())  # nn.DataParallel's names
    path = tmp_path / "netG_dp.pth"
    torch.save(state, path)
    bundle = load_bundle(import_tutorial_dcgan(path, tmp_path / "b", name="class demo"))
    assert bundle.name == "class demo"
    z = torch.randn(3, 100)
    with torch.no_grad():
        assert torch.allclose(bundle.generator(z), net(z.view(3, 100, 1, 1)), atol=1e-6)


def test_checkpoint_dict_wrapping_the_generator_and_old_state_dicts_without_counters(our_state_file, tmp_path):
    g, _ = our_state_file
    state = {k: v for k, v in g.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "ckpt.pth"
    torch.save({"netG": state, "netD": {"main.0.weight": torch.zeros(1)}, "epoch": 5}, path)
    assert load_bundle(import_tutorial_dcgan(path, tmp_path / "b")).config["model"]["latent_dim"] == 100


def test_whole_pickled_model_is_refused_with_the_resave_line(tmp_path):
    path = tmp_path / "whole.pth"
    torch.save(TutorialGenerator(ngf=4), path)
    with pytest.raises(LatentExplorerError, match="whole pickled model") as info:
        import_tutorial_dcgan(path, tmp_path / "b")
    assert 'torch.save(netG.state_dict(), "netG.pth")' in str(info.value)
    assert "TutorialGenerator" in str(info.value)
    assert not (tmp_path / "b").exists()


class _Payload:
    """Unpickling this would create a file: the test proves the importer never runs it."""

    def __init__(self, target: pathlib.Path):
        self.target = target

    def __reduce__(self):
        return (pathlib.Path.touch, (self.target,))


@pytest.mark.parametrize("legacy", [False, True])
def test_malicious_pickle_never_executes(tmp_path, legacy):
    sentinel = tmp_path / "executed"
    path = tmp_path / "evil.pth"
    torch.save({"main.0.weight": _Payload(sentinel)}, path, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(LatentExplorerError, match="never unpickles"):
        load_state_dict(path)
    assert not sentinel.exists()


def test_wrong_shapes_name_the_tensor(our_state_file, tmp_path):
    g, _ = our_state_file
    state = g.state_dict()
    state["main.3.weight"] = torch.zeros(64, 16, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(LatentExplorerError, match=r"main\.3\.weight has shape \(64, 16, 3, 3\)"):
        import_tutorial_dcgan(path, tmp_path / "b")


@pytest.mark.parametrize("content,message", [
    (b"", "empty"),
    (b"just some text\n", "not a file written by torch.save"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "image"),
    (b"PK\x03\x04truncated zip", "truncated or damaged"),
])
def test_wrong_file_types(tmp_path, content, message):
    path = tmp_path / "upload.pth"
    path.write_bytes(content)
    with pytest.raises(LatentExplorerError, match=message):
        load_state_dict(path)


@pytest.mark.parametrize("payload,message", [
    ({"lr": 0.0002, "epoch": 3}, "not tensors"),
    (torch.zeros(3), "single tensor"),
    ([torch.zeros(3)], "holds a list"),
    ({"features.0.weight": torch.zeros(2, 2)}, "not the PyTorch DCGAN tutorial's generator"),
])
def test_non_state_dict_content(tmp_path, payload, message):
    path = tmp_path / "x.pth"
    torch.save(payload, path)
    with pytest.raises(LatentExplorerError, match=message):
        import_tutorial_dcgan(path, tmp_path / "b")


def test_discriminator_and_nan_weights_are_explained(our_state_file, tmp_path):
    netd = {f"main.{i}.weight": torch.zeros(1) for i in (0, 2, 3, 5, 6, 8, 9, 11)}
    path = tmp_path / "netD.pth"
    torch.save(netd, path)
    with pytest.raises(LatentExplorerError, match="discriminator"):
        import_tutorial_dcgan(path, tmp_path / "b")
    g, _ = our_state_file
    state = g.state_dict()
    state["main.6.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, path)
    with pytest.raises(LatentExplorerError, match="NaN"):
        import_tutorial_dcgan(path, tmp_path / "b")


def test_cli_import_dcgan(our_state_file, tmp_path, capsys):
    _, path = our_state_file
    out = tmp_path / "cli-bundle"
    assert main(["import-dcgan", str(path), "--out", str(out)]) == 0
    assert "nz=100, ngf=8" in capsys.readouterr().out
    assert main(["info", str(out)]) == 0
    missing = tmp_path / "missing.pth"
    assert main(["import-dcgan", str(missing), "--out", str(tmp_path / "x")]) == 2
    assert "no such file" in capsys.readouterr().err
