"""InfoGAN: the code layout the explorer reads, the generator's default codes, Q learning the codes, the bundle."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from training.bundle import load_bundle
from training.errors import LatentExplorerError
from training.loops.config import TrainConfig
from training.loops.trainer import train
from training.models import infogan

TINY = dict(latent_dim=8, image_size=32, g_width=8, d_width=8)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def info_bundle(tiny_faces, tmp_path_factory):
    out = tmp_path_factory.mktemp("infogan") / "bundle"
    config = infogan.InfoGANConfig(**TINY, categorical_codes=[4], continuous_codes=1, q_width=16)
    return train("infogan", tiny_faces, config,
                 TrainConfig(steps=40, batch_size=16, lr_g=2e-3, lr_d=2e-3, snapshot_steps=(0,), checkpoint_every=10),
                 out, source={"name": "toyfaces", "num_images": 48, "seed": 3}, progress=False)


def test_code_layout_names_every_generator_input_slot():
    config = infogan.InfoGANConfig(**TINY, categorical_codes=[10, 3], continuous_codes=2)
    layout = config.code_layout()
    assert [(c["kind"], c["start"], c["stop"]) for c in layout] == [
        ("categorical", 8, 18), ("categorical", 18, 21), ("continuous", 21, 22), ("continuous", 22, 23)]
    assert layout[0]["values"] == 10 and (layout[2]["low"], layout[2]["high"]) == (-1.0, 1.0)
    g = infogan.InfoGenerator(config)
    assert g.main[0].weight.shape[0] == 8 + 15 == config.latent_dim + config.code_dim


def test_generator_default_codes_and_code_effect():
    torch.manual_seed(0)
    config = infogan.InfoGANConfig(**TINY, categorical_codes=[3], continuous_codes=1)
    g = infogan.InfoGenerator(config).eval()
    default = g.default_codes(5)
    assert default.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]]
    z = torch.randn(5, 8)
    x = g(z)
    assert x.shape == (5, 3, 32, 32) and torch.equal(g(z, default), x)
    moved = g.make_codes(torch.tensor([[0], [1], [2], [0], [1]]), torch.full((5, 1), 0.9))
    assert not torch.allclose(g(z, moved), x)
    assert g.first_layer_preactivation(z).shape[0] == 5 and isinstance(g.first_batchnorm, torch.nn.BatchNorm2d)
    with pytest.raises(LatentExplorerError, match="codes must have shape"):
        g(z, torch.zeros(5, 3))
    with pytest.raises(LatentExplorerError, match="1 continuous"):
        g.make_codes(torch.zeros(5, 1, dtype=torch.int64), torch.zeros(5, 2))


def test_sampled_codes_and_info_loss():
    config = infogan.InfoGANConfig(**TINY, categorical_codes=[4], continuous_codes=2)
    categories, continuous = infogan.sample_codes(4000, config, torch.Generator().manual_seed(0))
    assert np.allclose(categories[:, 0].bincount().numpy() / 4000, 0.25, atol=0.03)
    assert continuous.min() >= -1 and continuous.max() <= 1 and abs(float(continuous.mean())) < 0.05
    perfect = torch.cat([torch.nn.functional.one_hot(categories[:, 0], 4) * 20.0, continuous], 1)
    loss, accuracy = infogan.info_loss(perfect, categories, continuous, config)
    assert accuracy == 1.0 and float(loss) < 1e-3
    loss, accuracy = infogan.info_loss(torch.zeros_like(perfect), categories, continuous, config)
    assert float(loss) == pytest.approx(np.log(4) + 0.5 * 2 / 3, abs=0.05)  # chance CE + 0.5 E[c^2] per code


@pytest.mark.parametrize("kwargs,message", [
    (dict(categorical_codes=[], continuous_codes=0), "at least one"),
    (dict(categorical_codes=[1]), "2 to 1024"),
    (dict(continuous_codes=-1), "continuous_codes"),
])
def test_invalid_configs(kwargs, message):
    with pytest.raises(LatentExplorerError, match=message):
        infogan.InfoGANConfig(**TINY, **kwargs).validate()


def test_q_learns_the_codes_without_labels(info_bundle):
    h = load_bundle(info_bundle).history
    assert set(h) == {"step", "loss_g", "loss_d", "d_real", "d_fake", "loss_info", "info_acc"}
    # Chance for one 4-way code and one U(-1,1) code: log 4 + 0.5 * 1/3 = 1.55, accuracy 0.25.
    assert np.mean(h["loss_info"][-5:]) < np.mean(h["loss_info"][:5]) - 0.15
    assert np.mean(h["info_acc"][:5]) < 0.45 and np.mean(h["info_acc"][-5:]) > 0.6


def test_bundle_round_trip_and_layout(info_bundle):
    bundle = load_bundle(info_bundle)
    assert bundle.family == "infogan" and set(bundle.networks) == {"generator"}
    assert bundle.codes == bundle.config["codes"]
    assert [c["name"] for c in bundle.codes] == ["category_1", "continuous_1"]
    assert bundle.generator(torch.randn(6, 8)).shape == (6, 3, 32, 32)
    full = load_bundle(info_bundle, with_training_networks=True)
    assert isinstance(full.networks["discriminator"], infogan.InfoDiscriminator)
    saved = load_file(str(info_bundle / "weights.safetensors"))
    for net_name, net in full.networks.items():
        for key, tensor in net.state_dict().items():
            assert torch.equal(tensor, saved[f"{net_name}.{key}"]), key


def test_continuous_only_infogan_trains(tiny_faces, tmp_path):
    config = infogan.InfoGANConfig(**TINY, categorical_codes=[], continuous_codes=2, q_width=8)
    out = train("infogan", tiny_faces, config, TrainConfig(steps=2, batch_size=16, snapshot_steps=()),
                tmp_path / "b", progress=False)
    assert "info_acc" not in load_bundle(out).history
