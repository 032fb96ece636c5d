"""Evaluate a bundle: FD / precision / recall in a feature network's space, collapse references, floors,
attribute accuracy (conditional GANs) and reconstruction error (VAEs); results go to the bundle's metrics.json."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from training import checkpoint
from training.attributes import Attribute
from training.checkpoint import Bundle
from training.data.base import ImageDataset
from training.data.location import portable_source, recorded_bundle_path
from training.errors import LatentExplorerError
from training.latent import LatentDistribution, sample_latents
from training.metrics import distances
from training.metrics.real import load_real_for_bundle
from training.models.featurenet import FeatureNet, to_input
from training.untrusted import read_json

REPO_ROOT = Path(__file__).resolve().parents[2]
METRICS_VERSION = 1
DEFAULT_SAMPLES = 5000
CONDITIONAL_FAMILIES = ("cgan",)  # generator(z, labels) with int64 label rows (B, A)
# The references every evaluation adds: collapse (N(-10,1)) and an off-prior squeeze (U(0,1)).
REFERENCE_LATENTS = {
    "normal_minus10": LatentDistribution.normal(-10.0, 1.0),
    "uniform_0_1": LatentDistribution.uniform(0.0, 1.0),
}
WHAT = ("Fréchet distance (FD) and precision/recall (Kynkäänniemi et al. 2019, k nearest neighbours) between "
        "generated and held-out real images, in the penultimate feature space of our own attribute classifier "
        "for this dataset. This is NOT Inception FID: compare these numbers only with numbers computed with the "
        "same feature network.")


def checkpoints_root() -> Path:
    return Path(os.environ.get("LATENT_EXPLORER_CHECKPOINTS", REPO_ROOT / "checkpoints"))


def default_featurenet_path(dataset: str) -> Path:
    """Where a dataset's feature network lives: checkpoints/<dataset>/featurenet/."""
    return checkpoints_root() / dataset / "featurenet"


def load_featurenet(path: str | Path) -> tuple[FeatureNet, Bundle]:
    bundle = checkpoint.load_bundle(path)
    if bundle.family != "featurenet":
        raise LatentExplorerError(f"{path}: this is a {bundle.family} bundle, not a feature network")
    return bundle.networks["featurenet"], bundle


def _sha256(file: Path) -> str:
    return hashlib.sha256(file.read_bytes()).hexdigest()


@torch.no_grad()
def real_features(net: FeatureNet, dataset: ImageDataset, index: np.ndarray | None = None,
                  batch_size: int = 250) -> torch.Tensor:
    """Feature vectors of real images (all of them, or those at `index`)."""
    index = np.arange(len(dataset)) if index is None else np.sort(index)
    out = [net.features(to_input(dataset.batch(index[i:i + batch_size])[0], net.config))
           for i in range(0, len(index), batch_size)]
    return torch.cat(out)


@torch.no_grad()
def generated_features(generate: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor], net: FeatureNet,
                       z: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 250,
                       progress: bool = False, desc: str = "") -> torch.Tensor:
    """Feature vectors of the images generate(z, labels) makes, batch by batch (images are never all in memory)."""
    out = []
    for i in tqdm(range(0, len(z), batch_size), desc=desc, disable=not progress, leave=False):
        rows = None if labels is None else labels[i:i + batch_size]
        out.append(net.features(to_input(generate(z[i:i + batch_size], rows), net.config)))
    return torch.cat(out)


def sampler(bundle: Bundle) -> Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]:
    """generate(z, labels) for any family: labels are passed only to conditional generators."""
    generator = bundle.networks["decoder"] if bundle.family == "vae" else bundle.generator
    generator.eval()
    if bundle.family in CONDITIONAL_FAMILIES:
        return lambda z, labels: generator(z, labels)
    return lambda z, labels: generator(z)


