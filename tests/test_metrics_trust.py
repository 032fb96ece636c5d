"""Figures a teacher can trust: KID unbiased, intervals that cover, the same figure at any sample size, collapse
caught by the lead scores, degradations, the nearest-image search, evaluate writing only when asked, and
sentences that follow the intervals."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from training.errors import LatentExplorerError
from training.metrics import degrade, intervals, scoring
from training.metrics.intervals import Estimate, compare, scores_at_set_size
from training.metrics.kid import kernel_distance, mmd2_unbiased
from training.metrics.manifold import SCORES, manifold_scores
from training.metrics.nearest import nearest, nearest_real, pixel_vectors

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def gaussian(n: int, seed: int, shift: float = 0.0, dim: int = 8) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(shift, 1.0, size=(n, dim))).float()


# ---------------------------------------------------------------------------------------------- KID


def test_kid_is_unbiased_on_identical_distributions():
    # Small sets, where a biased (V-statistic) MMD would sit clearly above 0: the mean over independent pairs
    # of sets is 0 within its standard error, and a shifted distribution is far above that.
    values = np.array([mmd2_unbiased(gaussian(20, 2 * s).double(), gaussian(20, 2 * s + 1).double())
                       for s in range(300)])
    assert abs(values.mean()) < 3 * values.std() / np.sqrt(len(values))
    biased = np.mean([float(((x @ x.T / 8 + 1) ** 3).mean() + ((y @ y.T / 8 + 1) ** 3).mean()
                            - 2 * ((x @ y.T / 8 + 1) ** 3).mean())
                      for x, y in ((gaussian(20, 2 * s).double(), gaussian(20, 2 * s + 1).double())
                                   for s in range(50))])
    assert biased > 5 * values.std() / np.sqrt(len(values))  # what the diagonal terms would have added
    same = kernel_distance(gaussian(400, 1), gaussian(400, 2), subsets=20, subset_size=200)
    shifted = kernel_distance(gaussian(400, 1), gaussian(400, 2, shift=0.5), subsets=20, subset_size=200)
    assert abs(same.value) < 3 * same.std and shifted.value > 5 * shifted.std > 0
    assert (same.subsets, same.subset_size) == (20, 200)
    with pytest.raises(LatentExplorerError, match="feature sizes differ"):
        kernel_distance(gaussian(10, 0), gaussian(10, 0, dim=4))


# ---------------------------------------------------------------------------------------------- intervals


def test_scores_of_identical_and_disjoint_sets():
    x = gaussian(200, 0)
    same = manifold_scores(x, x, k=3)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    assert same["density"] >= 1.0  # every point sits in its own ball and in k others' at least
    apart = manifold_scores(x, x + 100, k=3)
    assert apart == {name: 0.0 for name in SCORES}


def test_intervals_cover_the_expected_value_at_the_set_size():
    m, k = 40, 3
    # The expected value of each score for sets of m real and m generated points, from many fresh pairs.
    truth = {name: np.mean([manifold_scores(gaussian(m, 10_000 + s), gaussian(m, 20_000 + s, shift=0.3), k)[name]
                            for s in range(400)]) for name in SCORES}
    hits = dict.fromkeys(SCORES, 0)
    trials = 40
    for t in range(trials):
        result = scores_at_set_size(gaussian(4 * m, t), gaussian(4 * m, 500 + t, shift=0.3), k, m, repeats=10, seed=t)
        assert (result.set_size, result.sets, result.generated, result.real) == (m, 4, 4 * m, 4 * m)
        for name, e in result.scores.items():
            assert e.low <= e.value <= e.high
            hits[name] += e.low <= truth[name] <= e.high
    assert all(h >= 0.8 * trials for h in hits.values()), hits


def test_more_samples_narrow_the_interval_without_moving_the_figure():
    m, k = 40, 3
    few, many = [], []
    for t in range(12):
        real = gaussian(8 * m, t)
        fake = gaussian(8 * m, 100 + t, shift=0.3)
        few.append(scores_at_set_size(real[:2 * m], fake[:2 * m], k, m, repeats=10, seed=t).scores)
        many.append(scores_at_set_size(real, fake, k, m, repeats=10, seed=t).scores)
    for name in SCORES:
        mean_few, mean_many = np.mean([s[name].value for s in few]), np.mean([s[name].value for s in many])
        width_few = np.mean([s[name].high - s[name].low for s in few])
        width_many = np.mean([s[name].high - s[name].low for s in many])
        assert abs(mean_few - mean_many) < 0.25 * width_few, name
        assert width_many < 0.75 * width_few, name


def test_set_size_needs_two_sets():
    assert intervals.usable_set_size(250, 2000, 1000) == 250
    assert intervals.usable_set_size(250, 300, 300) == 150
    with pytest.raises(LatentExplorerError, match="two sets"):
        scores_at_set_size(gaussian(50, 0), gaussian(50, 1), 3, 30)
    with pytest.raises(LatentExplorerError, match="--samples must be more than 7"):
        scoring.set_size_for(7, 100, 3)


def test_estimates_compare_only_beyond_their_intervals():
    a, b = Estimate(0.6, 0.55, 0.65), Estimate(0.5, 0.45, 0.56)
    assert compare(a, b) == 0 and compare(b, a) == 0  # overlap: cannot tell apart
    c = Estimate(0.5, 0.45, 0.54)
    assert compare(a, c) == 1 and compare(c, a) == -1
    assert Estimate.from_json(a.to_json()) == a
    assert Estimate.from_json({"value": 0.5}) is None and Estimate.from_json(None) is None
    row = {"precision": 0.5, "intervals": {"precision": [0.4, 0.6]}, "recall": 0.2}
    assert scoring.estimate(row, "precision") == Estimate(0.5, 0.4, 0.6)
    assert scoring.estimate(row, "recall") is None  # a figure without interval is not an estimate


# ---------------------------------------------------------------------------------------------- collapse


def outlier_trap(outliers: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Real points plus a few far outliers (whose k-NN balls are huge), and a collapsed batch sitting next to the
    first outlier: the outliers' balls hold it, so k-NN precision calls every collapsed sample realistic."""
    real = gaussian(500, seed)
    real[:outliers] = torch.tensor([30.0] + [0.0] * 7) + 0.5 * gaussian(outliers, seed + 1)
    collapsed = real[:1] + 0.01 * gaussian(500, seed + 2)
    return real, collapsed


