"""The VAE latent map: PCA and t-SNE of encoded held-out codes, reconstructions, and how far codes from another
latent distribution land from the cloud of real codes.

Reads a bundle's latents.npz (written at the end of VAE training): `codes` (N, d) encoder means, `labels`
(N, A), `attribute_names` (A,), `indices` (N,) and `images` (first 64 held-out images, uint8 (n, H, W, C),
row i belongs to code i). No Streamlit here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.logic.held_out import HeldOutCodes
from training.bundle import Bundle
from training.data.base import images_to_tensor
from training.errors import LatentExplorerError
from training.latent import sampling
from training.latent.priors import LatentDistribution, sample_latents

MAX_TSNE_POINTS = 2000
TSNE_ITERATIONS = 500  # scikit-learn's minimum is 250; 500 settles small maps and keeps a classroom waiting < 30 s


def colour_labels(held: HeldOutCodes, attribute: str | None) -> np.ndarray:
    """One text label per code for colouring the map: the value of `attribute`, or "held-out code"."""
    if attribute is None:
        return np.array(["held-out code"] * len(held))
    names = [a.name for a in held.attributes]
    if attribute not in names:
        raise LatentExplorerError(f"no attribute {attribute!r} in latents.npz; it has {', '.join(names)}")
    j = names.index(attribute)
    values = np.array(held.attributes[j].values)
    column = np.clip(held.labels[:, j], 0, len(values) - 1)
    return values[column]


@dataclass(frozen=True)
class PCAMap:
    mean: np.ndarray  # (d,)
    components: np.ndarray  # (dims, d), unit rows
    explained: np.ndarray  # (dims,) share of the codes' variance along each component
    xy: np.ndarray  # (N, dims) the fitted codes' positions

    def project(self, z: np.ndarray | torch.Tensor) -> np.ndarray:
        return (np.asarray(z, dtype=np.float64) - self.mean) @ self.components.T


def pca_map(codes: np.ndarray, dims: int = 2) -> PCAMap:
    """The first `dims` (2 or 3) principal components of the codes, signs fixed (largest loading positive) so the
    map is the same on every run."""
    x = np.asarray(codes, dtype=np.float64)
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    components = vt[:dims].copy()
    if components.shape[0] < dims:  # codes of fewer dimensions than the map: the missing axes are all zeros
        components = np.vstack([components, np.zeros((dims - components.shape[0], x.shape[1]))])
    for row in components:
        if row[np.argmax(np.abs(row))] < 0:
            row *= -1
    total = float((s ** 2).sum())
    explained = np.array([(s[i] ** 2) / total if i < len(s) and total > 0 else 0.0 for i in range(dims)])
    return PCAMap(mean, components, explained, (x - mean) @ components.T)


def subsample(n: int, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most max_points of n items, the same for the same arguments."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))


def usable_perplexity(perplexity: float, n: int) -> float:
    """t-SNE needs perplexity < number of points; keep at most (n - 1) / 3 so each point has real neighbours."""
    return float(max(1.0, min(perplexity, (n - 1) / 3)))


def tsne_map(codes: np.ndarray, perplexity: float = 30.0, seed: int = 0, max_points: int = MAX_TSNE_POINTS,
             max_iter: int = TSNE_ITERATIONS, dims: int = 2) -> tuple[np.ndarray, np.ndarray, float]:
    """t-SNE of at most max_points codes in `dims` (2 or 3) dimensions: (positions (M, dims), indices of the codes
    used (M,), perplexity used). Deterministic for a seed (PCA initialisation, fixed random_state)."""
    from sklearn.manifold import TSNE

    index = subsample(len(codes), max_points, seed)
    if len(index) < 4:
        raise LatentExplorerError(f"t-SNE needs at least 4 codes, got {len(index)}")
    used = usable_perplexity(perplexity, len(index))
    xy = TSNE(n_components=dims, perplexity=used, init="pca", learning_rate="auto", random_state=seed,
              max_iter=max_iter).fit_transform(np.asarray(codes, dtype=np.float64)[index])
    return xy.astype(np.float64), index, used


def point_from_selection(selection: dict | None) -> int | None:
    """The code index carried (as customdata) by the first selected point of a plotly selection event."""
    points = (selection or {}).get("points") or []
    for point in points:
        data = point.get("customdata")
        # Streamlit hands array customdata over as a list, or as an object keyed "0", "1", ...
        if isinstance(data, dict):
            data = data.get("0", next(iter(data.values()), None))
        if isinstance(data, (list, tuple)):
            data = data[0] if data else None
        if data is not None:
            try:
                return int(data)
            except (TypeError, ValueError):
                continue
    return None


@dataclass(frozen=True)
class CloudDistance:
    """How far codes from some distribution land from the held-out codes' cloud (full latent space)."""

    data_radius: float  # mean distance of the held-out codes from their centroid
    data_radius_99: float  # 99th percentile of that distance
    overlay_distance: float  # mean distance of the overlay codes from the same centroid
    inside: float  # share of the overlay codes within data_radius_99
    plane_distance: float  # mean distance in the PCA plane, in units of the held-out codes' mean plane radius

    @property
    def ratio(self) -> float:
        return self.overlay_distance / self.data_radius if self.data_radius > 0 else float("inf")


