"""Evaluation: known values for FD and precision/recall, the feature network, evaluate end to end, collapse."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import REPO
from training.attributes import Attribute
from training.bundle import Bundle, load_bundle, read_config
from training.data.base import ImageDataset, images_to_tensor
from training.errors import LatentExplorerError
from training.latent.priors import STANDARD_NORMAL
from training.metrics import distances
from training.metrics.evaluate import (
    conditional_attribute_accuracy,
    evaluate_bundle,
    reconstruction_mse,
)
from training.metrics.real import load_real
from training.metrics.train_featurenet import FeatureNetTrainConfig, config_for, train_featurenet
from training.models.featurenet import FeatureNetConfig, to_input

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------------------------------------- distances


def _closed_form_fd(mu1, s1, mu2, s2) -> float:
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2), through symmetric eigendecompositions only
    (an independent route from the sqrtm(S1 S2) the implementation takes)."""
    def sqrt_psd(m):
        w, v = np.linalg.eigh(m)
        return (v * np.sqrt(np.clip(w, 0, None))) @ v.T

    r1 = sqrt_psd(s1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(sqrt_psd(r1 @ s2 @ r1)))


def test_fd_of_two_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)  # do not commute
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    expected = _closed_form_fd(mu1, s1, mu2, s2)
    assert distances.frechet_distance_from_stats(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    # Diagonal covariances: |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2 by hand.
    d1, d2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    fd = distances.frechet_distance_from_stats(np.zeros(3), np.diag(d1), np.array([3.0, 0, 4.0]), np.diag(d2))
    assert fd == pytest.approx(25 + 1 + 0 + 4)


def test_fd_from_samples():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 6))
    assert distances.frechet_distance(x, x) == pytest.approx(0, abs=1e-6)
    shift = np.array([3.0, 0, 0, 4.0, 0, 0])
    assert distances.frechet_distance(x, x + shift) == pytest.approx(25.0, rel=1e-6)  # same covariance: |shift|^2
    a = rng.normal(size=(6, 6))
    s2 = a @ a.T / 6 + 0.5 * np.eye(6)
    y = rng.multivariate_normal(shift, s2, size=20000)
    z = rng.normal(size=(20000, 6))
    assert distances.frechet_distance(z, y) == pytest.approx(_closed_form_fd(np.zeros(6), np.eye(6), shift, s2),
                                                             rel=0.03)


def test_fd_of_singular_covariances():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(300, 8))
    point = rng.normal(size=8)
    collapsed = np.repeat(point[None], 300, axis=0)  # zero covariance: FD = |mu - point|^2 + tr(S)
    mu, sigma = distances.gaussian_stats(real)
    expected = float(np.sum((mu - point) ** 2) + np.trace(sigma))
    assert distances.frechet_distance(real, collapsed) == pytest.approx(expected, rel=1e-6)
    # Fewer samples than dimensions (rank-deficient covariances, as with tiny test runs): still the closed form.
    a, b = rng.normal(size=(10, 20)), rng.normal(size=(12, 20)) + 0.5
    (m1, s1), (m2, s2) = distances.gaussian_stats(a), distances.gaussian_stats(b)
    assert distances.frechet_distance(a, b) == pytest.approx(_closed_form_fd(m1, s1, m2, s2), rel=1e-5)
    assert distances.frechet_distance(a, a) == pytest.approx(0, abs=1e-6)


def test_precision_recall_known_values():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 4))
    assert distances.precision_recall(x, x) == (1.0, 1.0)
    assert distances.precision_recall(x, x + 100.0) == (0.0, 0.0)  # disjoint sets
    # Hand-worked 1-D case with k = 1: real radii are all 1, so 0.5 is inside and 10 outside (precision 1/2);
    # the two fakes are each other's neighbour at 9.5, which covers every real point (recall 1).
    real, fake = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([[0.5], [10.0]])
    assert distances.precision_recall(real, fake, k=1) == (0.5, 1.0)
    # A collapsed generator: every sample realistic (precision 1) but one real point covered (recall 1/500).
    mode = np.repeat(x[:1], 500, axis=0)
    assert distances.precision_recall(x, mode) == (1.0, pytest.approx(1 / 500))


