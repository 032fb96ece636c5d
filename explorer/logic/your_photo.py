"""Your photo in the latent space, the pure part: where a photo's code is kept for the other pages, a VAE's
encoding of it, how a new code is placed on the latent map, and the sentences the page says. No Streamlit here.

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

from training.inversion import InversionResult

PHOTO_CODES_KEY = "photo_codes"
TSNE_NEIGHBOURS = 10


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