def cloud_distance(codes: np.ndarray, other: np.ndarray | torch.Tensor, pca: PCAMap | None = None) -> CloudDistance:
    x = np.asarray(codes, dtype=np.float64)
    y = np.asarray(other, dtype=np.float64)
    if y.shape[1] != x.shape[1]:
        raise LatentExplorerError(f"the overlay codes have {y.shape[1]} dimensions, the model's {x.shape[1]}")
    centre = x.mean(axis=0)
    r = np.linalg.norm(x - centre, axis=1)
    d = np.linalg.norm(y - centre, axis=1)
    r99 = float(np.percentile(r, 99))
    pca = pca or pca_map(x)
    plane_r = float(np.linalg.norm(pca.xy, axis=1).mean())
    plane_d = float(np.linalg.norm(pca.project(y), axis=1).mean())
    return CloudDistance(float(r.mean()), r99, float(d.mean()), float((d <= r99).mean()),
                         plane_d / plane_r if plane_r > 0 else float("inf"))


@dataclass(frozen=True)
class Overlay:
    """Codes from another distribution placed on the PCA map, and how far they land from the held-out codes."""

    label: str  # "<n> codes from <distribution>"
    distribution: str
    xy: np.ndarray
    distance: CloudDistance


def overlay(codes: np.ndarray, pca: PCAMap, dist: LatentDistribution, n: int, seed: int = 0) -> Overlay:
    """n codes from dist (seed), projected on the map of the held-out codes."""
    other = sample_latents(dist, n, codes.shape[1], seed=seed).numpy()
    return Overlay(f"{n} codes from {dist.label}", dist.label, pca.project(other), cloud_distance(codes, other, pca))


def explain_overlay(c: CloudDistance, label: str, n: int) -> str:
    parts = [f"The {n} codes from {label} lie {c.overlay_distance:.3g} from the centre of the held-out codes on "
             f"average; the held-out codes themselves lie {c.data_radius:.3g} from it (99% within "
             f"{c.data_radius_99:.3g}), so the overlay is {c.ratio:.3g}x as far out, and {c.inside:.0%} of it "
             "falls inside the data cloud."]
    if c.inside < 0.05 and c.ratio > 2:
        parts.append(f"The decoder never saw codes there: images decoded from {label} show what it does far outside "
                     "its training region.")
    elif c.inside >= 0.5:
        parts.append("These codes overlap the region the encoder fills, so the decoder has seen codes like them.")
    else:
        parts.append("Most of these codes sit at the edge of the region the encoder fills.")
    if 1.1 < c.ratio < 2:
        parts.append("The encoded means are less spread than these codes: a VAE's code for an image is its mean plus "
                     "the encoder's noise, and the map shows only the means.")
    parts.append(f"In the PCA plane their distance is {c.plane_distance:.3g}x the typical held-out code's (the "
                 "plane shows only two of the directions, so it can understate how far they are).")
    return " ".join(parts)


