"""Evaluate a bundle: FD, KID and precision / recall / density / coverage (with intervals) in a feature network's
space, collapse references, the real floor, attribute accuracy (conditional GANs) and reconstruction error
(VAEs), as the dict the bundle's metrics.json stores (write_metrics writes it; the CLI only when asked)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.attributes import Attribute
from training.bundle import METRICS_FILE, WEIGHTS_FILE, Bundle, atomic_write_json, load_bundle
from training.bundle import paths as bundle_paths
from training.bundle.trained_on import TRAINED_ON, UNKNOWN
from training.data.base import ImageDataset
from training.data.location import portable_source, recorded_bundle_path
from training.errors import LatentExplorerError
from training.latent.priors import LatentDistribution, sample_latents
from training.metrics import scoring
from training.metrics.features import generated_features, real_features
from training.metrics.real import RealData, load_real_for_bundle
from training.models.featurenet import FeatureNet, to_input
from training.untrusted.checks import read_json

REPO_ROOT = bundle_paths.REPO_ROOT
METRICS_VERSION = 2  # 2: set size, density, coverage, KID and intervals
DEFAULT_SAMPLES = scoring.DEFAULT_SAMPLES
# The references every evaluation adds: collapse (N(-10,1)) and an off-prior squeeze (U(0,1)).
REFERENCE_LATENTS = {
    "normal_minus10": LatentDistribution.normal(-10.0, 1.0),
    "uniform_0_1": LatentDistribution.uniform(0.0, 1.0),
}
WHAT = ("Fréchet distance (FD), kernel distance (KID, unbiased) and precision/recall (Kynkäänniemi et al. 2019) "
        "and density/coverage (Naeem et al. 2020), k nearest neighbours, between generated and held-out real "
        "images, in the penultimate feature space of our own attribute classifier for this dataset. The k-NN "
        "scores compare sets of set_size images each, whatever the number of samples. This is NOT Inception FID: "
        "compare these numbers only with numbers computed with the same feature network.")


def load_featurenet(path: str | Path) -> tuple[FeatureNet, Bundle]:
    bundle = load_bundle(path)
    if bundle.capabilities.generates:
        raise LatentExplorerError(f"{path}: this is a {bundle.family} bundle, not a feature network")
    return bundle.networks["featurenet"], bundle


def _sha256(file: Path) -> str:
    return hashlib.sha256(file.read_bytes()).hexdigest()


@torch.no_grad()
def conditional_attribute_accuracy(generator: nn.Module, net: nn.Module, conditions: tuple[Attribute, ...],
                                   net_attributes: tuple[Attribute, ...], label_pool: torch.Tensor,
                                   per_value: int, latent_dim: int, prior: LatentDistribution, seed: int = 0,
                                   batch_size: int = 250) -> dict[str, dict]:
    """How often the feature network finds the attribute value a conditional generator was asked for.

    `generator(z, labels)` takes int64 rows (B, len(conditions)) in the dataset's encoding, one column per
    conditioning attribute. For each condition and each of its values, `per_value` images are generated from rows
    drawn from the `label_pool` rows (real label rows) that have that value, so the other conditions stay
    realistic for it: forcing "blond" onto a real row that says "black hair" would ask for both at once, and no
    generator could satisfy the classifier on both (only when no real row has the value is it forced onto any
    row). Each image is classified by `net` (whose heads follow `net_attributes`). An attribute's accuracy is the
    mean over its values: balanced, so a generator that ignores the label scores chance, 1 / number of values.
    """
    if label_pool.ndim != 2 or label_pool.shape[1] != len(conditions):
        raise LatentExplorerError(f"label rows have shape {tuple(label_pool.shape)}, expected (N, {len(conditions)})")
    by_name = {a.name: (j, a) for j, a in enumerate(net_attributes)}
    rng = torch.Generator().manual_seed(seed + 2)
    result = {}
    for a, attribute in enumerate(conditions):
        if attribute.name not in by_name or by_name[attribute.name][1].values != attribute.values:
            raise LatentExplorerError(
                f"the feature network does not predict the attribute {attribute.name!r} with values "
                f"{', '.join(attribute.values)}; train a feature network on the model's dataset"
            )
        column = by_name[attribute.name][0]
        per_value_acc = {}
        for v, value in enumerate(attribute.values):
            candidates = label_pool[label_pool[:, a] == v]
            if not len(candidates):
                candidates = label_pool
            rows = candidates[torch.randint(len(candidates), (per_value,), generator=rng)].clone()
            rows[:, a] = v
            z = sample_latents(prior, per_value, latent_dim, generator=rng)
            hits = 0
            for i in range(0, per_value, batch_size):
                images = generator(z[i:i + batch_size], rows[i:i + batch_size])
                hits += int((net.predict(to_input(images, net.config))[:, column] == v).sum())
            per_value_acc[value] = round(hits / per_value, 4)
        result[attribute.name] = {"accuracy": round(float(np.mean(list(per_value_acc.values()))), 4),
                                  "per_value": per_value_acc, "chance": round(1 / len(attribute.values), 4)}
    return result


def conditions_of(bundle: Bundle, dataset_attributes: tuple[Attribute, ...]) -> tuple[tuple[Attribute, ...], list[int]]:
    """The attributes a conditional generator takes (all dataset attributes unless it says otherwise) and
    their columns in the dataset's label rows."""
    conditions = tuple(getattr(bundle.generator, "conditions", None) or bundle.attributes)
    names = [a.name for a in dataset_attributes]
    missing = [c.name for c in conditions if c.name not in names]
    if missing:
        raise LatentExplorerError(f"the model conditions on {', '.join(missing)}, which the real data does not label")
    return conditions, [names.index(c.name) for c in conditions]