def test_distances_refuse_bad_input():
    with pytest.raises(LatentExplorerError, match="more than 3 samples"):
        distances.precision_recall(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(LatentExplorerError, match="NaN"):
        distances.frechet_distance(np.full((5, 2), np.nan), np.zeros((5, 2)))
    with pytest.raises(LatentExplorerError, match="feature sizes differ"):
        distances.precision_recall(np.zeros((5, 2)), np.zeros((5, 3)))


# ---------------------------------------------------------------------------------------------- feature network


@pytest.fixture(scope="module")
def faces32():
    """512 tiny faces (training) and 128 held out, 32x32."""
    return load_real("toyfaces", image_size=32, num_images=512, seed=5, n_test=128)


@pytest.fixture(scope="module")
def tiny_featurenet(faces32, tmp_path_factory):
    out = tmp_path_factory.mktemp("featurenet") / "featurenet"
    train_featurenet(faces32.train, faces32.test, config_for(faces32.train, width=8),
                     FeatureNetTrainConfig(steps=60, batch_size=32, seed=0, device="cpu"), out,
                     faces32.train_source, faces32.test_source, progress=False)
    return out


def test_featurenet_trains_and_saves_a_bundle(tiny_featurenet, faces32):
    bundle = load_bundle(tiny_featurenet)
    assert bundle.family == "featurenet"
    names = [a.name for a in faces32.train.attributes]
    accuracy = bundle.config["accuracy"]
    assert list(accuracy) == names and all(0 <= v <= 1 for v in accuracy.values())
    assert bundle.metrics["heldout_accuracy"] == accuracy
    history = bundle.history["loss"]
    assert np.mean(history[-10:]) < np.mean(history[:10])  # it learned something in 60 steps
    # Beats always guessing the most common value of the held-out set on at least one attribute.
    labels = np.asarray(faces32.test.labels)
    majority = [np.bincount(labels[:, j]).max() / len(labels) for j in range(labels.shape[1])]
    assert any(accuracy[n] > m + 0.05 for n, m in zip(names, majority))
    net = bundle.networks["featurenet"]
    x, _ = faces32.test.batch(slice(0, 6))
    assert net.features(x).shape == (6, 32) and net.predict(x).shape == (6, len(names))
    assert not any(p.suffix in (".pt", ".pth", ".pkl") for p in tiny_featurenet.iterdir())


def test_the_consistency_pull_keeps_a_blurred_image_near_its_original(tiny_featurenet, faces32, tmp_path):
    from training.metrics import degrade
    from training.metrics.train_featurenet import consistency_loss

    pulled = tmp_path / "pulled"
    train_featurenet(faces32.train, faces32.test, config_for(faces32.train, width=8),
                     FeatureNetTrainConfig(steps=60, batch_size=32, seed=0, device="cpu", consistency=1.0), pulled,
                     progress=False)
    assert load_bundle(pulled).config["training"]["consistency"] == 1.0
    x, _ = faces32.test.batch(slice(0, 128))

    def blur_distance(path):
        net = load_bundle(path).networks["featurenet"]
        with torch.no_grad():
            return float(consistency_loss(net.features(degrade.degrade(x, "blur")), net.features(x)))

    # Measured 0.17-0.18 without the pull and 0.014-0.019 with it (seeds 0 and 1).
    assert blur_distance(pulled) < 0.5 * blur_distance(tiny_featurenet)


def test_augment_is_mild_and_reproducible(faces32):
    from training.metrics.train_featurenet import augment

    x, _ = faces32.test.batch(slice(0, 8))
    a = augment(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, augment(x, torch.Generator().manual_seed(0)))
    assert 0 < (a - x).abs().mean() < 0.2  # corrupted, but still the same faces


def test_featurenet_needs_labels():
    unlabelled = ImageDataset("folder", np.zeros((4, 16, 16, 3), np.uint8), np.zeros((4, 0), np.int64), ())
    with pytest.raises(LatentExplorerError, match="no labels"):
        config_for(unlabelled)


def test_to_input_keeps_real_images_exact_and_fits_sizes():
    images = np.random.default_rng(0).integers(0, 256, size=(3, 16, 16, 3), dtype=np.uint8)
    x = images_to_tensor(images)
    config = FeatureNetConfig(image_size=16, heads=[2])
    assert torch.equal(to_input(x, config), x)
    grey = to_input(x[:, :1], config)
    assert grey.shape == (3, 3, 16, 16)
    assert to_input(x, FeatureNetConfig(image_size=32, heads=[2])).shape == (3, 3, 32, 32)


def test_real_data_other_than_toyfaces_needs_a_folder():
    with pytest.raises(LatentExplorerError, match="--data-root"):
        load_real("celeba", image_size=64)


# ---------------------------------------------------------------------------------------------- stand-ins


class _PixelCodeGenerator(nn.Module):
    """A conditional 'generator' that writes each requested label into pixel (0, a) of channel 0."""

    def __init__(self, ignore_labels: bool = False):
        super().__init__()
        self.ignore_labels = ignore_labels

    def forward(self, z, labels):
        x = torch.full((len(z), 3, 16, 16), -1.0)
        rows = torch.zeros_like(labels) if self.ignore_labels else labels
        x[:, 0, 0, :rows.shape[1]] = rows.float() * 50 / 127.5 - 1  # survives 8-bit quantisation exactly
        return x


class _PixelCodeClassifier(nn.Module):
    """The matching 'feature network': reads the labels back from those pixels."""

    def __init__(self, heads):
        super().__init__()
        self.config = FeatureNetConfig(image_size=16, heads=list(heads))

    def predict(self, x):
        return ((x[:, 0, 0, :len(self.config.heads)] + 1) * 127.5 / 50).round().long()


ATTRS = (Attribute("hair", ("black", "red", "blue")), Attribute("smiling", ("no", "yes")))


def test_attribute_accuracy_of_an_honest_and_a_deaf_generator():
    pool = torch.tensor([[0, 0], [1, 1], [2, 0]])
    classifier = _PixelCodeClassifier([3, 2])
    honest = conditional_attribute_accuracy(_PixelCodeGenerator(), classifier, ATTRS, ATTRS, pool, 12, 4,
                                            STANDARD_NORMAL)
    assert honest["hair"]["accuracy"] == 1.0 and honest["smiling"]["per_value"] == {"no": 1.0, "yes": 1.0}
    deaf = conditional_attribute_accuracy(_PixelCodeGenerator(ignore_labels=True), classifier, ATTRS, ATTRS, pool,
                                          12, 4, STANDARD_NORMAL)
    assert deaf["hair"]["accuracy"] == pytest.approx(1 / 3, abs=1e-3) == deaf["hair"]["chance"]
    assert deaf["smiling"]["accuracy"] == 0.5
    # Conditioning on a subset: columns of the generator's rows map to the classifier's attributes by name.
    only_smiling = conditional_attribute_accuracy(_PixelCodeGenerator(), _PixelCodeClassifier([2]), ATTRS[1:],
                                                  (ATTRS[1],), pool[:, 1:], 8, 4, STANDARD_NORMAL)
    assert only_smiling["smiling"]["accuracy"] == 1.0
    with pytest.raises(LatentExplorerError, match="does not predict"):
        conditional_attribute_accuracy(_PixelCodeGenerator(), classifier, (Attribute("hat", ("no", "yes")),),
                                       ATTRS, pool[:, :1], 4, 4, STANDARD_NORMAL)


class _RecordingGenerator(_PixelCodeGenerator):
    """Remembers every label row it was asked to draw."""

    def __init__(self):
        super().__init__()
        self.asked: list[torch.Tensor] = []

    def forward(self, z, labels):
        self.asked.append(labels.clone())
        return super().forward(z, labels)


def test_attribute_accuracy_asks_only_for_combinations_real_rows_have():
    # Blond and black hair never meet in these real rows: asking for "blond" on a black-haired row would ask for
    # both, and the classifier could not find both. A value no row has is still asked for, on any row.
    exclusive = (Attribute("blond", ("no", "yes")), Attribute("black", ("no", "yes")), Attribute("hat", ("no", "yes")))
    pool = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 0]])
    generator = _RecordingGenerator()
    result = conditional_attribute_accuracy(generator, _PixelCodeClassifier([2, 2, 2]), exclusive, exclusive, pool,
                                            20, 4, STANDARD_NORMAL)
    asked = torch.cat(generator.asked)
    assert len(asked) == 3 * 2 * 20
    assert not ((asked[:, 0] == 1) & (asked[:, 1] == 1)).any()
    assert int((asked[:, 2] == 1).sum()) == 20  # hat = yes: no real row has it, forced onto the 20 rows it needs
    assert all(row["accuracy"] == 1.0 for row in result.values())


