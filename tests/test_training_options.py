"""Training options (each changes what it should and is recorded), the divergence guard, the CLI's model flags,
and old DCGAN bundles still loading."""

import json
import shutil

import pytest
import torch

from training.__main__ import main
from training.bundle import load_bundle
from training.errors import LatentExplorerError
from training.latent.priors import LatentDistribution
from training.loops import gan
from training.loops.config import TrainConfig
from training.loops.divergence import D_WON_THRESHOLD, DivergenceGuard
from training.loops.gan import discriminator_targets
from training.loops.run import Run
from training.loops.trainer import train
from training.models.cgan import CGANConfig
from training.models.dcgan import DCGANConfig

TINY = dict(latent_dim=8, image_size=32, g_width=8, d_width=8)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def optimizer_steps(monkeypatch):
    """Count Adam steps of the discriminator (first layer reads 3 image channels) and of the generator."""
    counts = {"d": 0, "g": 0}
    original = torch.optim.Adam.step

    def counting_step(self, *args, **kwargs):
        first = self.param_groups[0]["params"][0]
        counts["d" if first.dim() == 4 and first.shape[1] == 3 else "g"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", counting_step)
    return counts


@pytest.mark.parametrize("family,d_every,d_steps,expected_d", [
    ("dcgan", 1, 1, 6), ("dcgan", 2, 1, 3), ("dcgan", 3, 1, 2), ("dcgan", 1, 2, 12), ("cgan", 2, 1, 3),
])
def test_discriminator_update_frequency(tiny_faces, tmp_path, optimizer_steps, family, d_every, d_steps, expected_d):
    config = CGANConfig.for_dataset(tiny_faces.attributes, **TINY) if family == "cgan" else DCGANConfig(**TINY)
    out = train(family, tiny_faces, config,
                TrainConfig(steps=6, batch_size=16, snapshot_steps=(), d_every=d_every, d_steps=d_steps),
                tmp_path / "b", progress=False)
    assert optimizer_steps == {"d": expected_d, "g": 6}
    bundle = load_bundle(out)
    assert bundle.history["step"] == [1, 2, 3, 4, 5, 6]  # D's numbers are logged on the steps it rests too
    assert len(bundle.history["loss_d"]) == 6
    assert (bundle.config["training"]["d_every"], bundle.config["training"]["d_steps"]) == (d_every, d_steps)


def test_smoothing_and_flip_targets():
    rng = torch.Generator().manual_seed(0)
    real, fake = discriminator_targets(6, 0.1, 0.0, rng)
    assert real.tolist() == pytest.approx([0.9] * 6) and fake.tolist() == [0.0] * 6
    state = rng.get_state()
    discriminator_targets(6, 0.0, 0.0, rng)
    assert torch.equal(rng.get_state(), state)  # no flipping draws nothing: other streams stay put
    real, fake = discriminator_targets(20000, 0.2, 0.25, rng)
    assert real.unique().tolist() == pytest.approx([0.0, 0.8]) and fake.unique().tolist() == pytest.approx([0.0, 0.8])
    assert float((real == 0).float().mean()) == pytest.approx(0.25, abs=0.02)  # flipped real -> fake's target
    assert float((fake > 0).float().mean()) == pytest.approx(0.25, abs=0.02)  # flipped fake -> real's target


def test_the_loop_uses_the_label_options(tiny_faces, tmp_path, monkeypatch):
    seen = []

    def spy(batch, smoothing, flip, generator, device="cpu"):
        seen.append((batch, smoothing, flip))
        return torch.full((batch,), 1.0 - smoothing), torch.zeros(batch)

    monkeypatch.setattr(gan, "discriminator_targets", spy)
    out = train("dcgan", tiny_faces, DCGANConfig(**TINY),
                TrainConfig(steps=3, batch_size=16, snapshot_steps=(), label_smoothing=0.1, label_flip=0.05),
                tmp_path / "b", progress=False)
    assert seen == [(16, 0.1, 0.05)] * 3
    training = load_bundle(out).config["training"]
    assert (training["label_smoothing"], training["label_flip"]) == (0.1, 0.05)


def test_training_noise_is_the_bundle_prior(tiny_faces, tmp_path):
    noise = LatentDistribution.uniform(0.0, 1.0)
    config = TrainConfig(steps=1, batch_size=16, snapshot_steps=(), noise=noise.to_json())
    run = Run("dcgan", "DCGAN", tiny_faces, DCGANConfig(**TINY), config, tmp_path / "r", ("loss_g",), progress=False)
    z = run.sample_noise(2000)
    assert z.min() >= 0 and z.max() <= 1 and float(z.mean()) == pytest.approx(0.5, abs=0.02)
    out = train("dcgan", tiny_faces, DCGANConfig(**TINY), config, tmp_path / "b", progress=False)
    assert load_bundle(out).prior == noise


@pytest.mark.parametrize("field,value,message", [
    ("d_every", 0, "--d-every"), ("d_steps", 0, "--d-steps"), ("label_smoothing", 0.5, "--label-smoothing"),
    ("label_flip", -0.1, "--label-flip"), ("class_weight", float("inf"), "--class-weight"),
    ("diverge_patience", 0, "--diverge-patience"), ("holdout_fraction", 0.0, "--holdout-fraction"),
    ("beta1", 1.0, "--beta1"),
])
def test_invalid_options_are_refused(field, value, message):
    with pytest.raises(LatentExplorerError, match=message):
        TrainConfig(**{field: value}).validate()


def test_divergence_guard_counts_consecutive_won_steps(tmp_path):
    guard = DivergenceGuard(tmp_path, patience=3)
    for step in range(1, 10):  # a healthy step in between resets the count
        guard.check(step, {"d_fake": D_WON_THRESHOLD / 2 if step % 3 else 0.3}, saved_step=None)
    with pytest.raises(LatentExplorerError, match="No bundle was written"):
        for step in range(10, 13):
            guard.check(step, {"d_fake": 1e-5}, saved_step=None)
    with pytest.raises(LatentExplorerError, match=f"loss_d became NaN or infinite.*{tmp_path} \\(step 4\\)"):
        DivergenceGuard(tmp_path, 3).check(5, {"loss_g": 1.0, "loss_d": float("inf")}, saved_step=4)


def test_a_discriminator_that_wins_stops_the_run(tiny_faces, tmp_path):
    # An absurd discriminator learning rate against a frozen generator: D wins within a few steps.
    out = tmp_path / "b"
    with pytest.raises(LatentExplorerError) as info:
        train("dcgan", tiny_faces, DCGANConfig(**TINY),
              TrainConfig(steps=60, batch_size=16, lr_d=0.5, lr_g=1e-6, diverge_patience=5, checkpoint_every=4,
                          snapshot_steps=()), out, progress=False)
    message = str(info.value)
    assert "the discriminator has won completely" in message and "for 5 consecutive steps" in message
    last_good = int(message.split("(step ")[1].split(")")[0])
    assert f"The last good bundle is {out} (step {last_good})" in message
    bundle = load_bundle(out)  # and it really is good
    assert bundle.config["step"] == last_good and bundle.history["step"][-1] == last_good


def test_a_nan_stops_the_run_and_names_the_last_good_bundle(tiny_faces, tmp_path, monkeypatch):
    original = Run.sample_noise
    calls = []

    def poisoned(self, n):
        calls.append(n)
        z = original(self, n)
        return z * float("nan") if len(calls) >= 4 else z  # the 4th step's noise is NaN

    monkeypatch.setattr(Run, "sample_noise", poisoned)
    out = tmp_path / "b"
    with pytest.raises(LatentExplorerError, match=f"training diverged at step 4: .*NaN or infinite.*"
                                                  f"The last good bundle is {out} \\(step 2\\)"):
        train("cgan", tiny_faces, CGANConfig.for_dataset(tiny_faces.attributes, **TINY),
              TrainConfig(steps=8, batch_size=16, checkpoint_every=2, snapshot_steps=()), out, progress=False)
    assert load_bundle(out).config["step"] == 2


def _train_cli(tmp_path, model, *flags):
    out = tmp_path / model
    code = main(["train", "--model", model, "--data", "toyfaces", "--num-images", "40", "--image-size", "32",
                 "--steps", "2", "--batch-size", "8", "--g-width", "8", "--d-width", "8", "--latent-dim", "12",
                 "--snapshot-steps", "0", "--out", str(out), *flags])
    assert code == 0
    return json.loads((out / "config.json").read_text()), out


def test_cli_gan_options_reach_the_bundle(tmp_path):
    config, out = _train_cli(tmp_path, "cgan", "--d-every", "2", "--d-steps", "3", "--label-smoothing", "0.1",
                             "--label-flip", "0.05", "--class-weight", "2", "--diverge-patience", "50",
                             "--lr-g", "1e-4", "--lr-d", "5e-5", "--beta1", "0.4", "--beta2", "0.99",
                             "--noise", "U(0,1)", "--g-activation", "leaky_relu", "--conditions", "smiling,glasses",
                             "--seed", "7")
    training = config["training"]
    assert {k: training[k] for k in ("d_every", "d_steps", "label_smoothing", "label_flip", "class_weight",
                                     "diverge_patience", "lr_g", "lr_d", "beta1", "beta2", "seed", "batch_size")} == {
        "d_every": 2, "d_steps": 3, "label_smoothing": 0.1, "label_flip": 0.05, "class_weight": 2.0,
        "diverge_patience": 50, "lr_g": 1e-4, "lr_d": 5e-5, "beta1": 0.4, "beta2": 0.99, "seed": 7, "batch_size": 8}
    assert config["family"] == "cgan" and config["prior"] == {"kind": "uniform", "low": 0.0, "high": 1.0}
    model = config["model"]
    assert (model["latent_dim"], model["image_size"], model["g_activation"]) == (12, 32, "leaky_relu")
    assert [c["name"] for c in model["conditions"]] == ["smiling", "glasses"]
    assert isinstance(load_bundle(out).generator.main[2], torch.nn.LeakyReLU)


def test_cli_vae_and_infogan_options_reach_the_bundle(tmp_path):
    config, out = _train_cli(tmp_path, "vae", "--kl-weight", "1e-5", "--recon-loss", "bce",
                             "--holdout-fraction", "0.2")
    assert (config["model"]["kl_weight"], config["model"]["recon_loss"]) == (1e-5, "bce")
    assert config["holdout"]["num_held_out"] == 8 and (out / "latents.npz").exists()
    config, out = _train_cli(tmp_path, "infogan", "--info-categorical", "5,3", "--info-continuous", "1",
                             "--info-weight", "0.5")
    assert (config["model"]["categorical_codes"], config["model"]["continuous_codes"]) == ([5, 3], 1)
    assert config["training"]["info_weight"] == 0.5 and [c["kind"] for c in config["codes"]] == [
        "categorical", "categorical", "continuous"]


@pytest.mark.parametrize("flags,message", [
    (["--model", "dcgan", "--conditions", "smiling"], "--conditions is for --model cgan"),
    (["--model", "cgan", "--conditions", "hat"], "no attribute 'hat'"),
    (["--model", "vae", "--noise", "U(0,1)"], "N\\(0,1\\) by construction"),
    (["--label-flip", "0.7"], "--label-flip"),
    (["--d-every", "0"], "--d-every"),
    (["--model", "infogan", "--info-categorical", "", "--info-continuous", "0"], "at least one"),
    (["--model", "vae", "--kl-weight", "-1"], "kl_weight"),
])
def test_cli_refuses_bad_model_and_optimisation_flags(tmp_path, capsys, flags, message):
    code = main(["train", "--num-images", "40", "--image-size", "32", "--steps", "1", "--batch-size", "8",
                 "--g-width", "8", "--d-width", "8", *flags, "--out", str(tmp_path / "x")])
    assert code == 2
    assert message.replace("\\", "") in capsys.readouterr().err


def test_foundation_dcgan_bundles_still_load(tiny_bundle, tmp_path):
    # A FORMAT_VERSION 1 bundle written before this change has none of the new training fields.
    old = tmp_path / "old"
    shutil.copytree(tiny_bundle, old)
    config = json.loads((old / "config.json").read_text())
    foundation = {"steps", "batch_size", "lr_g", "lr_d", "beta1", "beta2", "seed", "noise", "snapshot_steps",
                  "checkpoint_every", "device", "seconds", "device_used"}
    config["training"] = {k: v for k, v in config["training"].items() if k in foundation}
    (old / "config.json").write_text(json.dumps(config))
    bundle = load_bundle(old)
    assert bundle.family == "dcgan" and bundle.generator(torch.randn(2, 16)).shape == (2, 3, 32, 32)
    assert bundle.encoder is None and bundle.conditions == () and bundle.codes == []
