"""Sharpness (edge strength: the variance of the Laplacian after a light blur), the VAE-vs-GAN pairing, table and
explanation, on made-up numbers."""

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from explorer.logic.compare import ModelScores, comparison_rows, explain_comparison, metric_scores
from explorer.logic.diagnostics import Diagnostics, NormReference
from explorer.logic.sharpness import edge_strength, grey_255, laplacian_variance, mean_sharpness, sharpness_spread
from training.metrics.intervals import Estimate


def test_blurring_lowers_the_laplacian_variance():
    sharp = torch.from_numpy(np.kron(np.indices((8, 8)).sum(0) % 2, np.ones((4, 4)))).float() * 2 - 1
    sharp = sharp.expand(1, 3, 32, 32).clone()  # a checkerboard of 4x4 squares
    blurred = F.avg_pool2d(F.pad(sharp, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    assert blurred.shape == sharp.shape
    assert laplacian_variance(blurred)[0] < 0.5 * laplacian_variance(sharp)[0]
    assert laplacian_variance(torch.zeros(2, 3, 16, 16)).tolist() == [0.0, 0.0]  # a flat image has no edges
    both = torch.cat([sharp, blurred])
    assert edge_strength(blurred)[0] < 0.5 * edge_strength(sharp)[0]  # the page's measure still sees blur
    assert mean_sharpness(both) == pytest.approx(edge_strength(both).mean())


def faces_like(n: int = 16, seed: int = 0) -> torch.Tensor:
    """Smooth images with edges a few pixels wide: random blobs, blurred."""
    torch.manual_seed(seed)
    x = F.interpolate(torch.rand(n, 3, 8, 8) * 2 - 1, size=(32, 32), mode="bilinear", align_corners=False)
    return x.clamp(-1, 1)


def test_a_checkerboard_of_artefacts_does_not_count_as_detail():
    real = faces_like()
    checker = torch.from_numpy(np.indices((32, 32)).sum(0) % 2 * 2 - 1).float()  # period 2: a GAN's upsampling
    artefacts = (real + 0.15 * checker).clamp(-1, 1)
    # The classic detector calls the artefacts detail: many times "sharper" than the clean images.
    assert laplacian_variance(artefacts).mean() > 5 * laplacian_variance(real).mean()
    # Edge strength after the blur does not move (clamping at the ends leaves a trace): not above real images.
    assert mean_sharpness(artefacts) == pytest.approx(mean_sharpness(real), rel=0.05)
    soft = F.avg_pool2d(F.pad(real, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    assert mean_sharpness(soft) < 0.7 * mean_sharpness(real)  # a blurrier batch still ranks below
    assert sharpness_spread(real) > 0 and math.isnan(sharpness_spread(real[:1]))


def test_a_vae_opens_with_the_unconditional_gan_of_its_dataset():
    from explorer.logic.compare import Pairing

    def config(family, dataset="celeba"):
        return {"family": family, "dataset": {"name": dataset}}

    models = Pairing({"CelebA · cGAN": ("/c/celeba/cgan", config("cgan")),
                      "CelebA · DCGAN": ("/c/celeba/dcgan", config("dcgan")),
                      "CelebA · VAE": ("/c/celeba/vae", config("vae")),
                      "noise U(0,1)": ("/c/experiments/noise-and-labels/uniform-0-1", config("dcgan")),
                      "anime DCGAN": ("/c/anime/dcgan", config("dcgan", "anime"))})
    assert models.gans_like("CelebA · VAE") == ["CelebA · DCGAN", "CelebA · cGAN", "noise U(0,1)"]
    only_conditional = Pairing({k: v for k, v in models.known.items() if k != "CelebA · DCGAN"})
    assert only_conditional.gans_like("CelebA · VAE")[0] == "CelebA · cGAN"  # no DCGAN: another GAN of it


def test_grey_scale_and_known_value():
    assert grey_255(torch.ones(1, 3, 2, 2)).flatten().tolist() == pytest.approx([255.0] * 4)
    # One white pixel in the middle of a black 3x3 grey image: the Laplacian there is -4 * 255, a single value.
    x = -torch.ones(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1
    response = np.array([[0, 255, 0], [255, -1020, 255], [0, 255, 0]], dtype=float)
    assert laplacian_variance(x)[0] == pytest.approx(response.var())


def diagnostics(diversity: float, ratio: float = 1.0, verdict_cosine: float = 0.0, prior: str = "N(0, 1)",
                dist: str = "N(0, 1)", saturated: float = 0.0) -> Diagnostics:
    return Diagnostics(distribution=dist, prior=prior, num_samples=32, latent_dim=100, cosine=verdict_cosine,
                       prior_cosine=0.0, norm_mean=10.0, prior_norm=NormReference(10.0, 0.7), norm_zscore=0.0,
                       code_spread_ratio=1.0, diversity=diversity, diversity_ratio=ratio, saturated=saturated,
                       prior_saturated=0.0, first_layer_shift=1.0, prior_first_layer_shift=1.0)


def estimates(realism: float, coverage: float, half_width: float = 0.05) -> dict[str, Estimate]:
    return {"density": Estimate(realism, realism - half_width, realism + half_width),
            "coverage": Estimate(coverage, coverage - half_width, coverage + half_width)}


def test_classic_story_when_the_numbers_say_so():
    vae = ModelScores("vae", "vae", diagnostics(6.0), sharpness=120.0, precision=0.4, recall=0.7,
                      estimates=estimates(0.5, 0.7))
    gan = ModelScores("gan", "dcgan", diagnostics(5.0), sharpness=1800.0, precision=0.8, recall=0.3,
                      estimates=estimates(0.9, 0.3))
    text = explain_comparison(vae, gan, "N(0, 1)", real_sharpness=3000.0)
    assert "15.0x sharper" in text and "1800 vs 120; real images: 3000" in text
    assert "blurry but faithful against sharp but partial" in text
    assert "density 0.50 [0.45, 0.55] for the VAE, 0.90 [0.85, 0.95] for the GAN" in text
    old = ModelScores("gan", "dcgan", diagnostics(5.0), sharpness=1800.0, precision=0.8, recall=0.3)
    text = explain_comparison(vae, old, "N(0, 1)")  # figures stored without intervals rank nothing
    assert "precision 0.4 / recall 0.7 for the VAE, 0.8 / 0.3 for the GAN" in text and "without intervals" in text
    assert "faithful" not in text
    rows = comparison_rows([vae, gan], 3000.0)
    assert rows[0]["sharpness vs real images"] == 0.04
    assert rows[1]["precision"] == 0.8 and rows[1]["verdict"] == "healthy"


def test_explanation_follows_the_numbers_when_they_break_the_story():
    vae = ModelScores("vae", "vae", diagnostics(6.0), sharpness=900.0, precision=0.5, recall=0.3,
                      estimates=estimates(0.5, 0.3))
    gan = ModelScores("gan", "dcgan", diagnostics(2.0, ratio=0.2, verdict_cosine=0.99, dist="N(-10, 1)",
                                                  saturated=0.23), sharpness=100.0, precision=0.7, recall=0.6,
                      estimates=estimates(0.7, 0.6))
    text = explain_comparison(vae, gan, "N(-10, 1)")
    assert "23% of the GAN's pixels are pinned at black or white" in text
    assert "Here the VAE's samples are the sharper ones" in text
    assert "The GAN is ahead on both: no sign that it is partial" in text
    assert "Under z ~ N(-10, 1)" in text and "GAN's is collapsed (20%" in text
    no_metrics = ModelScores("plain", "dcgan", diagnostics(4.0), sharpness=1000.0)
    assert "No precision/recall for plain" in explain_comparison(vae, no_metrics, "N(0, 1)")


def test_metric_scores_reads_evaluate_and_training_layouts():
    evaluated = {"fd_precision_recall": {"model": {"fd": 12.5, "precision": 0.61, "recall": 0.42}},
                 "feature_network": {"name": "toyfaces · feature network"}, "reconstruction": {"mse": 0.03}}
    scores = metric_scores(evaluated)
    assert scores == {"precision": 0.61, "recall": 0.42, "fd": 12.5, "reconstruction_mse": 0.03,
                      "feature_network": "toyfaces · feature network", "estimates": {}}
    evaluated["fd_precision_recall"]["model"].update(coverage=0.5, intervals={"coverage": [0.45, 0.56]})
    assert metric_scores(evaluated)["estimates"] == {"coverage": Estimate(0.5, 0.45, 0.56)}
    trained = metric_scores({"holdout_reconstruction": {"mse": 0.0392, "images": 3000}})
    assert trained["reconstruction_mse"] == 0.0392 and trained["precision"] is None
    assert all(v is None or v == {} for v in metric_scores({}).values())
    assert not math.isnan(comparison_rows([ModelScores("m", "vae", diagnostics(1.0), 5.0)])[0]["output diversity"])