class _Encoder(nn.Module):
    """Returns (mu, logvar) like the VAE's encoder; mu is the image itself, flattened."""

    def forward(self, x):
        return x.flatten(1), torch.zeros(len(x), x[0].numel())


class _Decoder(nn.Module):
    def __init__(self, shape, zero: bool = False):
        super().__init__()
        self.shape, self.zero = shape, zero

    def forward(self, z):
        return torch.zeros(len(z), *self.shape) if self.zero else z.view(len(z), *self.shape)


def test_reconstruction_mse_known_values(faces32):
    shape = (3, 32, 32)
    assert reconstruction_mse(_Encoder(), _Decoder(shape), faces32.test) == 0.0
    x, _ = faces32.test.batch(slice(0, 100))
    mse = reconstruction_mse(_Encoder(), _Decoder(shape, zero=True), faces32.test, limit=100, batch_size=30)
    assert mse == pytest.approx(float((x ** 2).mean()), rel=1e-5)


def _standin_bundle(tiny_bundle, family: str, networks: dict, latent_dim: int) -> Bundle:
    config = read_config(tiny_bundle)
    config = {**config, "family": family, "name": f"stand-in {family}",
              "model": {"latent_dim": latent_dim, "image_size": 32, "channels": 3}}
    return Bundle(path=tiny_bundle, config=config, networks=networks)


