"""Your photo in the latent space, the pure part: where a photo's code is kept for the other pages, a VAE's
encoding of it, how a new code is placed on the latent map, whether the photo is one of the model's own training
images, and the sentences the page says. No Streamlit here.

Where the codes live (one documented key, read by the sampling, interpolation and attribute pages):

    session_state[PHOTO_CODES_KEY] = {bundle folder (str): {photo name: code, a float32 tensor (latent_dim,)}}

A VAE's code is its encoder's mean for the photo; a GAN's is the one the inversion found. Codes are kept per
bundle folder because a code means nothing to another model.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from training.latent.inversion import InversionResult

PHOTO_CODES_KEY = "photo_codes"
TSNE_NEIGHBOURS = 10
# A training image found again: its mean absolute pixel difference (0..255) to the prepared photo is at most this.
# Measured on CelebA's 64x64 training files: 100 read as they are, 0; re-saved as JPEG at quality 50 to 75, or
# enlarged 4x and saved, at most 7.8; cropped 4 pixels off one corner, 24 or more (another picture to the model).
# The nearest other image of the 10,000 is 18.5 or more apart for 99% of them; the 10 closer than 10 are the
# dataset's own duplicates (2.8 apart at the least).
SAME_IMAGE_DIFFERENCE = 10.0
FINGERPRINT_CELLS = 8  # an image is first compared by its 8x8 cell averages, then the closest few pixel by pixel
MATCH_CANDIDATES = 16


def store_code(state: MutableMapping, bundle_path: str, name: str, code: torch.Tensor) -> None:
    codes = dict(state.get(PHOTO_CODES_KEY) or {})
    codes[str(bundle_path)] = {**codes.get(str(bundle_path), {}), name: code.detach().float().flatten().clone()}
    state[PHOTO_CODES_KEY] = codes


def codes_for(state: MutableMapping, bundle_path: str, latent_dim: int) -> dict[str, torch.Tensor]:
    """The photo codes kept for this bundle (name -> (latent_dim,)); none when no photo was placed in it."""
    kept = (state.get(PHOTO_CODES_KEY) or {}).get(str(bundle_path), {})
    return {name: code for name, code in kept.items() if isinstance(code, torch.Tensor) and code.numel() == latent_dim}


@dataclass(frozen=True)
class Encoded:
    """A VAE's answer for photos (n, C, H, W): codes = encoder means, the decoder's images of them."""

    codes: torch.Tensor  # (n, d)
    reconstructions: torch.Tensor  # (n, C, H, W) in [-1, 1]
    mse: np.ndarray  # (n,) per photo, pixels in [-1, 1]


def encode_photos(encoder: nn.Module, decoder: nn.Module, photos: torch.Tensor) -> Encoded:
    encoder.eval()
    decoder.eval()
    with torch.no_grad():
        mu, _ = encoder(photos)
        recon = decoder(mu)
    return Encoded(mu, recon, (recon.double() - photos.double()).pow(2).mean(dim=(1, 2, 3)).numpy())


def place_on_tsne(codes: np.ndarray, xy: np.ndarray, new: np.ndarray, k: int = TSNE_NEIGHBOURS) -> np.ndarray:
    """Positions for new codes on a t-SNE map of `codes` (which has no transform for new points): the average
    position of each one's k nearest mapped codes in the full latent space, weighted by 1 / distance. An
    approximation: a new point lands among its latent neighbours, never in a spot t-SNE itself would invent."""
    from sklearn.neighbors import NearestNeighbors

    codes = np.asarray(codes, dtype=np.float64)
    k = max(1, min(k, len(codes)))
    distance, index = NearestNeighbors(n_neighbors=k).fit(codes).kneighbors(np.asarray(new, dtype=np.float64))
    weights = 1.0 / np.maximum(distance, 1e-9)
    return (weights[..., None] * np.asarray(xy)[index]).sum(axis=1) / weights.sum(axis=1, keepdims=True)


def share_below(values: np.ndarray, value: float) -> float:
    """The share of `values` below `value` (its percentile among them, 0..1)."""
    values = np.sort(np.asarray(values, dtype=np.float64))
    return float(np.searchsorted(values, value) / len(values)) if len(values) else float("nan")


def reconstruction_sentence(name: str, mse: float, holdout_mse: float | None) -> tuple[str, bool]:
    """What the reconstruction error says, and whether it is far off the model's own held-out faces."""
    text = f"{name}: reconstruction MSE {mse:.4f} (pixels in [-1, 1])"
    if holdout_mse is None or holdout_mse <= 0:
        return text + "; this model records no held-out MSE to compare with.", False
    ratio = mse / holdout_mse
    text += f", {ratio:.1f}x the {holdout_mse:.4f} of its held-out training-set faces."
    far = ratio > 3
    if far:
        text += (" The model cannot draw anything like this picture: to it, this is not one of the faces it learned "
                 "(or the face is not framed like its training faces).")
    elif ratio > 1.5:
        text += " Harder for it than a typical face of its dataset, but recognisably one."
    else:
        text += " As well as it does on faces of its own dataset."
    return text, far


def inversion_sentence(name: str, result: InversionResult) -> str:
    best, rand, settings = result.best, result.best_random, result.settings
    if best.feature_distance is not None:
        gain = 1 - best.feature_distance / rand.feature_distance if rand.feature_distance else 0.0
        text = (f"{name}: the search's image is {best.feature_distance:.2f} from the photo in the feature network's "
                f"space, {gain:.0%} closer than the best of {settings.candidates} random codes "
                f"({rand.feature_distance:.2f}); pixel MSE {best.pixel_mse:.3f} against {rand.pixel_mse:.3f}.")
    else:
        text = (f"{name}: pixel MSE {best.pixel_mse:.3f}, against {rand.pixel_mse:.3f} for the best of "
                f"{settings.candidates} random codes (no feature network for this dataset, so pixels alone).")
    return text + (" What stays different (background, pose, details) is what this generator cannot make: it only "
                   "draws what its training images taught it.")


