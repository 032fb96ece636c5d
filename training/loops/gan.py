"""The adversarial training loop shared by DCGAN, the conditional GAN (ACGAN) and InfoGAN.

One step, with the defaults exactly the PyTorch DCGAN tutorial's:
  1. draw a real batch and z, make fakes G(z, extra inputs);
  2. if D is due this step (every `d_every`-th step), update D `d_steps` times (each extra update on a fresh
     batch): real -> 1 - label_smoothing, fake -> 0, targets flipped with probability label_flip, plus the
     family's extra terms (classification of real and fake for ACGAN, Q's code loss for InfoGAN);
     otherwise D is only evaluated, so the history still has D's numbers for every step;
  3. update G with the non-saturating loss (make D call the fakes real) plus the family's extra term.
What differs between families lives in the small `Game` classes below (each family's registry record names
its own); the loop is written once.
The losses see D through `_Critic`, whose one forward(x, heads=False) is what DistributedDataParallel wraps under
torchrun; G's own update goes through the unwrapped critic (D's gradients from it are thrown away anyway).
With --precision bf16 both networks run under autocast (speed.Autocast) and hand float32 outputs to the losses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from training.data.base import ImageDataset
from training.errors import LatentExplorerError
from training.loops.config import TrainConfig
from training.loops.run import Run
from training.models import cgan, dcgan, infogan, registry


def discriminator_targets(batch: int, smoothing: float, flip: float, generator: torch.Generator,
                          device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """D's targets for a real and a fake batch: real -> 1 - smoothing, fake -> 0, and with probability
    `flip` each target is swapped for the other side's (noisy labels: D can never be fully sure)."""
    real_value = 1.0 - smoothing
    real = torch.full((batch,), real_value)
    fake = torch.zeros(batch)
    if flip > 0:
        swap_real = torch.rand(batch, generator=generator) < flip
        swap_fake = torch.rand(batch, generator=generator) < flip
        real[swap_real] = 0.0
        fake[swap_fake] = real_value
    return real.to(device), fake.to(device)


class _Critic(nn.Module):
    """D as one forward: the real/fake logit, or with heads=True every head (`D.heads`) of the conditional
    families. DDP only sees calls of forward(), so the loop never calls `heads` behind its back."""

    def __init__(self, discriminator: nn.Module):
        super().__init__()
        self.d = discriminator

    def forward(self, x: torch.Tensor, heads: bool = False):
        return self.d.heads(x) if heads else self.d(x)


class Game:
    """DCGAN: G(z), D(x) -> one logit. The conditional families override the hooks."""

    def __init__(self, model_config, train_config: TrainConfig, run: Run, dataset: ImageDataset):
        self.model_config = model_config
        self.train_config = train_config
        self.run = run

    def bundle_entries(self) -> dict:
        """What config.json records about G's extra inputs, beside the model config."""
        return {}

    def inputs(self, labels: torch.Tensor, n: int) -> tuple[dict, object]:
        """Keyword arguments for G beyond z, and whatever the losses need to know about them."""
        return {}, None

    def d_loss(self, d: nn.Module, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor, extra: object,
               real_target: torch.Tensor, fake_target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                            torch.Tensor, dict]:
        logit_real, logit_fake = d(real), d(fake)
        loss = F.binary_cross_entropy_with_logits(logit_real, real_target) + \
            F.binary_cross_entropy_with_logits(logit_fake, fake_target)
        return loss, logit_real, logit_fake, {}

    def g_loss(self, d: nn.Module, fake: torch.Tensor, extra: object) -> tuple[torch.Tensor, dict]:
        logit = d(fake)
        return F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit)), {}


