"""The VAE: shapes, the loss it trains on, the held-out split, latents.npz and its bundle."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from explorer.logic.diagnostics import first_layer_shift
from training.bundle import load_bundle
from training.errors import LatentExplorerError
from training.latent.priors import LatentDistribution
from training.loops.config import TrainConfig
from training.loops.trainer import train
from training.loops.vae import holdout_split
from training.models import dcgan, vae

TINY = dict(latent_dim=8, image_size=32, g_width=8, d_width=8)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def vae_bundle(tiny_faces, tmp_path_factory):
    # lr 1e-3 and betas 0.9: a VAE is not a GAN, and 30 steps must show the loss falling.
    out = tmp_path_factory.mktemp("vae") / "bundle"
    return train("vae", tiny_faces, vae.VAEConfig(**TINY, kl_weight=1e-3),
                 TrainConfig(steps=30, batch_size=16, lr_g=1e-3, lr_d=1e-3, beta1=0.9, snapshot_steps=(0, 10),
                             checkpoint_every=10, holdout_fraction=0.25),
                 out, source={"name": "toyfaces", "num_images": 48, "seed": 3}, progress=False)


@pytest.mark.parametrize("size", [32, 64])
def test_shapes_and_the_decoder_is_the_dcgan_generator(size):
    config = vae.VAEConfig(latent_dim=6, image_size=size, g_width=4, d_width=4)
    nets = vae.build_networks(config)
    mu, logvar = nets["encoder"](torch.rand(3, 3, size, size) * 2 - 1)
    assert mu.shape == logvar.shape == (3, 6)
    assert isinstance(nets["decoder"], dcgan.Generator)
    x = nets["decoder"](mu)
    assert x.shape == (3, 3, size, size) and x.abs().max() <= 1
    first_channels = 4 * 2 ** (config.dcgan_config().upsamplings - 1)
    assert nets["decoder"].first_layer_preactivation(mu).shape[:2] == (3, first_channels)
    # The encoder reads images with exactly the DCGAN discriminator's body.
    body = dcgan.Discriminator(config.dcgan_config()).main.state_dict()
    assert {k: v.shape for k, v in nets["encoder"].main.state_dict().items()} == {k: v.shape for k, v in body.items()}


def test_losses():
    x = torch.rand(4, 3, 8, 8) * 2 - 1
    assert vae.reconstruction_loss(x, x, "mse") == 0
    assert vae.reconstruction_loss(-x, x, "mse") > vae.reconstruction_loss(x * 0.9, x, "mse")
    assert torch.isfinite(vae.reconstruction_loss(torch.ones_like(x), -torch.ones_like(x), "bce"))
    mu, logvar = torch.zeros(5, 3), torch.zeros(5, 3)
    assert vae.kl_divergence(mu, logvar) == 0  # the posterior is the prior
    assert vae.kl_divergence(mu + 1, logvar) == pytest.approx(1.5)  # 0.5 * sum(mu^2) over 3 dims


def test_invalid_configs():
    with pytest.raises(LatentExplorerError, match="recon_loss"):
        vae.Encoder(vae.VAEConfig(recon_loss="l1"))
    with pytest.raises(LatentExplorerError, match="kl_weight"):
        vae.VAEConfig(kl_weight=-1.0).validate()


def test_loss_falls_and_history_records_recon_and_kl(vae_bundle):
    bundle = load_bundle(vae_bundle)
    h = bundle.history
    assert set(h) == {"step", "loss", "recon", "kl"} and h["step"] == list(range(1, 31))
    assert np.mean(h["loss"][-5:]) < 0.8 * np.mean(h["loss"][:5])
    for loss, recon, kl in zip(h["loss"], h["recon"], h["kl"]):
        assert loss == pytest.approx(recon + 1e-3 * kl, abs=2e-5)  # loss = recon + kl_weight * KL


def test_holdout_split_is_seeded_disjoint_and_recorded(vae_bundle):
    train_pos, held = holdout_split(48, 0.25, seed=0)
    assert len(held) == 12 and len(train_pos) == 36
    assert not set(train_pos) & set(held) and set(train_pos) | set(held) == set(range(48))
    assert np.array_equal(holdout_split(48, 0.25, seed=0)[1], held)
    assert not np.array_equal(holdout_split(48, 0.25, seed=1)[1], held)
    config = load_bundle(vae_bundle).config
    assert config["holdout"]["num_held_out"] == 12 and config["holdout"]["seed"] == 0
    assert config["training"]["holdout_fraction"] == 0.25


def test_latents_npz_and_test_mse(vae_bundle, tiny_faces):
    bundle = load_bundle(vae_bundle)
    with np.load(vae_bundle / "latents.npz", allow_pickle=False) as data:  # no object arrays
        assert set(data.files) == {"codes", "labels", "attribute_names", "indices", "images"}
    latents = bundle.latents()
    _, held = holdout_split(48, 0.25, seed=0)
    assert latents["codes"].dtype == np.float32 and latents["codes"].shape == (12, 8)
    assert latents["labels"].dtype == np.int64 and np.array_equal(latents["labels"], tiny_faces.labels[held])
    assert list(latents["attribute_names"]) == tiny_faces.attribute_names()
    assert latents["attribute_names"].dtype.kind == "U"
    assert np.array_equal(latents["indices"], held)
    assert np.array_equal(latents["images"], tiny_faces.images[held])
    x, _ = tiny_faces.batch(held)
    with torch.no_grad():
        mu, _ = bundle.encoder(x)
        mse = float((bundle.generator(mu) - x).pow(2).mean())
    assert np.allclose(latents["codes"], mu.numpy(), atol=1e-5)
    recon = bundle.metrics["holdout_reconstruction"]
    assert recon["mse"] == pytest.approx(mse, abs=1e-5) and recon["mse_01"] == pytest.approx(mse / 4, abs=1e-5)
    assert recon["images"] == 12


def test_bundle_round_trip_is_bit_identical(vae_bundle):
    bundle = load_bundle(vae_bundle)
    assert bundle.family == "vae" and set(bundle.networks) == {"encoder", "decoder"}
    assert bundle.generator is bundle.networks["decoder"] and bundle.encoder is bundle.networks["encoder"]
    assert bundle.prior.label == "N(0, 1)" and bundle.config["model"]["kl_weight"] == 1e-3
    saved = load_file(str(vae_bundle / "weights.safetensors"))
    for net_name, net in load_bundle(vae_bundle, with_training_networks=True).networks.items():
        for key, tensor in net.state_dict().items():
            assert torch.equal(tensor, saved[f"{net_name}.{key}"]), key
    assert list(bundle.snapshot_paths()) == [0, 10, 30]
    # The explorer's collapse diagnostics work on the decoder as on a GAN generator.
    z = torch.randn(16, 8)
    assert bundle.generator(z).shape == (16, 3, 32, 32)
    assert first_layer_shift(bundle.generator, z - 10) > first_layer_shift(bundle.generator, z)


def test_a_vae_prior_is_standard_normal(tiny_faces, tmp_path):
    with pytest.raises(LatentExplorerError, match="N\\(0,1\\) by construction"):
        train("vae", tiny_faces, vae.VAEConfig(**TINY),
              TrainConfig(steps=1, batch_size=16, noise=LatentDistribution.uniform(0, 1).to_json()),
              tmp_path / "x", progress=False)