def test_a_collapsed_batch_does_not_score_as_realistic_on_the_lead_scores():
    real, collapsed = outlier_trap(outliers=1)
    fooled = manifold_scores(real, collapsed, k=3)
    assert fooled["precision"] == 1.0  # one outlier's ball holds the whole batch
    assert fooled["density"] == pytest.approx(1 / 3) and fooled["coverage"] == pytest.approx(1 / 500)
    real, collapsed = outlier_trap(outliers=2)  # at least one outlier in most sets of 250
    result = scores_at_set_size(real, collapsed, 3, 250, repeats=20).scores
    assert result["precision"].value > 0.5
    assert result[scoring.LEAD["realism"]].value <= 0.5 and result[scoring.LEAD["coverage"]].high < 0.05
    assert result["recall"].high < 0.05


# ---------------------------------------------------------------------------------------------- degradations


def test_degradations_are_mild_seeded_and_keep_the_range():
    t = torch.linspace(0, 3, 16)
    x = (0.8 * torch.sin(t[:, None] + t[None, :] + torch.arange(12).view(4, 3, 1, 1))).float()  # smooth images
    for name in degrade.MILD:
        y = degrade.degrade(x, name, seed=3)
        assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1, name
        assert torch.equal(y, degrade.degrade(x, name, seed=3)), name
        assert 0 < (y - x).abs().mean() < 0.1, name
    from training.metrics.train_featurenet import augment, damage

    mild = augment(x, torch.Generator().manual_seed(0), harmless=True)
    harsh = damage(x, torch.Generator().manual_seed(0))
    assert mild.shape == harsh.shape == x.shape and harsh.min() >= -1 and harsh.max() <= 1
    assert 2 * (mild - x).abs().mean() < (harsh - x).abs().mean()  # the feature network learns the difference
    grey = degrade.jpeg(torch.zeros(2, 1, 16, 16), 75)
    assert grey.shape == (2, 1, 16, 16) and grey.abs().max() < 0.02
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade.degrade(x, "posterize")


