"""Importing a student's netG.pth (PyTorch DCGAN tutorial names) safely, and refusing everything else clearly."""

from __future__ import annotations

import io
import pathlib
import pickle
from collections import OrderedDict

import pytest
import torch
from torch import nn

from training.__main__ import main
from training.bundle import load_bundle
from training.errors import LatentExplorerError
from training.models.dcgan import DCGANConfig, Generator
from training.untrusted.importers import import_tutorial_dcgan, load_state_dict


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


# --- the generators and discriminators students really save: 32, 64 and 128 px, grey or colour -----------------

def student_netg(image_size: int, nz: int, ngf: int, nc: int) -> nn.Module:
    """The tutorial's netG as students type it, shortened by one block for 32 px (MNIST, CIFAR) or lengthened by
    one for 128 px; written out layer by layer, independently of training.models.dcgan."""
    if image_size == 64:
        return TutorialGenerator(nz=nz, ngf=ngf, nc=nc)
    net = TutorialGenerator(nz=nz, ngf=ngf, nc=nc)
    if image_size == 32:
        net.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
        )
    else:
        net.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 16, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 16), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 16, ngf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
        )
    return net


def student_netd(image_size: int, ndf: int, nc: int) -> nn.Module:
    """The tutorial's netD (64 px), pytorch/examples' MNIST-style one (32 px, last layer main.8) and a 128 px one."""
    blocks = {32: [1, 2, 4], 64: [1, 2, 4, 8], 128: [1, 2, 4, 8, 16]}[image_size]
    layers = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    for a, b in zip(blocks, blocks[1:]):
        layers += [nn.Conv2d(ndf * a, ndf * b, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * b),
                   nn.LeakyReLU(0.2, inplace=True)]
    layers += [nn.Conv2d(ndf * blocks[-1], 1, 4, 1, 0, bias=False), nn.Sigmoid()]
    net = nn.Module()
    net.main = nn.Sequential(*layers)
    return net


def trained_looking(net: nn.Module, seed: int) -> nn.Module:
    """Distinct BatchNorm weights and statistics in every layer, so a layer mapped wrongly changes the images."""
    torch.manual_seed(seed)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.weight.data.normal_(1, 0.2)
            module.bias.data.normal_(0, 0.2)
    _randomise_batchnorm(net)
    return net.eval()


def assert_same_images(out: pathlib.Path, net: nn.Module, nz: int) -> None:
    """The imported bundle draws exactly what the student's own module draws for the same z."""
    bundle = load_bundle(out)
    z = torch.randn(3, nz)
    with torch.no_grad():
        theirs = net(z.view(3, nz, 1, 1))
        ours = bundle.generator(z)
    assert ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, atol=1e-6)


@pytest.mark.parametrize("image_size,nz,ngf", [(32, 100, 32), (64, 100, 8), (128, 16, 4)])
@pytest.mark.parametrize("nc", [1, 3])
def test_every_size_and_channel_count_imports_exactly(tmp_path, image_size, nz, ngf, nc):
    net = trained_looking(student_netg(image_size, nz, ngf, nc), seed=image_size + nc)
    path = tmp_path / "netG.pth"
    torch.save(net.state_dict(), path)
    out = import_tutorial_dcgan(path, tmp_path / "bundle")
    config = load_bundle(out).config
    assert config["model"]["image_size"] == config["dataset"]["image_size"] == image_size
    assert config["model"]["channels"] == config["dataset"]["channels"] == nc
    assert (config["model"]["latent_dim"], config["model"]["g_width"]) == (nz, ngf)
    assert_same_images(out, net, nz)


def test_the_32px_variant_once_refused_imports_from_the_cli(tmp_path, capsys):
    # The file from the issue: four ConvTranspose2d blocks, main.0 ... main.9, main.0.weight (100, 128, 4, 4).
    net = trained_looking(student_netg(32, 100, 32, 3), seed=7)
    assert tuple(net.state_dict()["main.0.weight"].shape) == (100, 128, 4, 4)
    assert max(int(k.split(".")[1]) for k in net.state_dict()) == 9
    path = tmp_path / "netG_32.pth"
    torch.save(net.state_dict(), path)
    assert main(["import-dcgan", str(path), "--out", str(tmp_path / "b")]) == 0
    assert "nz=100, ngf=32, 3 channels, 32x32" in capsys.readouterr().out
    assert_same_images(tmp_path / "b", net, 100)


