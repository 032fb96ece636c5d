"""GAN inversion: find the code z whose image G(z) is closest to a given photo.

A GAN has no encoder, so the code is searched for (Zhu et al. 2016, "Generative Visual Manipulation on the
Natural Image Manifold"; Creswell & Bharath 2018): score `candidates` random codes from the prior, keep the best
`starts` of them, and run Adam on each for `steps` steps, minimising

    loss(z) = mean over pixels (G(z) - x)^2  +  feature_weight * |f(G(z)) - f(x)|^2 / |f(x)|^2

where f is the dataset's feature network (checkpoints/<dataset>/featurenet: its penultimate layer, the space of
our FD and precision/recall). Pixels alone pull towards a blurry average; the feature term asks for the same hair,
glasses and smile. Several starts matter because the loss has many local minima. The code is left free: how far
the best one strays from the prior's typical length is part of the answer (training.latent.typicality).

Everything runs in eval mode with gradients for z only; the networks are never changed. `Inverter.run(k)` does k
steps and returns, so a page can show progress between calls; `invert` runs it all with a progress callback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from training.errors import LatentExplorerError
from training.latent.priors import LatentDistribution, sample_latents
from training.models.featurenet import FeatureNet, to_input

SCORE_CHUNK = 64


@dataclass(frozen=True)
class InversionSettings:
    starts: int = 4  # codes optimised side by side
    candidates: int = 64  # random codes scored first; the best `starts` are where Adam begins
    steps: int = 50
    lr: float = 0.05
    feature_weight: float = 1.0
    seed: int = 0

    def validate(self) -> None:
        if not 1 <= self.starts <= self.candidates:
            raise LatentExplorerError(f"need 1 to {self.candidates} starts (the candidates), got {self.starts}")
        if not 0 <= self.steps <= 10_000 or not 0 < self.lr <= 10 or self.feature_weight < 0:
            raise LatentExplorerError("inversion settings out of range: steps 0..10000, lr in (0, 10], "
                                      "feature weight >= 0")


@dataclass(frozen=True)
class Fit:
    """One code and how close its image is to the photo."""

    code: torch.Tensor  # (d,)
    image: torch.Tensor  # (1, C, H, W) in [-1, 1]
    pixel_mse: float  # pixels in [-1, 1]
    feature_distance: float | None  # Euclidean, in the feature network's space (8-bit images, as the metrics)


@dataclass(frozen=True)
class InversionResult:
    best: Fit  # the optimised code with the lowest loss
    best_random: Fit  # the best of the random candidates: what the search added is the difference
    losses: list[float]  # the best start's loss after each step
    settings: InversionSettings


def feature_distance(net: FeatureNet, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between the feature vectors of images a (n, C, H, W) and b (1 or n, ...)."""
    with torch.no_grad():
        return (net.features(to_input(a, net.config)) - net.features(to_input(b, net.config))).norm(dim=1)


class Inverter:
    """The search for one photo, step by step (see the module docstring)."""

    def __init__(self, generator: nn.Module, target: torch.Tensor, prior: LatentDistribution, latent_dim: int,
                 featurenet: FeatureNet | None = None, settings: InversionSettings | None = None):
        settings = settings or InversionSettings()
        settings.validate()
        generator.eval()
        if featurenet is not None:
            featurenet.eval()
        self.generator, self.featurenet, self.settings, self.prior = generator, featurenet, settings, prior
        self.target = target.float()
        if self.target.dim() != 4 or self.target.shape[0] != 1:
            raise LatentExplorerError(f"invert one image (1, C, H, W) at a time, got {tuple(target.shape)}")
        with torch.no_grad():
            made = generator(torch.zeros(1, latent_dim))
        if made.shape != self.target.shape:
            raise LatentExplorerError(f"the generator makes images of shape {tuple(made.shape[1:])}, the photo is "
                                      f"{tuple(self.target.shape[1:])}")
        self.target_features = None
        if featurenet is not None:
            with torch.no_grad():
                self.target_features = featurenet.features(to_input(self.target, featurenet.config, quantise=False))
        candidates = sample_latents(prior, settings.candidates, latent_dim, seed=settings.seed)
        with torch.no_grad():
            scores = torch.cat([self._loss(candidates[i:i + SCORE_CHUNK])
                                for i in range(0, len(candidates), SCORE_CHUNK)])
        order = scores.argsort()
        self.random_code = candidates[order[0]].clone()
        self.z = candidates[order[:settings.starts]].clone().requires_grad_(True)
        self.best_z = self.z.detach().clone()
        self.best_loss = scores[order[:settings.starts]].clone()
        self.optimiser = torch.optim.Adam([self.z], lr=settings.lr)
        self.losses: list[float] = []

    def _loss(self, z: torch.Tensor) -> torch.Tensor:
        """Loss per code (n,)."""
        images = self.generator(z)
        loss = (images - self.target).pow(2).mean(dim=(1, 2, 3))
        if self.featurenet is not None and self.settings.feature_weight > 0:
            features = self.featurenet.features(to_input(images, self.featurenet.config, quantise=False))
            relative = (features - self.target_features).pow(2).sum(1) / self.target_features.pow(2).sum().clamp_min(
                1e-12)
            loss = loss + self.settings.feature_weight * relative
        return loss

    @property
    def done(self) -> int:
        return len(self.losses)

    @property
    def finished(self) -> bool:
        return self.done >= self.settings.steps

    def run(self, steps: int) -> float:
        """Up to `steps` more Adam steps; returns the share of all steps done."""
        with torch.enable_grad():
            for _ in range(min(steps, self.settings.steps - self.done)):
                loss = self._loss(self.z)
                (grad,) = torch.autograd.grad(loss.sum(), self.z)  # gradients for z only, never for the networks
                with torch.no_grad():
                    better = loss.detach() < self.best_loss
                    self.best_z[better] = self.z.detach()[better]
                    self.best_loss = torch.minimum(self.best_loss, loss.detach())
                self.z.grad = grad
                self.optimiser.step()
                self.losses.append(float(self.best_loss.min()))
        return self.done / self.settings.steps if self.settings.steps else 1.0

    def _fit(self, code: torch.Tensor) -> Fit:
        with torch.no_grad():
            image = self.generator(code[None])
            distance = (float(feature_distance(self.featurenet, image, self.target)[0])
                        if self.featurenet is not None else None)
        return Fit(code.clone(), image, float((image - self.target).pow(2).mean()), distance)

    def result(self) -> InversionResult:
        with torch.no_grad():  # the last step's codes have not been scored yet
            final = self._loss(self.z.detach())
            better = final < self.best_loss
            self.best_z[better] = self.z.detach()[better]
            self.best_loss = torch.minimum(self.best_loss, final)
        best = self.best_z[int(self.best_loss.argmin())]
        return InversionResult(self._fit(best), self._fit(self.random_code), list(self.losses), self.settings)


def invert(generator: nn.Module, target: torch.Tensor, prior: LatentDistribution, latent_dim: int,
           featurenet: FeatureNet | None = None, settings: InversionSettings | None = None,
           progress: Callable[[float], None] | None = None, chunk: int = 10) -> InversionResult:
    """The whole search for one photo (1, C, H, W) in [-1, 1]; progress(share done) after every `chunk` steps."""
    inverter = Inverter(generator, target, prior, latent_dim, featurenet, settings)
    while not inverter.finished:
        share = inverter.run(chunk)
        if progress is not None:
            progress(share)
    return inverter.result()