class ConditionalGame(Game):
    """ACGAN: G(z, labels); D(x) -> real/fake logit + one classifier per condition (the anime lab)."""

    def __init__(self, model_config: cgan.CGANConfig, train_config: TrainConfig, run: Run, dataset: ImageDataset):
        super().__init__(model_config, train_config, run, dataset)
        self.conditions = model_config.attributes()
        by_name = {a.name: (i, a) for i, a in enumerate(dataset.attributes)}
        columns = []
        for condition in self.conditions:
            if condition.name not in by_name or by_name[condition.name][1].values != condition.values:
                raise LatentExplorerError(
                    f"the model is conditioned on {condition.name!r} with values {list(condition.values)} but the "
                    f"dataset's attributes are {[a.to_json() for a in dataset.attributes]}"
                )
            columns.append(by_name[condition.name][0])
        self.columns = torch.tensor(columns, device=run.device)
        self.weight = train_config.class_weight
        self.value_weights = cgan.balancing_weights(
            torch.as_tensor(np.asarray(dataset.labels)[:, columns]), self.conditions) \
            if train_config.balance_classes else None

    def bundle_entries(self) -> dict:
        return {"conditions": list(self.model_config.conditions)}

    def inputs(self, labels: torch.Tensor, n: int) -> tuple[dict, object]:
        # Fakes are asked for the label rows of the real batch: the data's own mix of attribute values.
        wanted = labels.index_select(1, self.columns)
        return {"labels": wanted}, wanted

    def d_loss(self, d, real, fake, labels, extra, real_target, fake_target):
        logit_real, aux_real = d(real, heads=True)
        logit_fake, aux_fake = d(fake, heads=True)
        wanted = labels.index_select(1, self.columns)
        class_real = cgan.classification_loss(aux_real, wanted, self.conditions, self.value_weights)
        classes = class_real
        if self.train_config.classify_fakes:
            classes = classes + cgan.classification_loss(aux_fake, extra, self.conditions, self.value_weights)
        loss = F.binary_cross_entropy_with_logits(logit_real, real_target) + \
            F.binary_cross_entropy_with_logits(logit_fake, fake_target) + self.weight * classes
        return loss, logit_real, logit_fake, {
            "class_real": class_real.item(),
            "acc_real": cgan.classification_accuracy(aux_real, wanted, self.conditions),
        }

    def g_loss(self, d, fake, extra):
        logit, aux = d(fake, heads=True)
        class_fake = cgan.classification_loss(aux, extra, self.conditions, self.value_weights)
        loss = F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit)) + self.weight * class_fake
        return loss, {"class_fake": class_fake.item(),
                      "acc_fake": cgan.classification_accuracy(aux, extra, self.conditions)}


class InfoGame(Game):
    """InfoGAN: G(z, codes); D(x) -> real/fake logit + Q's guess of the codes."""

    def __init__(self, model_config: infogan.InfoGANConfig, train_config: TrainConfig, run: Run,
                 dataset: ImageDataset):
        super().__init__(model_config, train_config, run, dataset)
        self.weight = train_config.info_weight

    def bundle_entries(self) -> dict:
        return {"codes": self.model_config.code_layout()}

    def inputs(self, labels: torch.Tensor, n: int) -> tuple[dict, object]:
        categories, continuous = infogan.sample_codes(n, self.model_config, self.run.code_rng)
        categories, continuous = categories.to(self.run.device), continuous.to(self.run.device)
        codes = infogan.make_codes(categories, continuous, self.model_config)
        return {"codes": codes}, (categories, continuous)

    def d_loss(self, d, real, fake, labels, extra, real_target, fake_target):
        logit_real = d(real)
        logit_fake, q = d(fake, heads=True)
        info, _ = infogan.info_loss(q, *extra, self.model_config)
        loss = F.binary_cross_entropy_with_logits(logit_real, real_target) + \
            F.binary_cross_entropy_with_logits(logit_fake, fake_target) + self.weight * info
        return loss, logit_real, logit_fake, {}

    def g_loss(self, d, fake, extra):
        logit, q = d(fake, heads=True)
        info, accuracy = infogan.info_loss(q, *extra, self.model_config)
        loss = F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit)) + self.weight * info
        values = {"loss_info": info.item()}
        if self.model_config.categorical_codes:
            values["info_acc"] = accuracy
        return loss, values