def _optimizer_state(net: nn.Module) -> dict:
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999))
    net(torch.randn(2, 16, 1, 1)).mean().backward()
    optimizer.step()
    optimizer.zero_grad()
    return optimizer.state_dict()


def _prefixed(state: dict, prefix: str) -> OrderedDict:
    return OrderedDict((prefix + k, v) for k, v in state.items())


WRAPPINGS = {
    "plain": lambda g, d, opt: g,
    "module. prefix": lambda g, d, opt: _prefixed(g, "module."),
    "torch.compile prefix": lambda g, d, opt: _prefixed(g, "_orig_mod."),
    "no BatchNorm counters": lambda g, d, opt: {k: v for k, v in g.items() if not k.endswith("num_batches_tracked")},
    "generator_state": lambda g, d, opt: {"generator_state": g, "discriminator_state": d, "epoch": 5},
    "netG": lambda g, d, opt: {"netD": d, "netG": g, "optimizerG": opt, "epoch": 5},
    "model_state_dict": lambda g, d, opt: {"epoch": 5, "model_state_dict": g, "optimizer_state_dict": opt},
    "state_dict": lambda g, d, opt: {"state_dict": _prefixed(g, "module."), "epoch": 5},
    "generator": lambda g, d, opt: {"generator": g, "discriminator": d, "fixed_noise": torch.randn(4, 16, 1, 1)},
    "G": lambda g, d, opt: {"D": d, "G": g, "opt_G": opt, "losses": [1.2, 0.8]},
}


@pytest.mark.parametrize("wrapping", sorted(WRAPPINGS))
def test_prefixes_old_files_and_checkpoint_wrappers(tmp_path, wrapping):
    net = trained_looking(student_netg(32, 16, 8, 1), seed=3)
    netd = student_netd(32, 8, 1)
    optimizer = _optimizer_state(net)
    path = tmp_path / "checkpoint.pth"
    torch.save(WRAPPINGS[wrapping](net.state_dict(), netd.state_dict(), optimizer), path)
    out = import_tutorial_dcgan(path, tmp_path / "bundle")
    assert load_bundle(out).config["model"]["image_size"] == 32
    assert_same_images(out, net.eval(), 16)


@pytest.mark.parametrize("image_size", [32, 64, 128])
@pytest.mark.parametrize("nc", [1, 3])
@pytest.mark.parametrize("wrapped", [False, True])
def test_a_discriminator_is_named_at_every_size(tmp_path, image_size, nc, wrapped):
    # 64 px 3 channels: the tutorial's netD; 32 px 1 channel: pytorch/examples' MNIST-style netD (last layer main.8).
    state = student_netd(image_size, 8, nc).state_dict()
    path = tmp_path / "netD.pth"
    torch.save({"state_dict": _prefixed(state, "module."), "epoch": 5} if wrapped else state, path)
    with pytest.raises(LatentExplorerError) as info:
        import_tutorial_dcgan(path, tmp_path / "b")
    assert "this is a discriminator (netD): upload the generator (netG)" in str(info.value)


@pytest.mark.parametrize("image_size,last", [(32, "main.8"), (64, "main.11")])
def test_the_mnist_discriminators_students_bring_are_named(tmp_path, image_size, last):
    # The file: a grey netD at full tutorial width, first weight (64, 1, 4, 4), last layer main.8 (32 px);
    # and pytorch/examples' dcgan on MNIST (64 px, nc=1), ending at main.11.
    state = student_netd(image_size, 64, 1).state_dict()
    assert tuple(state["main.0.weight"].shape) == (64, 1, 4, 4)
    assert max(int(k.split(".")[1]) for k in state) == int(last.split(".")[1])
    path = tmp_path / "netD_mnist.pth"
    torch.save(state, path)
    with pytest.raises(LatentExplorerError, match=r"^netD_mnist.pth: this is a discriminator \(netD\): upload the "
                                                  r"generator \(netG\)$"):
        import_tutorial_dcgan(path, tmp_path / "b")


class UpsampleGenerator(nn.Module):
    """A foreign generator that reuses the name `main`: nearest-neighbour upsampling and 3x3 convolutions."""

    def __init__(self, nz: int = 100, ngf: int = 8):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.Upsample(scale_factor=2), nn.Conv2d(ngf * 4, ngf * 2, 3, 1, 1), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.Upsample(scale_factor=2), nn.Conv2d(ngf * 2, 3, 3, 1, 1), nn.Tanh(),
        )


