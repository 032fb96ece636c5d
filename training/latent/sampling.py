"""One way to turn a loaded bundle's codes into images: the pages, the diagnostics, the metrics and the CLI call it.

Every generator (GAN generator or VAE decoder) runs in eval mode, without gradients, in chunks so that a large
request never holds more than `chunk` images' activations at once. A conditional GAN takes its condition rows as
`labels`, an InfoGAN its structured codes as `info`; left out, each uses its own deterministic default input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from training.latent.priors import LatentDistribution, sample_latents

if TYPE_CHECKING:
    from training.bundle import Bundle

DEFAULT_CHUNK = 256


@dataclass(frozen=True)
class Samples:
    """Codes and the images they make. images: (n, C, H, W) float32 in [-1, 1] on the CPU."""

    codes: torch.Tensor
    images: torch.Tensor
    labels: torch.Tensor | None = None
    info: torch.Tensor | None = None

    @property
    def code_norms(self) -> torch.Tensor:
        """||z|| of every sample, the number the pages compare with the prior's typical norm."""
        return self.codes.norm(dim=1)


def _rows(tensor: torch.Tensor | None, start: int, stop: int) -> torch.Tensor | None:
    return None if tensor is None else tensor[start:stop]


def whole_batch_inputs(generator: torch.nn.Module, n: int, labels: torch.Tensor | None,
                       info: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The default condition rows / InfoGAN codes for the whole batch, made once: the generators' defaults
    count rows from 0, so letting each chunk make its own would repeat the first chunk's pattern."""
    if labels is None and hasattr(generator, "default_labels"):
        labels = generator.default_labels(n)
    if info is None and hasattr(generator, "default_codes"):
        info = generator.default_codes(n)
    return labels, info


def decode(bundle: Bundle, codes: torch.Tensor, *, labels: torch.Tensor | None = None,
           info: torch.Tensor | None = None, chunk: int = DEFAULT_CHUNK) -> torch.Tensor:
    """Images for the given codes (n, latent_dim); labels/info rows travel with their codes chunk by chunk."""
    generator = bundle.generator
    generator.eval()
    labels, info = whole_batch_inputs(generator, codes.shape[0], labels, info)
    extra_name = "labels" if labels is not None else "codes" if info is not None else None
    extra = labels if labels is not None else info
    out = []
    with torch.no_grad():
        for start in range(0, codes.shape[0], chunk):
            rows = codes[start:start + chunk]
            if extra_name is None:
                out.append(generator(rows))
            else:
                out.append(generator(rows, **{extra_name: _rows(extra, start, start + chunk)}))
    # contiguous(): a generator kept in channels-last memory order (the explorer's) returns NHWC-strided images.
    return torch.cat(out).contiguous() if out else torch.empty(0)


def sample_rows(bundle: Bundle, distribution: LatentDistribution, start: int, stop: int,
                seed: int | None = None) -> Samples:
    """Rows [start, stop) of sample(bundle, distribution, stop, seed), computed alone: the codes of a seed and the
    generators' default condition rows / InfoGAN codes count from row 0 whatever the batch size, so a batch can
    be made in pieces (and a piece reused by a larger or smaller batch)."""
    if not 0 <= start < stop:
        raise ValueError(f"need 0 <= start < stop, got [{start}, {stop})")
    codes = sample_latents(distribution, stop, bundle.latent_dim, seed=seed)[start:]
    labels, info = whole_batch_inputs(bundle.generator, stop, None, None)
    labels, info = _rows(labels, start, stop), _rows(info, start, stop)
    return Samples(codes, decode(bundle, codes, labels=labels, info=info), labels, info)


def join(pieces: list[Samples], n: int) -> Samples:
    """The first n rows of consecutive pieces (sample_rows) as one batch."""
    def rows(name: str) -> torch.Tensor | None:
        parts = [getattr(p, name) for p in pieces]
        return None if parts[0] is None else torch.cat(parts)[:n]
    return Samples(rows("codes"), rows("images"), rows("labels"), rows("info"))


def sample(bundle: Bundle, distribution: LatentDistribution, n: int, seed: int | None = None, *,
           labels: torch.Tensor | None = None, info: torch.Tensor | None = None,
           chunk: int = DEFAULT_CHUNK) -> Samples:
    """n codes drawn from `distribution` with `seed` (the same seed gives the same base noise for every
    distribution, see sample_latents) and the images the bundle's generator makes from them."""
    codes = sample_latents(distribution, n, bundle.latent_dim, seed=seed)
    labels, info = whole_batch_inputs(bundle.generator, n, labels, info)
    return Samples(codes, decode(bundle, codes, labels=labels, info=info, chunk=chunk), labels, info)