def test_evaluate_wires_vae_reconstruction(tiny_bundle, tiny_featurenet):
    class TinyVAEDecoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 3 * 32 * 32)

        def forward(self, z):
            return torch.tanh(self.fc(z)).view(len(z), 3, 32, 32)

    class TinyVAEEncoder(nn.Module):
        def forward(self, x):
            return torch.zeros(len(x), 8), torch.zeros(len(x), 8)

    bundle = _standin_bundle(tiny_bundle, "vae", {"encoder": TinyVAEEncoder(), "decoder": TinyVAEDecoder()}, 8)
    result = evaluate_bundle(bundle, featurenet=tiny_featurenet, samples=24)
    rec = result["reconstruction"]
    decoded = bundle.networks["decoder"](torch.zeros(1, 8))  # the stand-in always decodes z = 0
    real = load_real("toyfaces", image_size=32, num_images=48, seed=3, n_test=24).test
    x, _ = real.batch(slice(0, 24))
    assert rec["mse"] == pytest.approx(float(((decoded - x) ** 2).mean()), rel=1e-4)
    assert rec["mse_01"] == pytest.approx(rec["mse"] / 4, rel=1e-3) and rec["images"] == 24
    assert set(result["fd_precision_recall"]) == {"model", "normal_minus10", "uniform_0_1", "real_floor"}


def test_evaluate_wires_conditional_attribute_accuracy(tiny_bundle, tiny_featurenet):
    class TinyConditionalGenerator(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4 + 5, 3 * 32 * 32)

        def forward(self, z, labels):
            assert labels.dtype == torch.int64 and labels.shape == (len(z), 5)
            return torch.tanh(self.fc(torch.cat([z, labels.float()], 1))).view(len(z), 3, 32, 32)

    bundle = _standin_bundle(tiny_bundle, "cgan", {"generator": TinyConditionalGenerator()}, 4)
    result = evaluate_bundle(bundle, featurenet=tiny_featurenet, samples=30)
    acc = result["attribute_accuracy"]["attributes"]
    assert list(acc) == ["hair_colour", "eye_colour", "smiling", "glasses", "beard"]
    assert all(0 <= row["accuracy"] <= 1 and row["classifier_real_accuracy"] is not None for row in acc.values())
    assert "reconstruction" not in result


# ---------------------------------------------------------------------------------------------- evaluate CLI