@pytest.mark.parametrize("state,layer", [
    (UpsampleGenerator().state_dict(), "main.3.weight is missing"),
    ({**student_netg(32, 100, 8, 3).state_dict(), "main.3.weight": torch.zeros(32, 16, 3, 3)},
     r"main.3.weight has shape \(32, 16, 3, 3\) where a 32x32 DCGAN tutorial netG with nz=100, ngf=8 has "
     r"\(32, 16, 4, 4\)"),
    ({"main.0.weight": torch.zeros(4096, 100), "main.0.bias": torch.zeros(4096)},
     r"main.0.weight has shape \(4096, 100\) where a 64x64 DCGAN tutorial netG has a ConvTranspose2d weight"),
    ({**student_netg(32, 100, 8, 3).state_dict(), "main.9.bias": torch.zeros(3)},
     "main.9.bias is not a parameter of a 32x32 DCGAN tutorial netG"),
    (student_netg(32, 100, 8, 4).state_dict(),
     "main.9.weight makes 4-channel images where a 32x32 DCGAN tutorial netG makes 1"),
], ids=["upsample-conv", "3x3-kernel", "linear-first", "bias", "rgba"])
def test_a_foreign_architecture_names_the_first_layer_that_does_not_fit(tmp_path, state, layer):
    path = tmp_path / "netG.pth"
    torch.save(state, path)
    with pytest.raises(LatentExplorerError, match=layer) as info:
        import_tutorial_dcgan(path, tmp_path / "b")
    assert str(info.value).endswith("none of the DCGAN tutorial generators this app reads "
                                    "(32x32, 64x64 or 128x128 pixels, 1 or 3 channels)")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("legacy", [False, True])
def test_a_truncated_file_gets_one_whole_sentence(tmp_path, legacy):
    buffer = io.BytesIO()
    torch.save(student_netg(32, 16, 8, 3).state_dict(), buffer, _use_new_zipfile_serialization=not legacy)
    data = buffer.getvalue()
    for fraction in (0.02, 0.3, 0.9, 0.999):
        path = tmp_path / "netG.pth"
        path.write_bytes(data[:int(len(data) * fraction)])
        with pytest.raises(LatentExplorerError) as info:
            load_state_dict(path)
        message = str(info.value)
        assert message.startswith("netG.pth: cannot read it as a PyTorch file; it is truncated or damaged (")
        assert message.endswith("was the download or copy complete?)"), message  # torch's own text is not cut in
        assert "Error" not in message and "more bytes" not in message


def test_a_git_lfs_pointer_is_named(tmp_path):
    path = tmp_path / "netG.pth"
    path.write_text("version https://git-lfs.github.com/spec/v1\n"
                    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 14322451\n")
    with pytest.raises(LatentExplorerError) as info:
        import_tutorial_dcgan(path, tmp_path / "b")
    assert str(info.value) == ("netG.pth: this is a Git LFS pointer, not the weights: download the real file with "
                               "`git lfs pull` or the raw download link")


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_a_pickle_dump_is_refused_without_running_it(tmp_path, protocol, monkeypatch):
    path = tmp_path / "netG.pkl"
    path.write_bytes(pickle.dumps(student_netg(32, 16, 8, 1).state_dict(), protocol=protocol))
    monkeypatch.setattr(torch, "load", None)  # refused before torch ever sees it
    with pytest.raises(LatentExplorerError, match="written by pickle.dump, not torch.save") as info:
        load_state_dict(path)
    assert 'torch.save(netG.state_dict(), "netG.pth")' in str(info.value)


def test_a_pkl_file_is_uploaded_on_the_page(tmp_path):
    from streamlit.testing.v1 import AppTest

    from explorer.logic.upload import EXTENSIONS

    assert "pkl" in EXTENSIONS
    net = trained_looking(student_netg(32, 16, 8, 1), seed=11)
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    app = AppTest.from_file(str(pathlib.Path(__file__).resolve().parent.parent / "explorer" / "app.py"),
                            default_timeout=180)
    app.run()
    app.switch_page("views/upload.py").run()
    app.file_uploader(key="upload_file").set_value(("dcgan_mnist.pkl", buffer.getvalue(),
                                                    "application/octet-stream")).run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert "nz = 16, ngf = 8, 1 channels, 32x32 images" in app.success[0].value
    assert app.dataframe[0].value["model"][0] == "imported · dcgan_mnist.pkl"
    lfs = b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n"
    app.file_uploader(key="upload_file").set_value(("netG.pkl", lfs, "application/octet-stream")).run()
    assert any("this is a Git LFS pointer, not the weights" in e.value for e in app.error)
