"""A live run's settings: what is fixed when it starts (data, family, sizes) and the knobs that may change while
it is paused, and how they become the trainer's configs."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from training.errors import LatentExplorerError
from training.latent.priors import LatentDistribution
from training.models import registry

DATASETS = ("toyfaces", "fashion-mnist", "celeba", "anime")
IMAGE_SIZES = (32, 64)
ACTIVATIONS = ("relu", "leaky_relu")
# "D updates per G update" as the page offers it: (d_every, d_steps) of TrainConfig.
D_RATIOS = {"1/4": (4, 1), "1/3": (3, 1), "1/2": (2, 1), "1": (1, 1), "2": (1, 2), "3": (1, 3), "5": (1, 5)}
# A conditional GAN on CelebA conditions on a few attributes that are easy to see, not all 40.
CONDITIONS = {"celeba": ["Smiling", "Male", "Eyeglasses"]}
# Where the datasets' folders usually sit under a data root (the shipped bundles record celeba64 and anime64).
FOLDERS = {"celeba": ("celeba64", "celeba"), "anime": ("anime64", "anime")}
# A live run is never planned to end by its step count: the user stops it, or the time limit does.
MAX_STEPS = 1_000_000
SNAPSHOT_STEPS = (0, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)
DIVERGE_PATIENCE = 300  # steps with D(G(z)) < 1e-3 before the run pauses: short enough to see within a lesson


@dataclass
class LiveSettings:
    """Everything the page asks for. Field names follow TrainConfig where they mean the same thing."""

    dataset: str = "toyfaces"
    family: str = registry.LIVE[0]  # the first family Train live offers (DCGAN)
    image_size: int = 32
    latent_dim: int = 100
    g_activation: str = "relu"
    width: int = 32  # G and D (VAE: decoder and encoder) width, ngf = ndf
    batch_size: int = 64
    num_images: int = 4096
    data_root: str = ""
    seed: int = 0
    # The knobs a paused run may change (each family's registry record says which: live_knobs).
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    d_ratio: str = "1"
    label_smoothing: float = 0.0
    label_flip: float = 0.0
    class_weight: float = 1.0
    noise: str = "N(0,1)"
    kl_weight: float = 1e-4

    def validate(self) -> None:
        problems = []
        if self.dataset not in DATASETS:
            problems.append(f"dataset must be one of {', '.join(DATASETS)}, not {self.dataset!r}")
        if self.family not in registry.LIVE:
            problems.append(f"family must be one of {', '.join(registry.LIVE)}, not {self.family!r}")
        if self.image_size not in IMAGE_SIZES:
            problems.append(f"image size must be one of {IMAGE_SIZES}, not {self.image_size}")
        if self.g_activation not in ACTIVATIONS:
            problems.append(f"activation must be one of {', '.join(ACTIVATIONS)}, not {self.g_activation!r}")
        for name, low, high in (("latent_dim", 2, 512), ("width", 4, 128), ("batch_size", 2, 512),
                                ("num_images", 16, 300_000)):
            if not low <= getattr(self, name) <= high:
                problems.append(f"{name.replace('_', ' ')} must be between {low} and {high}, not {getattr(self, name)}")
        if self.num_images < self.batch_size:
            problems.append(f"the {self.num_images} training images are fewer than one batch of {self.batch_size}")
        if registry.trains_as_vae(self.family) and self.noise_distribution() != LatentDistribution.normal(0, 1):
            problems.append("a VAE's prior is N(0,1) by construction (its KL term pulls the codes there)")
        if problems:
            raise LatentExplorerError("cannot start this run: " + "; ".join(problems))
        self.train_config().validate()
        if not (math.isfinite(self.kl_weight) and 0 <= self.kl_weight <= 10):
            raise LatentExplorerError(f"the KL weight must be between 0 and 10, not {self.kl_weight}")

    def noise_distribution(self) -> LatentDistribution:
        return LatentDistribution.parse(self.noise)

    def train_config(self):
        """The TrainConfig the loops read (imported here: the app lists bundles without loading the trainer)."""
        from training.loops.config import TrainConfig

        if self.d_ratio not in D_RATIOS:
            raise LatentExplorerError(f"D updates per G update must be one of {', '.join(D_RATIOS)}, "
                                      f"not {self.d_ratio!r}")
        d_every, d_steps = D_RATIOS[self.d_ratio]
        return TrainConfig(
            steps=MAX_STEPS, batch_size=self.batch_size, lr_g=self.lr_g, lr_d=self.lr_d, seed=self.seed,
            noise=self.noise_distribution().to_json(), snapshot_steps=SNAPSHOT_STEPS, checkpoint_every=MAX_STEPS,
            device="cpu", d_every=d_every, d_steps=d_steps, label_smoothing=self.label_smoothing,
            label_flip=self.label_flip, class_weight=self.class_weight, diverge_patience=DIVERGE_PATIENCE,
        )

    def model_config(self, attributes=()):
        """The family's model config (a conditional GAN needs the dataset's attributes to pick its conditions)."""
        from training.models.cgan import CGANConfig
        from training.models.dcgan import DCGANConfig
        from training.models.vae import VAEConfig

        sizes = dict(latent_dim=self.latent_dim, image_size=self.image_size, g_width=self.width, d_width=self.width,
                     g_activation=self.g_activation)
        if registry.trains_as_vae(self.family):
            return VAEConfig(**sizes, kl_weight=self.kl_weight)
        if registry.capabilities(self.family).conditional:
            return CGANConfig.for_dataset(attributes, CONDITIONS.get(self.dataset), **sizes)
        return DCGANConfig(**sizes)

    def knobs(self) -> dict:
        """The knobs this family may change while paused, with their current values."""
        return {name: getattr(self, name) for name in registry.family(self.family).live_knobs}

    def changed(self, **values) -> tuple[LiveSettings, dict[str, tuple]]:
        """A copy with the given knobs set, and {knob: (old, new)} for those that really changed. A knob this family
        cannot change while training, or an impossible value, raises LatentExplorerError."""
        fixed = [k for k in values if k not in registry.family(self.family).live_knobs]
        if fixed:
            raise LatentExplorerError(f"{', '.join(fixed)} cannot change during a "
                                      f"{registry.family(self.family).display} run; "
                                      "stop it and start a new one")
        new = LiveSettings(**{**asdict(self), **values})
        new.validate()
        return new, {k: (getattr(self, k), v) for k, v in values.items() if getattr(self, k) != v}

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(data: dict) -> LiveSettings:
        known = {f.name for f in fields(LiveSettings)}
        return LiveSettings(**{k: v for k, v in data.items() if k in known})

    def title(self) -> str:
        return f"{self.dataset} {registry.family(self.family).display}"


def data_folder(dataset: str, data_root: str = "") -> str | None:
    """The folder load_dataset should read `dataset` from: the root's celeba64/ (or celeba/) folder, else the root
    itself; with no root, the environment's (training.data.location), else None (toyfaces; Fashion-MNIST then
    looks in its install places). A dataset that cannot be found raises LatentExplorerError saying how to give it."""
    from training.data.location import find_dataset_folder

    if dataset == "toyfaces":
        return None
    ask = ('the {name} images are not on this server: type the folder that holds your {folder} folder in the '
           'sidebar box "Folder of your datasets"')
    names = FOLDERS.get(dataset, (dataset,))
    root = Path(data_root.strip()).expanduser() if data_root.strip() else None
    for folder in names:
        if root is not None and (root / folder).is_dir():
            return str(root / folder)
    if root is not None:
        return str(root)
    for folder in names:
        try:
            found = find_dataset_folder({"name": dataset, "folder": folder}, None, ask)
        except LatentExplorerError:
            if folder == names[-1]:
                raise
            continue
        return None if found is None else str(found)
    return None


def fashion_mnist_missing(data_root: str = "") -> str | None:
    """Why Fashion-MNIST cannot be trained on here (with how to install it), or None when its files are found."""
    from training.data.fashion_mnist import find_files

    root = data_root.strip() or os.environ.get("LATENT_EXPLORER_FASHION_MNIST_ROOT", "").strip() or None
    try:
        find_files(root)
    except LatentExplorerError:
        return ("Fashion-MNIST is not installed on this server. Install Debian's package "
                "(`sudo apt-get install dataset-fashion-mnist`, which puts its four IDX files in "
                "/usr/share/datasets/fashion-mnist), or type the folder that holds train-images-idx3-ubyte.gz and "
                'its label file in the sidebar box "Folder of your datasets".')
    return None
