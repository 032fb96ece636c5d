"""--precision bf16 and --channels-last: the convolutions really run in bf16 on NHWC tensors, the losses stay
float32, bundles hold plain contiguous float32 weights that load as before (also in the explorer), the config
records both options, a resume may switch them, older configs without them load, and torchrun still trains."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from streamlit.testing.v1 import AppTest
from torch import nn
from torch.nn import functional as F

from training.__main__ import main
from training.bundle import CONFIG_FILE, WEIGHTS_FILE, load_bundle
from training.errors import LatentExplorerError
from training.loops import speed
from training.loops.config import TrainConfig
from training.loops.trainer import train
from training.models.cgan import CGANConfig
from training.models.dcgan import DCGANConfig
from training.models.vae import VAEConfig
from training.recipes.rebuild import recipe

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "explorer" / "app.py")
TINY = dict(latent_dim=8, image_size=32, g_width=8, d_width=8)
FAST = dict(precision="bf16", channels_last=True)


def _model(family, dataset):
    if family == "cgan":
        return CGANConfig.for_dataset(dataset.attributes, **TINY)
    return VAEConfig(**TINY) if family == "vae" else DCGANConfig(**TINY)


def _options(**changes):
    return TrainConfig(**{"steps": 3, "batch_size": 16, "snapshot_steps": (0,), **changes})


@pytest.fixture
def seen(monkeypatch):
    """What D's (the encoder's) convolutions computed in and with which weight layout, and what the losses got.
    (G's transposed convolutions also draw the fp32 snapshots, so they are not watched.)"""
    record = {"conv_out": set(), "conv_weight_nhwc": set(), "loss_in": set()}
    conv_forward = nn.Conv2d.forward

    def conv(self, x):
        out = conv_forward(self, x)
        record["conv_out"].add(out.dtype)
        w = self.weight
        record["conv_weight_nhwc"].add(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous())
        return out

    monkeypatch.setattr(nn.Conv2d, "forward", conv)
    for name in ("binary_cross_entropy_with_logits", "mse_loss"):
        loss = getattr(F, name)

        def spy(a, b, *args, _loss=loss, **kwargs):
            record["loss_in"].update({a.dtype, b.dtype})
            return _loss(a, b, *args, **kwargs)

        monkeypatch.setattr(F, name, spy)
    return record


def assert_plain_float32_weights(out: Path):
    for key, tensor in load_file(str(out / WEIGHTS_FILE)).items():
        assert tensor.is_contiguous(), key
        assert tensor.dtype == (torch.int64 if key.endswith("num_batches_tracked") else torch.float32), key


@pytest.mark.parametrize("family", ["dcgan", "cgan", "vae"])
def test_a_fast_run_uses_bf16_and_nhwc_and_saves_plain_float32(tiny_faces, tmp_path, seen, family):
    out = train(family, tiny_faces, _model(family, tiny_faces), _options(**FAST), tmp_path / family, progress=False)
    # Every convolution of the training steps ran in bf16 (the VAE's held-out evaluation afterwards is fp32) ...
    assert seen["conv_out"] == ({torch.bfloat16, torch.float32} if family == "vae" else {torch.bfloat16})
    assert seen["conv_weight_nhwc"] == {True}  # ... with channels_last weights
    assert seen["loss_in"] == {torch.float32}  # and the losses were computed in float32
    bundle = load_bundle(out, with_training_networks=True)
    assert all(torch.isfinite(torch.tensor(v)).all() for k, v in bundle.history.items() if k != "step")
    assert {k: bundle.config["training"][k] for k in FAST} == FAST
    assert_plain_float32_weights(out)
    for net in bundle.networks.values():  # loaded as any other bundle: contiguous fp32 networks
        assert all(p.dtype == torch.float32 and p.is_contiguous() for p in net.parameters())
    with torch.no_grad():
        images = bundle.generator(torch.randn(2, TINY["latent_dim"]))
    assert images.dtype == torch.float32 and torch.isfinite(images).all()
    assert recipe(bundle.config)[2].precision == "bf16"  # rebuilding retrains with the same options


def test_the_default_run_is_fp32(tiny_faces, tmp_path, seen):
    out = train("dcgan", tiny_faces, _model("dcgan", tiny_faces), _options(), tmp_path / "b", progress=False)
    assert seen["conv_out"] == seen["loss_in"] == {torch.float32} and seen["conv_weight_nhwc"] == {False}
    assert {k: load_bundle(out).config["training"][k] for k in FAST} == {"precision": "fp32", "channels_last": False}


def test_the_explorer_shows_a_bundle_trained_fast(tiny_faces, tmp_path):
    out = train("dcgan", tiny_faces, _model("dcgan", tiny_faces), _options(**FAST), tmp_path / "fast", progress=False)
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["session_bundles"] = {"tiny fast dcgan": str(out)}
    at.run()
    at.sidebar.selectbox(key="bundle_select").set_value("tiny fast dcgan").run()
    assert not at.exception, at.exception
    assert not at.error
    assert at.get("image")


def test_cli_flags_and_a_resume_that_switches_them(tmp_path, capsys):
    flags = ["train", "--num-images", "40", "--image-size", "32", "--batch-size", "8", "--g-width", "8",
             "--d-width", "8", "--latent-dim", "8", "--snapshot-steps", "0", "--out", str(tmp_path / "b"),
             "--keep-training-state"]
    assert main([*flags, "--steps", "2"]) == 0
    assert main([*flags, "--steps", "4", "--resume", "--precision", "bf16", "--channels-last"]) == 0
    config = load_bundle(tmp_path / "b").config
    assert config["resumed_at_steps"] == [2] and {k: config["training"][k] for k in FAST} == FAST
    assert main([*flags, "--steps", "5", "--resume"]) == 0  # and back to the defaults
    bundle = load_bundle(tmp_path / "b")
    assert bundle.history["step"] == [1, 2, 3, 4, 5] and bundle.config["training"]["precision"] == "fp32"
    assert_plain_float32_weights(tmp_path / "b")
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([*flags, "--steps", "2", "--precision", "fp16"])
    assert "invalid choice: 'fp16'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--precision {fp32,bf16} bf16: forward passes under bf16 autocast, about 1.8x faster" in text
    assert "--channels-last networks and batches in channels_last (NHWC) memory order" in text


def test_config_validation_and_old_configs(tiny_bundle):
    with pytest.raises(LatentExplorerError, match="--precision must be one of fp32, bf16"):
        TrainConfig(precision="fp16").validate()
    with pytest.raises(LatentExplorerError, match="channels_last must be true or false"):
        TrainConfig(channels_last="yes").validate()
    config = json.loads((tiny_bundle / CONFIG_FILE).read_text())
    for key in FAST:  # a bundle written before the options existed
        config["training"].pop(key, None)
    options = recipe(config)[2]
    assert (options.precision, options.channels_last) == ("fp32", False)


def test_bf16_is_refused_on_a_gpu_without_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    with pytest.raises(LatentExplorerError, match="Tesla T4 .* has no bf16 arithmetic.*--precision fp32"):
        speed.check_precision("bf16", torch.device("cuda", 0))
    speed.check_precision("fp32", torch.device("cuda", 0))
    speed.check_precision("bf16", torch.device("cpu"))


def test_a_resumed_optimizer_takes_its_parameters_layout():
    weight = nn.Parameter(torch.randn(4, 3, 2, 2).to(memory_format=torch.channels_last))
    optimizer = torch.optim.Adam([weight])
    optimizer.state[weight] = {"step": torch.tensor(1.0), "exp_avg": torch.randn(4, 3, 2, 2)}
    before = optimizer.state[weight]["exp_avg"].clone()
    speed.match_parameter_layout(optimizer)
    moved = optimizer.state[weight]["exp_avg"]
    assert moved.stride() == weight.stride() and torch.equal(moved, before)


@pytest.mark.slow
def test_two_cpu_processes_train_fast(tmp_path):
    from explorer.tools.app_server import free_port

    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               "--master_addr=127.0.0.1", f"--master_port={free_port()}", "-m", "training", "train",
               "--model", "dcgan", "--num-images", "40", "--image-size", "32", "--steps", "3", "--batch-size", "8",
               "--g-width", "8", "--d-width", "8", "--latent-dim", "8", "--snapshot-steps", "0", "--threads", "1",
               "--device", "cpu", "--precision", "bf16", "--channels-last", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    # A hang guard, not a time limit: on a busy machine the two tiny processes can take minutes.
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    bundle = load_bundle(out)
    assert bundle.config["distributed"]["world_size"] == 2 and bundle.history["step"] == [1, 2, 3]
    assert {k: bundle.config["training"][k] for k in FAST} == FAST
    assert_plain_float32_weights(out)
