import pytest
import torch

from training.errors import LatentExplorerError
from training.models.dcgan import DCGANConfig, Discriminator, Generator, weights_init


@pytest.mark.parametrize("size", [32, 64, 128])
def test_shapes_at_each_image_size(size):
    config = DCGANConfig(latent_dim=10, image_size=size, g_width=4, d_width=4)
    g, d = Generator(config), Discriminator(config)
    x = g(torch.randn(3, 10))
    assert x.shape == (3, 3, size, size)
    assert x.abs().max() <= 1
    assert d(x).shape == (3,)


def test_tutorial_parameter_names_and_sizes_at_64():
    # The PyTorch tutorial's netG: importing students' netG.pth depends on these exact names and shapes.
    g = Generator(DCGANConfig())
    state = g.state_dict()
    assert state["main.0.weight"].shape == (100, 512, 4, 4)
    assert state["main.3.weight"].shape == (512, 256, 4, 4)
    assert state["main.12.weight"].shape == (64, 3, 4, 4)
    assert "main.1.running_mean" in state and "main.13.weight" not in state
    assert sum(p.numel() for p in g.parameters()) == 3576704


def test_weights_init_matches_tutorial():
    torch.manual_seed(0)
    g = Generator(DCGANConfig(g_width=16))
    g.apply(weights_init)
    w = g.main[3].weight
    assert abs(w.mean().item()) < 0.002 and abs(w.std().item() - 0.02) < 0.002
    assert abs(g.main[1].weight.mean().item() - 1.0) < 0.01


def test_grayscale_and_leaky_generator():
    config = DCGANConfig(latent_dim=8, image_size=32, channels=1, g_width=4, d_width=4, g_activation="leaky_relu")
    g = Generator(config)
    assert isinstance(g.main[2], torch.nn.LeakyReLU)
    assert g(torch.randn(2, 8)).shape == (2, 1, 32, 32)


@pytest.mark.parametrize("field,value", [("image_size", 48), ("latent_dim", 10**9), ("g_width", 0),
                                         ("channels", 2), ("g_activation", "gelu")])
def test_invalid_configs_are_refused_before_allocating(field, value):
    with pytest.raises(LatentExplorerError, match=field):
        Generator(DCGANConfig(**{field: value}))
