"""A loaded, validated bundle: its config, networks, history and metrics, and what the pages ask of it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.attributes import Attribute
from training.bundle.format import LATENTS_FILE, SNAPSHOT_DIR, entry_is, present, shorten
from training.bundle.latents_file import MAX_LATENTS_BYTES, read_latents
from training.latent.priors import STANDARD_NORMAL, LatentDistribution
from training.models import registry


@dataclass
class Bundle:
    """A loaded, validated bundle. Networks are in eval mode on the CPU."""

    path: Path
    config: dict
    networks: dict[str, torch.nn.Module]
    history: dict[str, list[float]] = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    @property
    def family(self) -> str:
        return self.config["family"]

    @property
    def name(self) -> str:
        return self.config.get("name") or f"{self.config['dataset']['name']}/{self.family}"

    @property
    def capabilities(self) -> registry.Capabilities:
        return registry.capabilities(self.family)

    @property
    def model_config(self) -> Any:
        return registry.model_config(self.family, self.config["model"])

    @property
    def generator(self) -> torch.nn.Module:
        """The network that maps codes to images (the GAN generator or the VAE decoder)."""
        return self.networks[registry.generator_name(self.family)]

    @property
    def encoder(self) -> torch.nn.Module | None:
        """The VAE's encoder (x -> (mu, logvar)); None for the GAN families."""
        return self.networks.get("encoder")

    @property
    def conditions(self) -> tuple[Attribute, ...]:
        """What a conditional GAN's generator takes as `labels` columns, in order; () for other families."""
        if not self.capabilities.conditional:
            return ()
        return tuple(Attribute.from_json(a) for a in self.config["model"]["conditions"])

    @property
    def codes(self) -> list[dict]:
        """An InfoGAN's code layout (name, kind, [start, stop) slots in the generator input); [] otherwise."""
        if not self.capabilities.info_codes:
            return []
        return self.model_config.code_layout()

    @property
    def latent_dim(self) -> int:
        return int(self.config["model"]["latent_dim"])

    @property
    def prior(self) -> LatentDistribution:
        """The distribution the model was trained to decode (N(0,1) unless training said otherwise)."""
        data = self.config.get("prior")
        return LatentDistribution.from_json(data) if data else STANDARD_NORMAL

    @property
    def attributes(self) -> tuple[Attribute, ...]:
        return tuple(Attribute.from_json(a) for a in self.config["dataset"].get("attributes", []))

    def snapshot_paths(self) -> dict[int, Path]:
        """Fixed-noise grids saved during training, by step: the bundle's own files only (snapshot_problem says
        what was left out)."""
        return self._snapshots()[0]

    def snapshot_problem(self) -> str | None:
        """One sentence on the snapshots left out because they are symbolic links, or None when none was."""
        refused = self._snapshots()[1]
        if not refused:
            return None
        shown = ", ".join(refused[:3]) + (f" and {len(refused) - 3} more" if len(refused) > 3 else "")
        return (f"{self.path / SNAPSHOT_DIR}: {len(refused)} snapshot{'s' if len(refused) > 1 else ''} left out "
                f"({shorten(shown, 200)}): a snapshot must be a file inside the bundle, not a symbolic link")

    def _snapshots(self) -> tuple[dict[int, Path], list[str]]:
        """(step -> PNG, names refused). A symbolic link is refused, the snapshots folder's own included: every
        visitor sees a bundle's snapshots, so a link would show them any picture the server may read."""
        folder = self.path / SNAPSHOT_DIR
        found, refused = {}, []
        try:
            if folder.is_symlink():
                return {}, [f"{SNAPSHOT_DIR}/ itself"]
            if not folder.is_dir():
                return {}, []
            with os.scandir(folder) as listing:
                entries = [e for e in listing if e.name.startswith("step_") and e.name.endswith(".png")]
        except OSError:  # a snapshots folder this process may not read: no snapshots, the rest still works
            return {}, []
        for entry in entries:
            try:
                step = int(entry.name[:-len(".png")].split("_")[1])
            except (IndexError, ValueError):
                continue
            if entry_is(entry, "link"):
                refused.append(entry.name)
            elif entry_is(entry, "file"):
                found[step] = folder / entry.name
        return dict(sorted(found.items())), sorted(refused)

    def latents(self) -> dict[str, np.ndarray] | None:
        """Encoded held-out codes and labels (VAE bundles), loaded without pickle and checked (latents_file)."""
        file = self.path / LATENTS_FILE
        if not present(file):
            return None
        source = self.config["dataset"].get("source") or {}
        num_images = source.get("num_images") if isinstance(source.get("num_images"), int) else None
        return read_latents(file, self.latent_dim, self.config["dataset"].get("image_size"), num_images,
                            max_bytes=MAX_LATENTS_BYTES)
