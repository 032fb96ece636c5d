"""Feature vectors of real and generated images in a feature network's space, batch by batch (the images of a
large request are never all in memory at once)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from training.latent import sampling
from training.models.featurenet import FeatureNet, to_input

if TYPE_CHECKING:
    from training.bundle import Bundle
    from training.data.base import ImageDataset

BATCH = 250


@torch.no_grad()
def image_features(net: FeatureNet, images: torch.Tensor, batch_size: int = BATCH) -> torch.Tensor:
    """Features (N, D) of images (N, C, H, W) in [-1, 1]."""
    net.eval()
    return torch.cat([net.features(to_input(images[i:i + batch_size], net.config))
                      for i in range(0, len(images), batch_size)])


@torch.no_grad()
def real_features(net: FeatureNet, dataset: ImageDataset, index: np.ndarray | None = None,
                  batch_size: int = BATCH,
                  transform: Callable[[torch.Tensor, int], torch.Tensor] | None = None) -> torch.Tensor:
    """Features of real images (all of them, or those at `index`); transform(images, batch number), when given,
    alters each batch first (the metrics study degrades real images with it)."""
    net.eval()
    index = np.arange(len(dataset)) if index is None else np.sort(index)
    out = []
    for b, start in enumerate(range(0, len(index), batch_size)):
        x = dataset.batch(index[start:start + batch_size])[0]
        out.append(net.features(to_input(x if transform is None else transform(x, b), net.config)))
    return torch.cat(out)


@torch.no_grad()
def generated_features(bundle: Bundle, net: FeatureNet, codes: torch.Tensor, labels: torch.Tensor | None = None,
                       batch_size: int = BATCH, progress: bool = False, desc: str = "") -> torch.Tensor:
    """Features of the images the bundle makes from `codes` (and condition rows `labels`), through
    training.latent.sampling; a generator's default inputs are made once for the whole set, as sampling.sample does."""
    net.eval()
    labels, info = sampling.whole_batch_inputs(bundle.generator, len(codes), labels, None)
    out = []
    for i in tqdm(range(0, len(codes), batch_size), desc=desc, disable=not progress, leave=False):
        rows = slice(i, i + batch_size)
        images = sampling.decode(bundle, codes[rows], labels=None if labels is None else labels[rows],
                                 info=None if info is None else info[rows], chunk=batch_size)
        out.append(net.features(to_input(images, net.config)))
    return torch.cat(out)