@dataclass(frozen=True)
class Reconstructions:
    originals: torch.Tensor  # (n, C, H, W) in [-1, 1]
    reconstructions: torch.Tensor
    mse: np.ndarray  # per image, pixels in [-1, 1] (the models' range; divide by 4 for [0, 1])

    @property
    def mean_mse(self) -> float:
        return float(self.mse.mean())


def reconstruct(bundle: Bundle, images: np.ndarray | torch.Tensor) -> Reconstructions:
    """decoder(mu(x)) for uint8 (n, H, W, C) images (or float (n, C, H, W) in [-1, 1]), with per-image MSE."""
    x = images_to_tensor(images) if isinstance(images, np.ndarray) else images.float()
    encoder = bundle.encoder
    encoder.eval()
    with torch.no_grad():
        mu, _ = encoder(x)
    x_hat = sampling.decode(bundle, mu)
    if x_hat.shape != x.shape:
        raise LatentExplorerError(f"the decoder makes images of shape {tuple(x_hat.shape[1:])} but latents.npz holds "
                                  f"{tuple(x.shape[1:])}")
    mse = (x_hat.double() - x.double()).pow(2).mean(dim=(1, 2, 3)).numpy()
    return Reconstructions(x, x_hat, mse)


def decode_codes(bundle: Bundle, codes: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The decoder's images of codes given as an array (a point of the map)."""
    return sampling.decode(bundle, torch.as_tensor(np.asarray(codes, dtype=np.float32)))


def neighbour_agreement(xy: np.ndarray, groups: np.ndarray, k: int = 10) -> tuple[float, float]:
    """(share of each point's k nearest neighbours in the map with its own group, the share expected by chance
    from the group sizes). Far above chance: the map clusters by this attribute."""
    from sklearn.neighbors import NearestNeighbors

    groups = np.asarray(groups).astype(str)
    n = len(groups)
    if n < 2:
        return float("nan"), float("nan")
    k = max(1, min(k, n - 1))
    # kneighbors() without X leaves each point out of its own neighbour list.
    _, neighbours = NearestNeighbors(n_neighbors=k).fit(np.asarray(xy, dtype=np.float64)).kneighbors()
    same = (groups[neighbours] == groups[:, None]).mean()
    _, counts = np.unique(groups, return_counts=True)
    chance = float(((counts / n) * ((counts - 1) / (n - 1))).sum())
    return float(same), chance


# What else varies in a dataset's images (the encoder must place it somewhere too), where we know it.
NUISANCE = {"toyfaces": "skin tone, face shape, position, size and background"}


def explain_map(projection: str, attribute: str | None, agreement: float, chance: float, explained: np.ndarray | None,
                n: int, dataset: str | None = None) -> str:
    parts = []
    if explained is not None:
        shares = [f"{e:.0%}" for e in explained]
        parts.append(f"The {['', 'one', 'two', 'three'][len(shares)]} PCA axes hold {explained.sum():.0%} of the "
                     f"variance of the {n} codes ({', '.join(shares[:-1])} and {shares[-1]}); the rest is spread "
                     "over the other directions.")
    else:
        parts.append(f"t-SNE places the {n} codes so that neighbours in the latent space stay neighbours on the "
                     "page; distances between far-apart groups mean little.")
    if attribute is not None and np.isfinite(agreement):
        parts.append(f"In this {projection} map, {agreement:.0%} of each code's nearest neighbours have the same "
                     f"{attribute} as it (chance: {chance:.0%}).")
        if agreement > chance + 0.25:
            parts.append(f"The encoder clearly groups the images by {attribute}.")
        elif agreement > chance + 0.08:
            parts.append(f"Images with the same {attribute} tend to sit together, but the groups overlap.")
        else:
            others = f" (in {dataset}: {NUISANCE[dataset]})" if dataset in NUISANCE else ""
            parts.append(f"{attribute} barely shapes this map: the encoder organises the codes by other "
                         f"things{others}.")
    return " ".join(parts)