def test_damage_of_one_kind_and_the_consistency_pull():
    from training.metrics.train_featurenet import DAMAGE_KINDS, consistency_loss, damage

    t = torch.linspace(0, 3, 16)
    x = (0.3 * torch.sin(t[:, None] + t[None, :] + torch.arange(24).view(8, 3, 1, 1))).float()
    saturated = damage(x, torch.Generator().manual_seed(0), ("saturated",))
    # Every image is a contrast boost of itself (x2.5 to x5, clipped): same signs, at least 2.5x farther from 0.
    assert torch.equal(torch.sign(saturated), torch.sign(x))
    assert (saturated.abs() >= torch.minimum(2.5 * x.abs(), torch.ones(())) - 1e-6).all()
    # The default draws the three kinds from the same random stream as before the option existed.
    assert torch.equal(damage(x, torch.Generator().manual_seed(0)),
                       damage(x, torch.Generator().manual_seed(0), DAMAGE_KINDS))
    with pytest.raises(ValueError, match="damage kinds"):
        damage(x, torch.Generator().manual_seed(0), ("blur",))
    a, b = torch.randn(32, 16), torch.randn(32, 16)
    assert consistency_loss(a, a) == 0
    assert consistency_loss(a, b) > 1  # unrelated features: as far apart as the spread of the batch, or farther
    assert torch.isclose(consistency_loss(3 * a, 3 * b), consistency_loss(a, b))  # shrinking does not help


@pytest.mark.parametrize("field,value,message", [
    ("damage", ("glare",), "--damage takes"), ("damage", (), "--damage takes"),
    ("blur_share", 1.5, "--blur-share"), ("consistency", -1.0, "--consistency"),
])
def test_featurenet_recipe_refuses_bad_settings(field, value, message):
    from training.metrics.train_featurenet import FeatureNetTrainConfig

    with pytest.raises(LatentExplorerError, match=message):
        FeatureNetTrainConfig(**{field: value}).validate()
    if field == "consistency":  # the pull compares an augmented image with its original: without augmentations
        with pytest.raises(LatentExplorerError, match="needs augmentations"):
            FeatureNetTrainConfig(consistency=1.0, augment=False).validate()


# ---------------------------------------------------------------------------------------------- nearest images


def test_nearest_finds_the_copied_image_and_measures_the_scale():
    pool = torch.rand(30, 3, 8, 8) * 2 - 1
    copies = pool[[4, 17]] + 0.001
    far = torch.full((1, 3, 8, 8), 5.0)
    found = nearest(pixel_vectors(torch.cat([copies, far])), pixel_vectors(pool), j=3)
    assert found.index[:2, 0].tolist() == [4, 17] and found.index.shape == (3, 3)
    assert (np.diff(found.distance, axis=1) >= 0).all()
    assert found.ratio[0] < 0.01 and found.ratio[2] > 1  # a copy is far closer than real images to each other
    assert found.typical == pytest.approx(float(torch.cdist(pixel_vectors(pool), pixel_vectors(pool))
                                                .fill_diagonal_(np.inf).min(1).values.median()))
    # Pixel distances are root-mean-square differences: black against white is 2.
    assert nearest(pixel_vectors(-torch.ones(1, 1, 4, 4)), pixel_vectors(torch.stack([torch.ones(1, 4, 4)] * 2)),
                   j=1).distance[0, 0] == pytest.approx(2.0)
    both = nearest_real(torch.cat([copies, far]), pool)
    assert set(both) == {"pixel"} and both["pixel"].index[0, 0] == 4
    with pytest.raises(LatentExplorerError, match="channels"):
        nearest_real(torch.zeros(1, 1, 8, 8), pool)


# ---------------------------------------------------------------------------------------------- evaluate --write


