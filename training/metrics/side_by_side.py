"""Generators of one dataset scored side by side, as `evaluate` scores each (same feature network, same held-out real
images, same codes, the same rows of figures with intervals), in short steps: a page shows a progress bar between
them, and the other requests to its one torch thread run in between instead of waiting a minute.

The collapse references of `evaluate` (N(-10,1), U(0,1)) are left out: they are about one model, and would triple
the time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from training.bundle import Bundle
from training.data.base import ImageDataset
from training.errors import LatentExplorerError
from training.latent import sampling
from training.latent.priors import sample_latents
from training.metrics import scoring
from training.metrics.evaluate import condition_rows, featurenet_for, held_out_subsets, result_record
from training.metrics.features import BATCH, real_features
from training.metrics.real import load_real_for_bundle
from training.models.featurenet import to_input

FLOOR = "real_floor"
_DONE = object()  # what the steps give once there are none left


@torch.no_grad()
def _generated_chunk(bundle: Bundle, net, codes: torch.Tensor, labels: torch.Tensor | None,
                     info: torch.Tensor | None) -> torch.Tensor:
    images = sampling.decode(bundle, codes, labels=labels, info=info, chunk=len(codes))
    return net.features(to_input(images, net.config))


class SideBySide:
    """Score each of `models` (name -> bundle, all of one dataset) against the first one's real images, with the
    dataset's feature network (checkpoints/<dataset>/featurenet unless `featurenet` names another).

    `known` holds rows already computed with the same settings (name or "real_floor" -> row, from an earlier
    scoring of a shipped model): they are kept, not computed again. Call run() until finished, then result(name)."""

    def __init__(self, models: dict[str, Bundle], samples: int, seed: int = 0, data_root: str | Path | None = None,
                 featurenet: str | Path | None = None, k: int = scoring.DEFAULT_K,
                 set_size: int = scoring.DEFAULT_SET_SIZE, batch_size: int = BATCH,
                 known: dict[str, dict] | None = None):
        if not models:
            raise LatentExplorerError("nothing to score")
        datasets = {bundle.config["dataset"]["name"] for bundle in models.values()}
        if len(datasets) > 1:
            raise LatentExplorerError(f"models of different datasets ({', '.join(sorted(datasets))}) cannot be "
                                      "scored side by side")
        scoring.set_size_for(samples, samples, k, set_size)  # refuse a hopeless count before any work
        self.models, self.samples, self.seed, self.data_root = models, samples, seed, data_root
        self.featurenet = featurenet
        self.k, self.wanted_set_size, self.batch_size = k, set_size, batch_size
        self.rows: dict[str, dict] = dict(known or {})
        self.stage = "loading the feature network and the real images"
        self.done, self.total = 0, 1  # steps; the total is known once the real images are
        self.seconds = 0.0
        self._work = self._steps()
        self._finished = False

    @property
    def finished(self) -> bool:
        return self._finished

    def run(self, steps: int = 1) -> float:
        """Do up to `steps` steps (each a batch of images or one row of scores); the share done so far."""
        started = time.perf_counter()
        for _ in range(steps):
            if next(self._work, _DONE) is _DONE:
                self._finished = True
                break
        self.seconds += time.perf_counter() - started
        return 1.0 if self._finished else min(self.done / self.total, 0.99)

    def _steps(self) -> Iterator[None]:
        first = next(iter(self.models.values()))
        self.net, self.net_bundle = featurenet_for(first, self.featurenet)  # one dataset, one feature network
        self.net.eval()
        self.real = load_real_for_bundle(first.config, data_root=self.data_root, n_test=self.samples)
        self.n_real, train_index, test_index = held_out_subsets(self.real, self.samples, self.seed)
        self.set_size = scoring.set_size_for(self.samples, self.n_real, self.k, self.wanted_set_size)
        batches = -(-self.n_real // self.batch_size)
        to_generate = [name for name in self.models if name not in self.rows]
        self.total = 1 + batches * (2 if FLOOR not in self.rows else 1) + len(to_generate) * (
            -(-self.samples // self.batch_size) + 1) + (FLOOR not in self.rows)
        self.done = 1
        yield

        test = yield from self._real("held-out real images", self.real.test, test_index)
        if FLOOR not in self.rows:
            train = yield from self._real("training images", self.real.train, train_index)
            self.stage = "scoring real training images against held-out ones (the floor)"
            self.rows[FLOOR] = {"latent": None, "description": "floor: real training images vs held-out real images",
                                **scoring.score_row(test, train, self.k, self.set_size, self.seed)}
            self.done += 1
            yield
        for name in to_generate:
            bundle = self.models[name]
            codes = sample_latents(bundle.prior, self.samples, bundle.latent_dim, seed=self.seed)
            labels, _ = condition_rows(bundle, self.real.test, self.samples, self.seed)
            labels, info = sampling.whole_batch_inputs(bundle.generator, self.samples, labels, None)
            parts = []
            for start in range(0, self.samples, self.batch_size):
                stop = min(start + self.batch_size, self.samples)
                self.stage = f"{name}: generated images {start + 1}-{stop} of {self.samples}"
                rows = slice(start, start + self.batch_size)
                parts.append(_generated_chunk(bundle, self.net, codes[rows], None if labels is None else labels[rows],
                                              None if info is None else info[rows]))
                self.done += 1
                yield
            self.stage = f"{name}: scoring against the held-out real images"
            self.rows[name] = {"latent": bundle.prior.label, "description": "the model, z from its training prior",
                               **scoring.score_row(test, torch.cat(parts), self.k, self.set_size, self.seed)}
            self.done += 1
            yield

    def _real(self, what: str, dataset: ImageDataset, index: np.ndarray) -> Iterator[None]:
        index = np.sort(index)  # as real_features orders them: the same batches as `evaluate`
        parts = []
        for start in range(0, len(index), self.batch_size):
            self.stage = f"{what}: {start + 1}-{min(start + self.batch_size, len(index))} of {len(index)}"
            parts.append(real_features(self.net, dataset, index[start:start + self.batch_size], self.batch_size))
            self.done += 1
            yield
        return torch.cat(parts)

    def result(self, name: str) -> dict:
        """What `evaluate` would store in metrics.json for this model with these settings, without the collapse
        references."""
        if not self._finished:
            raise LatentExplorerError("the scoring has not finished")
        bundle = self.models[name]
        record = result_record(bundle, self.net, self.net_bundle, self.real, self.samples, self.n_real, self.seed,
                               self.k, self.set_size, {"model": self.rows[name], FLOOR: self.rows[FLOOR]})
        return {**record, "seconds": round(self.seconds, 1), "versions": {"torch": torch.__version__},
                "scored_beside": [self.models[other].name for other in self.models if other != name]}