@torch.no_grad()
def conditional_attribute_accuracy(generator: nn.Module, net: nn.Module, conditions: tuple[Attribute, ...],
                                   net_attributes: tuple[Attribute, ...], label_pool: torch.Tensor,
                                   per_value: int, latent_dim: int, prior: LatentDistribution, seed: int = 0,
                                   batch_size: int = 250) -> dict[str, dict]:
    """How often the feature network finds the attribute value a conditional generator was asked for.

    `generator(z, labels)` takes int64 rows (B, len(conditions)) in the dataset's encoding, one column per
    conditioning attribute. For each condition and each of its values, `per_value` images are generated from rows
    drawn from `label_pool` (real label rows, so the other conditions stay realistic) with that condition forced
    to the value, and classified by `net` (whose heads follow `net_attributes`). An attribute's accuracy is the
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
            rows = label_pool[torch.randint(len(label_pool), (per_value,), generator=rng)].clone()
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


def _check_featurenet_fits(net_bundle: Bundle, bundle: Bundle) -> None:
    ours, theirs = net_bundle.config["dataset"]["name"], bundle.config["dataset"]["name"]
    if ours != theirs:
        raise LatentExplorerError(
            f"the feature network {net_bundle.path} was trained on {ours!r} but the model on {theirs!r}; "
            f"pass --feature-net with a {theirs} feature network"
        )


@torch.no_grad()
def evaluate_bundle(bundle: Bundle, featurenet: str | Path | None = None, samples: int = DEFAULT_SAMPLES,
                    seed: int = 0, data_root: str | Path | None = None, k: int = distances.DEFAULT_K,
                    batch_size: int = 250, progress: bool = False) -> dict:
    """Every number for one bundle, as the dict metrics.json stores (nothing is written here)."""
    from training.models.registry import GENERATOR_NAME

    if bundle.family not in GENERATOR_NAME:
        raise LatentExplorerError(f"{bundle.path} is a {bundle.family} bundle; evaluate scores generative models")
    if samples <= k:
        raise LatentExplorerError(f"--samples must be more than k = {k} (got {samples})")
    started = time.time()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.time()
        timings[name] = round(now - since, 1)
        return now

    net_path = Path(featurenet) if featurenet is not None else default_featurenet_path(bundle.config["dataset"]["name"])
    if not net_path.exists():
        dataset = bundle.config["dataset"]["name"]
        raise LatentExplorerError(
            f"no feature network at {net_path}; train one with `python -m training train-featurenet --data "
            f"{dataset} --out {net_path}` or pass --feature-net PATH"
        )
    net, net_bundle = load_featurenet(net_path)
    _check_featurenet_fits(net_bundle, bundle)
    t = time.time()
    real = load_real_for_bundle(bundle.config, data_root=data_root, n_test=samples, progress=progress)
    t = lap("load_real_images", t)
    n_real = min(samples, len(real.train), len(real.test))
    if n_real <= k:
        raise LatentExplorerError(f"only {n_real} real images: need more than k = {k}")
    pick = np.random.default_rng(seed)
    train_index = pick.choice(len(real.train), n_real, replace=False)
    test_index = pick.choice(len(real.test), n_real, replace=False)
    f_train = real_features(net, real.train, train_index, batch_size)
    f_test = real_features(net, real.test, test_index, batch_size)
    t = lap("real_features", t)

    generate = sampler(bundle)
    latent_dim = int(bundle.config["model"]["latent_dim"])
    prior = bundle.prior
    labels = None
    if bundle.family in CONDITIONAL_FAMILIES:
        conditions, columns = conditions_of(bundle, real.test.attributes)
        pool = torch.from_numpy(np.asarray(real.test.labels)[:, columns])
        labels = pool[torch.randint(len(pool), (samples,), generator=torch.Generator().manual_seed(seed + 1))]
    rows: dict[str, dict] = {}
    latents = {"model": prior, **REFERENCE_LATENTS}
    for key, dist in latents.items():
        z = sample_latents(dist, samples, latent_dim, seed=seed)  # same base noise: rows differ only by dist
        f_fake = generated_features(generate, net, z, labels, batch_size, progress, desc=f"z ~ {dist.label}")
        description = ("the model, z from its training prior" if key == "model"
                       else f"reference: the same model fed z ~ {dist.label}")
        rows[key] = {"latent": dist.label, "description": description,
                     **distances.fd_precision_recall(f_test, f_fake, k)}
        t = lap(f"samples_{key}", t)
    rows["real_floor"] = {"latent": None, "description": "floor: real training images vs held-out real images",
                          **distances.fd_precision_recall(f_test, f_train, k)}
    t = lap("distances_floor", t)

    result = {
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
            "weights_sha256": _sha256(net_bundle.path / checkpoint.WEIGHTS_FILE),
        },
        "samples": samples,
        "real_samples": {"train": n_real, "test": n_real},
        "seed": seed,
        "k": k,
        "real": {"train": portable_source(real.train_source), "test": portable_source(real.test_source)},
        "fd_precision_recall": rows,
    }
    if bundle.family in CONDITIONAL_FAMILIES:
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
    if bundle.family == "vae":
        if "encoder" not in bundle.networks:
            raise LatentExplorerError(f"{bundle.path}: the VAE bundle was loaded without its encoder")
        mse = reconstruction_mse(bundle.networks["encoder"].eval(), bundle.networks["decoder"].eval(),
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
    file = Path(bundle_path) / checkpoint.METRICS_FILE
    existing = {}
    if file.exists():
        try:
            existing = read_json(file, "metrics")
        except LatentExplorerError:  # a damaged metrics.json of this bundle is replaced by the new figures
            existing = {}
        if not isinstance(existing, dict):
            existing = {}
    checkpoint.atomic_write_json(file, {**existing, **result})
    return file