def fingerprints(images: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """(N, 8 * 8 * C) uint8: each image's average over an 8x8 grid of cells, read a chunk at a time so a
    memory-mapped dataset is never copied whole (192 bytes an image; 36,736 anime faces take 2 s once their file
    is in memory). Sums by explicit adds: numpy's reduction over the strided cell axes is 4 times slower."""
    n, side, channels = len(images), images.shape[1] - images.shape[1] % FINGERPRINT_CELLS, images.shape[3]
    cell = side // FINGERPRINT_CELLS  # at most 128 pixels: 128 x 255 still fits the uint16 row sums
    out = np.empty((n, FINGERPRINT_CELLS * FINGERPRINT_CELLS * channels), np.uint8)
    for start in range(0, n, chunk):
        part = np.asarray(images[start:start + chunk, :side, :side]).astype(np.uint16)
        rows = part.reshape(len(part), FINGERPRINT_CELLS, cell, side * channels)
        row_sums = rows[:, :, 0].copy()
        for k in range(1, cell):
            row_sums += rows[:, :, k]
        columns = row_sums.reshape(len(part), FINGERPRINT_CELLS, FINGERPRINT_CELLS, cell, channels)
        sums = columns[:, :, :, 0].astype(np.uint32)
        for k in range(1, cell):
            sums += columns[:, :, :, k]
        out[start:start + len(part)] = ((sums + cell * cell // 2) // (cell * cell)).reshape(len(part), -1)
    return out


@dataclass(frozen=True)
class TrainingMatch:
    """The dataset image an uploaded photo is (nearly) a copy of."""

    position: int  # in the dataset as the bundle was trained on it
    difference: float  # mean absolute pixel difference, 0..255
    trained_on: bool  # False: one of the images a VAE held out of its training


def training_match(image: np.ndarray, images: np.ndarray, prints: np.ndarray,
                   held_out: np.ndarray | None = None) -> TrainingMatch | None:
    """The dataset image that is this very picture, or a re-saved copy of it (SAME_IMAGE_DIFFERENCE), if any:
    the closest few by fingerprint, compared pixel by pixel. `image` is the prepared photo (S, S, C) uint8,
    `images` the dataset's (N, S, S, C), `prints` their fingerprints, `held_out` the positions a VAE kept out."""
    if images.shape[1:] != image.shape or len(images) == 0:
        return None
    mine = fingerprints(image[None])[0].astype(np.int32)
    distance = np.concatenate([np.abs(prints[s:s + 16384].astype(np.int32) - mine).sum(axis=1)
                               for s in range(0, len(prints), 16384)])
    closest = np.argpartition(distance, min(MATCH_CANDIDATES, len(distance) - 1))[:MATCH_CANDIDATES]
    differences = [float(np.abs(np.asarray(images[i], np.int16) - image).mean()) for i in closest]
    best = int(np.argmin(differences))
    if differences[best] > SAME_IMAGE_DIFFERENCE:
        return None
    position = int(closest[best])
    return TrainingMatch(position, differences[best], held_out is None or position not in set(held_out.tolist()))


def training_match_sentence(name: str, match: TrainingMatch, trained_count: int) -> str:
    """What the page says when a photo is one of the dataset's own images."""
    same = ("exactly that image" if match.difference == 0 else
            f"its pixels {match.difference:.1f} of 255 apart on average, as a re-saved copy's are")
    if match.trained_on:
        return (f"{name} is one of the {trained_count:,} images this model was trained on (dataset image "
                f"{match.position:,}: {same}). What the model makes of it is a memory, not a generalisation: it "
                "saw this very face while learning. A face from outside its dataset shows how it copes with "
                "something new.")
    return (f"{name} is one of the faces this model's dataset held out of its training (dataset image "
            f"{match.position:,}: {same}). The model never saw it, so this is a fair test of a new face, like the "
            "held-out faces its numbers are compared with.")


def training_images(dataset: dict, data_root: str | None) -> np.ndarray | None:
    """The bundle's dataset as it was trained on, uint8 (N, S, S, C) (memory-mapped), or None when this machine
    has no copy of it (then the page says nothing about it). Toy faces count only when already drawn and cached
    here: drawing 30,000 takes a minute or two."""
    from explorer.logic.real_images import APP_ASK, load_recorded
    from training.data.location import load_arguments
    from training.errors import LatentExplorerError

    name = dataset.get("name")
    source = dataset.get("source") or {}
    size = int(dataset.get("image_size") or source.get("image_size") or 64)
    try:
        if name == "toyfaces":
            from training.data.toyfaces import cache_paths

            count = int(source.get("num_images") or 30000)
            cached = cache_paths(count, int(source.get("seed", 0)), size)[0]
            images = np.load(cached, mmap_mode="r") if cached.is_file() else None
            usable = images is not None and images.dtype == np.uint8 and images.shape == (count, size, size, 3)
            return images if usable else None
        if name in (None, "imported") or "load_args" not in source:  # an older bundle: not worth a guess
            return None
        return load_recorded(load_arguments({**source, "name": name}, data_root, APP_ASK), size).images
    except (LatentExplorerError, OSError, ValueError):
        return None
