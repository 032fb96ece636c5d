"""GAN inversion and code typicality on a tiny generator: the search beats random codes, never changes the
networks, reports progress, and is the same for the same seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.errors import LatentExplorerError
from training.latent.inversion import InversionSettings, Inverter, feature_distance, invert
from training.latent.priors import STANDARD_NORMAL, LatentDistribution, sample_latents
from training.latent.typicality import reference_norms, typicality
from training.models.dcgan import DCGANConfig, Generator, weights_init
from training.models.featurenet import FeatureNet, FeatureNetConfig

SETTINGS = InversionSettings(starts=3, candidates=24, steps=40, lr=0.1)


class TinyBundle:
    """What the inversion needs of a bundle: a generator with varied images (random weights, BatchNorm statistics
    recorded on its own activations, so eval mode draws at full contrast), its prior and latent size."""

    def __init__(self):
        torch.manual_seed(0)
        self.latent_dim, self.prior = 16, STANDARD_NORMAL
        self.generator = Generator(DCGANConfig(latent_dim=16, image_size=32, g_width=8))
        self.generator.apply(weights_init)
        for module in self.generator.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.momentum = None  # a plain average over the batches seen
        with torch.no_grad():
            self.generator.train()(torch.randn(256, 16))
        self.generator.eval()

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.generator(codes)


@pytest.fixture(scope="module")
def tiny():
    bundle = TinyBundle()
    torch.manual_seed(0)
    net = FeatureNet(FeatureNetConfig(image_size=32, width=4, heads=[2])).eval()
    target = bundle.decode(sample_latents(STANDARD_NORMAL, 1, bundle.latent_dim, seed=999))
    assert target.std() > 0.1
    return bundle, net, target


def test_the_search_gets_closer_than_the_best_random_code(tiny):
    bundle, net, target = tiny
    result = invert(bundle.generator, target, bundle.prior, bundle.latent_dim, net, SETTINGS)
    assert result.best.feature_distance < result.best_random.feature_distance  # the loss mixes pixels and features
    assert len(result.losses) == SETTINGS.steps and result.losses == sorted(result.losses, reverse=True)
    assert result.best.image.shape == target.shape and result.best.code.shape == (bundle.latent_dim,)
    # The reported numbers are those of the reported image.
    assert result.best.feature_distance == pytest.approx(float(feature_distance(net, result.best.image, target)[0]))
    assert torch.allclose(bundle.decode(result.best.code[None]), result.best.image)


def test_the_networks_are_never_changed_and_get_no_gradients(tiny):
    bundle, net, target = tiny
    before = {k: v.clone() for k, v in bundle.generator.state_dict().items()}
    invert(bundle.generator, target, bundle.prior, bundle.latent_dim, net, InversionSettings(starts=2, candidates=4,
                                                                                              steps=5))
    after = bundle.generator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm statistics too: eval mode throughout
    assert all(p.grad is None for p in [*bundle.generator.parameters(), *net.parameters()])
    assert not bundle.generator.training


def test_progress_in_chunks_and_the_same_answer_for_the_same_seed(tiny):
    bundle, net, target = tiny
    shares = []
    first = invert(bundle.generator, target, bundle.prior, bundle.latent_dim, net, SETTINGS, progress=shares.append,
                   chunk=15)
    assert shares == pytest.approx([15 / 40, 30 / 40, 1.0])
    inverter = Inverter(bundle.generator, target, bundle.prior, bundle.latent_dim, net, SETTINGS)
    while not inverter.finished:
        inverter.run(7)  # a page's chunks: the steps add up to the same search
    second = inverter.result()
    assert torch.equal(first.best.code, second.best.code)
    assert torch.equal(first.best_random.code, second.best_random.code)


def test_without_a_feature_network_pixels_alone_guide_it(tiny):
    bundle, _, target = tiny
    result = invert(bundle.generator, target, bundle.prior, bundle.latent_dim, None, SETTINGS)
    assert result.best.feature_distance is None and result.best.pixel_mse < result.best_random.pixel_mse


def test_zero_steps_return_the_best_random_code(tiny):
    bundle, net, target = tiny
    result = invert(bundle.generator, target, bundle.prior, bundle.latent_dim, net,
                    InversionSettings(starts=1, candidates=8, steps=0))
    assert torch.equal(result.best.code, result.best_random.code) and result.losses == []


@pytest.mark.parametrize("settings,message", [
    (InversionSettings(starts=9, candidates=8), "need 1 to 8 starts"),
    (InversionSettings(lr=0.0), "out of range"),
])
def test_bad_settings_and_shapes_are_refused(tiny, settings, message):
    bundle, net, target = tiny
    with pytest.raises(LatentExplorerError, match=message):
        Inverter(bundle.generator, target, bundle.prior, bundle.latent_dim, net, settings)


def test_a_photo_of_another_size_is_refused(tiny):
    bundle, net, _ = tiny
    with pytest.raises(LatentExplorerError, match=r"makes images of shape \(3, 32, 32\), the photo is \(3, 64, 64\)"):
        Inverter(bundle.generator, torch.zeros(1, 3, 64, 64), bundle.prior, bundle.latent_dim, net, SETTINGS)


# --- how typical a code is ------------------------------------------------------------------------------------

def test_a_prior_code_is_typical_and_a_long_or_short_one_is_not():
    d = 100
    norms = reference_norms(STANDARD_NORMAL, d)
    assert norms.mean() == pytest.approx(np.sqrt(d - 0.5), abs=0.05)  # the chi distribution's mean
    code = sample_latents(STANDARD_NORMAL, 1, d, seed=3)[0]
    typical = typicality(code, STANDARD_NORMAL, norms)
    assert typical.inside and 0.02 < typical.percentile < 0.98
    assert typical.prior_low == pytest.approx(8.6, abs=0.2) and typical.prior_high == pytest.approx(11.4, abs=0.2)
    assert typical.expected_outlying == pytest.approx(0.27, abs=0.01)  # 100 x P(|z| > 3)
    assert "inside the range of 95% of N(0, 1) codes" in typical.sentence("N(0, 1)")
    long = typicality(code * 2, STANDARD_NORMAL, norms)
    assert not long.inside and long.percentile == 1.0 and "longer than" in long.sentence("N(0, 1)")
    assert "off its map" in long.sentence("N(0, 1)") and "off its map" not in long.sentence("N(0, 1)", conclude=False)
    short = typicality(code * 0.3, STANDARD_NORMAL)
    assert short.percentile == 0.0 and "shorter than" in short.sentence("N(0, 1)")
    spike = code.clone()
    spike[:5] = 6.0
    assert typicality(spike, STANDARD_NORMAL, norms).outlying >= 5


def test_typicality_under_a_uniform_prior():
    prior = LatentDistribution.uniform(-1.0, 1.0)
    code = sample_latents(prior, 1, 50, seed=1)[0]
    typical = typicality(code, prior)
    assert typical.inside and typical.expected_outlying == 0.0 and typical.outlying == 0
    assert typical.max_abs_z <= 3 ** 0.5 + 1e-9  # a uniform coordinate lies within sqrt(3) standard deviations