@torch.no_grad()
def reconstruction_mse(encoder: nn.Module, decoder: nn.Module, dataset: ImageDataset, limit: int | None = None,
                       batch_size: int = 250) -> float:
    """Mean squared error per pixel (pixels in [-1, 1]) of decoder(mu) where (mu, logvar) = encoder(x).

    Uses the posterior mean, not a sample, so the number does not depend on a seed.
    """
    n = len(dataset) if limit is None else min(limit, len(dataset))
    total, count = 0.0, 0
    for start in range(0, n, batch_size):
        x, _ = dataset.batch(slice(start, min(start + batch_size, n)))
        mu, _logvar = encoder(x)
        x_hat = decoder(mu)
        if x_hat.shape != x.shape:
            raise LatentExplorerError(f"the decoder made images of shape {tuple(x_hat.shape[1:])}, "
                                      f"the data has {tuple(x.shape[1:])}")
        total += float(((x_hat.float() - x) ** 2).sum())
        count += x.numel()
    return total / count


def condition_rows(bundle: Bundle, real: ImageDataset, n: int,
                   seed: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """For a conditional generator: n condition rows drawn (seeded) from the real images' label rows, and that
    pool of rows; (None, None) for the other families."""
    if not bundle.capabilities.conditional:
        return None, None
    _, columns = conditions_of(bundle, real.attributes)
    pool = torch.from_numpy(np.asarray(real.labels)[:, columns])
    return pool[torch.randint(len(pool), (n,), generator=torch.Generator().manual_seed(seed + 1))], pool


def _check_featurenet_fits(net_bundle: Bundle, bundle: Bundle) -> None:
    ours, theirs = net_bundle.config["dataset"]["name"], bundle.config["dataset"]["name"]
    if ours != theirs:
        raise LatentExplorerError(
            f"the feature network {net_bundle.path} was trained on {ours!r} but the model on {theirs!r}; "
            f"pass --feature-net with a {theirs} feature network"
        )


def featurenet_for(bundle: Bundle, featurenet: str | Path | None = None) -> tuple[FeatureNet, Bundle]:
    """The feature network a bundle is scored with (its dataset's, checkpoints/<dataset>/featurenet, unless one is
    given) and its bundle, checked to be of the model's dataset."""
    dataset = bundle.config["dataset"]["name"]
    if dataset == UNKNOWN:
        raise LatentExplorerError(
            f"{bundle.path} was imported without naming the dataset it was trained on, so there are no real images "
            f"to score it against: import it again with `python -m training import-dcgan FILE --out {bundle.path} "
            f"--overwrite --data {'|'.join(TRAINED_ON)}`")
    net_path = Path(featurenet) if featurenet is not None else bundle_paths.featurenet_path(dataset)
    if not net_path.exists():
        raise LatentExplorerError(
            f"no feature network at {net_path}; train one with `python -m training train-featurenet --data "
            f"{dataset} --out {net_path}` or pass --feature-net PATH"
        )
    net, net_bundle = load_featurenet(net_path)
    _check_featurenet_fits(net_bundle, bundle)
    return net, net_bundle


def held_out_subsets(real: RealData, samples: int, seed: int) -> tuple[int, np.ndarray, np.ndarray]:
    """How many real images of each kind an evaluation compares, and which: (n, training positions, held-out
    positions), a seeded choice."""
    n_real = min(samples, len(real.train), len(real.test))
    pick = np.random.default_rng(seed)
    return (n_real, pick.choice(len(real.train), n_real, replace=False),
            pick.choice(len(real.test), n_real, replace=False))


def result_record(bundle: Bundle, net: FeatureNet, net_bundle: Bundle, real: RealData, samples: int, n_real: int,
                  seed: int, k: int, set_size: int, rows: dict[str, dict]) -> dict:
    """What metrics.json stores about one evaluation: what was scored, how, against which images, and the rows."""
    return {
        "metrics_version": METRICS_VERSION,
        "what": WHAT,
        "bundle": {"name": bundle.name, "family": bundle.family, "path": recorded_bundle_path(bundle.path, REPO_ROOT),
                   "step": bundle.config.get("step")},
        "feature_network": {
            "path": recorded_bundle_path(net_bundle.path, REPO_ROOT),
            "name": net_bundle.name,
            "feature_dim": net.config.feature_dim,
            "image_size": net.config.image_size,
            "heldout_accuracy": net_bundle.config.get("accuracy", {}),
            "weights_sha256": _sha256(net_bundle.path / WEIGHTS_FILE),
        },
        "samples": samples,
        "real_samples": {"train": n_real, "test": n_real},
        "seed": seed,
        "k": k,
        "set_size": set_size,
        "interval": {"level": scoring.intervals.LEVEL, "method": scoring.INTERVAL_METHOD,
                     "repeats": scoring.intervals.DEFAULT_REPEATS},
        "lead": scoring.LEAD,
        "real": {"train": portable_source(real.train_source), "test": portable_source(real.test_source)},
        "fd_precision_recall": rows,
    }


@torch.no_grad()
def evaluate_bundle(bundle: Bundle, featurenet: str | Path | None = None, samples: int = DEFAULT_SAMPLES,
                    seed: int = 0, data_root: str | Path | None = None, k: int = scoring.DEFAULT_K,
                    set_size: int = scoring.DEFAULT_SET_SIZE, batch_size: int = 250, progress: bool = False) -> dict:
    """Every number for one bundle, as the dict metrics.json stores (nothing is written here)."""
    capabilities = bundle.capabilities
    if not capabilities.generates:
        raise LatentExplorerError(f"{bundle.path} is a {bundle.family} bundle; evaluate scores generative models")
    scoring.set_size_for(samples, samples, k, set_size)  # refuse a hopeless --samples before loading anything
    started = time.time()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.time()
        timings[name] = round(now - since, 1)
        return now

    net, net_bundle = featurenet_for(bundle, featurenet)
    t = time.time()
    real = load_real_for_bundle(bundle.config, data_root=data_root, n_test=samples, progress=progress)
    t = lap("load_real_images", t)
    n_real, train_index, test_index = held_out_subsets(real, samples, seed)
    m = scoring.set_size_for(samples, n_real, k, set_size)
    f_train = real_features(net, real.train, train_index, batch_size)
    f_test = real_features(net, real.test, test_index, batch_size)
    t = lap("real_features", t)

    latent_dim = bundle.latent_dim
    prior = bundle.prior
    labels, pool = condition_rows(bundle, real.test, samples, seed)
    rows: dict[str, dict] = {}
    latents = {"model": prior, **REFERENCE_LATENTS}
    for key, dist in latents.items():
        z = sample_latents(dist, samples, latent_dim, seed=seed)  # same base noise: rows differ only by dist
        f_fake = generated_features(bundle, net, z, labels, batch_size, progress, desc=f"z ~ {dist.label}")
        description = ("the model, z from its training prior" if key == "model"
                       else f"reference: the same model fed z ~ {dist.label}")
        rows[key] = {"latent": dist.label, "description": description,
                     **scoring.score_row(f_test, f_fake, k, m, seed)}
        t = lap(f"samples_{key}", t)
    rows["real_floor"] = {"latent": None, "description": "floor: real training images vs held-out real images",
                          **scoring.score_row(f_test, f_train, k, m, seed)}
    t = lap("distances_floor", t)

    result = result_record(bundle, net, net_bundle, real, samples, n_real, seed, k, m, rows)
    if capabilities.conditional:
        conditions, _ = conditions_of(bundle, real.test.attributes)
        per_value = max(1, samples // sum(len(a.values) for a in conditions))
        result["attribute_accuracy"] = {
            "what": ("fraction of images generated for a requested attribute value that the feature network "
                     "classifies as that value (mean over values), next to the network's own accuracy on "
                     "held-out real images"),
            "per_value_samples": per_value,
            "attributes": {
                name: {**row, "classifier_real_accuracy": net_bundle.config.get("accuracy", {}).get(name)}
                for name, row in conditional_attribute_accuracy(
                    bundle.generator, net, conditions, net_bundle.attributes, pool, per_value, latent_dim, prior,
                    seed, batch_size).items()
            },
        }
        t = lap("attribute_accuracy", t)
    if capabilities.has_encoder:
        if bundle.encoder is None:
            raise LatentExplorerError(f"{bundle.path}: the VAE bundle was loaded without its encoder")
        mse = reconstruction_mse(bundle.encoder.eval(), bundle.generator.eval(),
                                 real.test, limit=samples, batch_size=batch_size)
        result["reconstruction"] = {
            "mse": round(mse, 6),
            "mse_01": round(mse / 4, 6),
            "images": min(samples, len(real.test)),
            "what": ("mean squared error per pixel of decoder(mu(x)) on held-out real images; mse with pixels "
                     "in [-1, 1] (the models' range), mse_01 with pixels in [0, 1]"),
        }
        t = lap("reconstruction", t)
    result["seconds"] = round(time.time() - started, 1)
    result["timings"] = timings
    result["versions"] = {"torch": torch.__version__}
    return result


def write_metrics(bundle_path: str | Path, result: dict) -> Path:
    """Store the result in the bundle's metrics.json, atomically, keeping any other keys already there."""
    file = Path(bundle_path) / METRICS_FILE
    existing = {}
    if file.exists():
        try:
            existing = read_json(file, "metrics")
        except LatentExplorerError:  # a damaged metrics.json of this bundle is replaced by the new figures
            existing = {}
        if not isinstance(existing, dict):
            existing = {}
    atomic_write_json(file, {**existing, **result})
    return file