@pytest.fixture(scope="module")
def tiny_net(tmp_path_factory):
    from latent_bundles import tiny_faces, tiny_featurenet

    return tiny_featurenet(tmp_path_factory.mktemp("net") / "featurenet", tiny_faces())


def test_evaluate_writes_only_when_asked(tiny_bundle, tiny_net, tmp_path, capsys):
    from training.__main__ import main

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    metrics = bundle / "metrics.json"
    before = metrics.read_bytes() if metrics.exists() else None
    common = [str(bundle), "--samples", "16", "--quiet", "--feature-net", str(tiny_net)]
    assert main(["evaluate", *common, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (metrics.read_bytes() if metrics.exists() else None) == before  # printing changes nothing
    assert main(["evaluate", *common, "--no-write"]) == 0  # the old flag is still accepted
    assert "wrote" not in capsys.readouterr().out
    assert (metrics.read_bytes() if metrics.exists() else None) == before
    assert main(["evaluate", *common, "--write", "--no-write"]) == 2
    assert "contradict" in capsys.readouterr().err
    assert main(["evaluate", *common, "--write", "--json"]) == 0
    stored = json.loads(metrics.read_text())
    assert stored["fd_precision_recall"] == printed["fd_precision_recall"]  # --json prints what --write stores
    row = stored["fd_precision_recall"]["model"]
    assert row["set_size"] == stored["set_size"] == 8 and row["generated"] == 16 and row["real"] == 16
    for name in SCORES:
        low, high = row["intervals"][name]
        assert low <= row[name] <= high
    assert {"kid", "kid_std", "fd"} <= set(row) and stored["lead"] == scoring.LEAD
    assert main(["evaluate", *common]) == 0
    text = capsys.readouterr().out
    assert "sets of 8 real vs 8 generated" in text and "wrote" not in text


def test_cli_defaults_are_the_studied_ones():
    from training.__main__ import build_parser

    args = build_parser().parse_args(["evaluate", "x"])
    assert (args.samples, args.k, args.set_size) == (scoring.DEFAULT_SAMPLES, scoring.DEFAULT_K,
                                                     scoring.DEFAULT_SET_SIZE)
    assert args.write is False


# ---------------------------------------------------------------------------------------------- honest words


def test_sentences_follow_the_intervals_not_the_point_values():
    from training.metrics.wording import comparison_sentence

    realism, coverage = scoring.LEAD["realism"], scoring.LEAD["coverage"]

    def pair(half_width: float) -> tuple[dict, dict]:
        vae = {realism: Estimate(0.60, 0.60 - half_width, 0.60 + half_width),
               coverage: Estimate(0.80, 0.80 - half_width, 0.80 + half_width)}
        gan = {realism: Estimate(0.90, 0.90 - half_width, 0.90 + half_width),
               coverage: Estimate(0.50, 0.50 - half_width, 0.50 + half_width)}
        return vae, gan

    narrow, wide = comparison_sentence(*pair(0.05)), comparison_sentence(*pair(0.2))
    assert "The classic story" in narrow and "cannot be told apart" not in narrow
    # The same figures with intervals that overlap: no ranking is claimed.
    assert "do not separate the two models" in wide and wide.count("cannot be told apart") == 2
    assert "looks more realistic" not in wide and "covers more" not in wide
    vae, gan = pair(0.05)
    gan[coverage] = Estimate(0.78, 0.70, 0.84)  # overlaps the VAE's coverage only
    one = comparison_sentence(vae, gan)
    assert "the GAN looks more realistic" in one and "on coverage the two cannot be told apart" in one
    assert "0.60 [0.55, 0.65]" in one  # every figure is shown with its interval
    assert comparison_sentence({realism: vae[realism]}, gan) is None  # a missing estimate: no sentence
    if realism == "density":  # above the real level (1) density says "crowded", not "more real than real"
        crowded = {realism: Estimate(1.6, 1.5, 1.7), coverage: vae[coverage]}
        assert "on realism (density) the two cannot be told apart" in comparison_sentence(vae | {realism: Estimate(
            1.1, 1.02, 1.2)}, crowded)