class AdversarialSteps:
    """A GAN run set up and ready: `self(step)` is one training step and returns its logged numbers.
    training.loops.trainer repeats it; `python -m training.bench` times it, and may swap `batches` for batches
    already in memory."""

    def __init__(self, family: str, dataset: ImageDataset, model_config, train_config: TrainConfig,
                 out: str | Path, source: dict | None = None, progress: bool = True, name: str | None = None,
                 resume: bool = False, keep_training_state: bool = False):
        record = registry.family(family)
        self.run = run = Run(family, record.display, dataset, model_config, train_config, out,
                             record.history_keys(model_config), source, name, progress, resume=resume,
                             keep_training_state=keep_training_state)
        self.config = train_config
        self.game = record.game_class()(model_config, train_config, run, dataset)
        networks = record.build(model_config, training=True)
        self.generator, self.discriminator = (networks[n].to(run.device) for n in ("generator", "discriminator"))
        self.generator.apply(dcgan.weights_init)
        self.discriminator.apply(dcgan.weights_init)
        betas = (train_config.beta1, train_config.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=train_config.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=train_config.lr_d, betas=betas)
        self.networks = {"generator": self.generator, "discriminator": self.discriminator}
        run.bundle_config.update(self.game.bundle_entries())
        self.batches = run.start(self.networks, {"generator": self.opt_g, "discriminator": self.opt_d},
                                 self.generator)
        self.g = run.parallel(run.mixed(self.generator))
        self.critic = run.mixed(_Critic(self.discriminator))
        self.d = run.parallel(self.critic)

    def targets(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return discriminator_targets(n, self.config.label_smoothing, self.config.label_flip, self.run.flip_rng,
                                     self.run.device)

    def update_d(self, real, fake, labels, extra) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        real_target, fake_target = self.targets(real.shape[0])
        self.opt_d.zero_grad(set_to_none=True)
        result = self.game.d_loss(self.d, real, fake, labels, extra, real_target, fake_target)
        result[0].backward()
        self.opt_d.step()
        return result

    def __call__(self, step: int) -> dict[str, float]:
        game, run, g = self.game, self.run, self.g
        d_updates = self.config.d_steps if (step - 1) % self.config.d_every == 0 else 0
        for _ in range(d_updates - 1):  # extra D updates, each on its own batch
            real, labels = next(self.batches)
            kwargs, extra = game.inputs(labels, real.shape[0])
            with torch.no_grad():
                fake = g(run.sample_noise(real.shape[0]), **kwargs)
            self.update_d(real, fake, labels, extra)
        real, labels = next(self.batches)
        z = run.sample_noise(real.shape[0])
        kwargs, extra = game.inputs(labels, real.shape[0])
        fake = g(z, **kwargs)
        if d_updates:
            loss_d, logit_real, logit_fake, d_values = self.update_d(real, fake.detach(), labels, extra)
        else:  # D rests this step: measure it anyway so every step has D's numbers
            with torch.no_grad():
                loss_d, logit_real, logit_fake, d_values = game.d_loss(
                    self.d, real, fake.detach(), labels, extra, *self.targets(real.shape[0]))
        self.opt_g.zero_grad(set_to_none=True)
        loss_g, g_values = game.g_loss(self.critic, fake, extra)
        loss_g.backward()
        self.opt_g.step()
        return {"loss_g": loss_g.item(), "loss_d": loss_d.item(),
                "d_real": torch.sigmoid(logit_real).mean().item(),
                "d_fake": torch.sigmoid(logit_fake).mean().item(), **d_values, **g_values}

    def finish(self) -> Path:
        """The final bundle, written by Run.finish with this run's networks."""
        return self.run.finish(self.networks)