def test_evaluate_json_on_tiny_bundle(tiny_bundle, tiny_featurenet, tmp_path, capsys):
    from training.__main__ import main

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)  # the session fixture stays without metrics.json
    assert main(["evaluate", str(bundle), "--samples", "32", "--json", "--quiet", "--seed", "7", "--write",
                 "--feature-net", str(tiny_featurenet)]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("metrics_version", "what", "bundle", "feature_network", "samples", "real_samples", "seed", "k",
                "real", "fd_precision_recall", "seconds", "timings"):
        assert key in result, key
    assert "NOT Inception" in result["what"]
    assert result["samples"] == 32 and result["seed"] == 7 and result["k"] == 3
    assert result["real_samples"] == {"train": 32, "test": 32}
    net = result["feature_network"]
    assert net["path"].endswith("featurenet") and net["heldout_accuracy"] == read_config(tiny_featurenet)["accuracy"]
    assert len(net["weights_sha256"]) == 64
    assert result["real"]["train"]["seed"] == 3 and result["real"]["test"]["seed"] != 3
    rows = result["fd_precision_recall"]
    assert [rows[k]["latent"] for k in ("model", "normal_minus10", "uniform_0_1")] == \
        ["N(0, 1)", "N(-10, 1)", "U(0, 1)"]
    for row in rows.values():
        assert row["fd"] >= 0 and 0 <= row["precision"] <= 1 and 0 <= row["recall"] <= 1
    assert "attribute_accuracy" not in result and "reconstruction" not in result
    stored = load_bundle(bundle).metrics
    assert stored["fd_precision_recall"] == rows and stored["feature_network"] == net
    # Same seed, same numbers.
    again = evaluate_bundle(load_bundle(bundle), featurenet=tiny_featurenet, samples=32, seed=7)
    assert again["fd_precision_recall"] == rows
    # The human-readable report names the feature network and says it is not Inception.
    assert main(["evaluate", str(bundle), "--samples", "32", "--quiet", "--no-write",
                 "--feature-net", str(tiny_featurenet)]) == 0
    text = capsys.readouterr().out
    assert "NOT Inception" in text and "floor: real train vs real held-out" in text and "wrote" not in text


def test_evaluate_user_errors(tiny_bundle, tmp_path, capsys, monkeypatch):
    from training.__main__ import main

    monkeypatch.setenv("LATENT_EXPLORER_CHECKPOINTS", str(tmp_path))
    assert main(["evaluate", str(tiny_bundle), "--samples", "16", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no feature network at" in err and "train-featurenet" in err
    assert main(["evaluate", str(tiny_bundle), "--samples", "3", "--quiet"]) == 2
    assert "--samples must be more than" in capsys.readouterr().err
    assert main(["evaluate", str(tiny_bundle), "--quiet", "--feature-net", str(tiny_bundle)]) == 2
    assert "not a feature network" in capsys.readouterr().err
    assert main(["evaluate", str(REPO / "checkpoints" / "toyfaces" / "featurenet"), "--quiet"]) == 2
    assert "evaluate scores generative models" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- collapse


@pytest.mark.slow
def test_collapse_has_a_number(faces32, tiny_featurenet, tmp_path):
    """On a briefly trained model (300 steps at 32px, ~10 s), z ~ N(-10, 1) (one saturated image for every code)
    and z ~ U(0, 1) (codes squeezed into one corner) recall less of the real data than the training prior does."""
    from training.loops.config import TrainConfig
    from training.loops.trainer import train
    from training.models.dcgan import DCGANConfig

    out = train("dcgan", faces32.train, DCGANConfig(latent_dim=16, image_size=32, g_width=16, d_width=16),
                      TrainConfig(steps=300, batch_size=32, lr_g=3e-4, lr_d=3e-4, snapshot_steps=(),
                                  checkpoint_every=1000, device="cpu"),
                      tmp_path / "dcgan", source=faces32.train_source, progress=False)
    rows = evaluate_bundle(load_bundle(out), featurenet=tiny_featurenet, samples=256)["fd_precision_recall"]
    assert rows["normal_minus10"]["recall"] < 0.02 < rows["model"]["recall"]
    assert rows["uniform_0_1"]["recall"] < rows["model"]["recall"]
    # Which reference lands farther depends on the tiny network (its damage head moves saturated images); both
    # land farther than the model, and the model farther than real images.
    assert min(rows["normal_minus10"]["fd"], rows["uniform_0_1"]["fd"]) > rows["model"]["fd"] > rows["real_floor"]["fd"]
    assert rows["normal_minus10"]["coverage"] < rows["model"]["coverage"]


def test_shipped_toyfaces_featurenet():
    from training.bundle.paths import featurenet_path

    path = REPO / "checkpoints" / "toyfaces" / "featurenet"
    assert path.exists(), f"the shipped feature network {path} is missing"
    assert featurenet_path("toyfaces") == path
    bundle = load_bundle(path)
    assert bundle.family == "featurenet" and bundle.config["dataset"]["source"]["seed"] == 0
    assert min(bundle.config["accuracy"].values()) >= 0.99
    assert sum(f.stat().st_size for f in path.iterdir()) < 5_000_000
