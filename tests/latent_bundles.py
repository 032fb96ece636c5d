"""Tiny bundles for the attribute, latent-map and comparison page tests: trained a few steps on 48 toy faces
at 32x32, laid out like the shipped checkpoints (<root>/toyfaces/{vae,cgan,dcgan,infogan,featurenet})."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "explorer" / "app.py")
# The app's checkpoints folder (checkpoints/, or $LATENT_EXPLORER_CHECKPOINTS) holds the "shipped" bundles.
SHIPPED = Path(os.environ.get("LATENT_EXPLORER_CHECKPOINTS", REPO / "checkpoints")) / "toyfaces"
SOURCE = {"name": "toyfaces", "num_images": 48, "seed": 5, "image_size": 32}


def tiny_faces():
    from training.data.base import ImageDataset
    from training.data.toyfaces import ATTRIBUTES, generate_toyfaces

    images, labels = generate_toyfaces(48, seed=5, size=32, workers=1)
    return ImageDataset("toyfaces", images, labels, ATTRIBUTES)


def train_tiny(family: str, out: Path, faces, **model) -> Path:
    from training.loops.config import TrainConfig
    from training.loops.trainer import train
    from training.models.cgan import CGANConfig
    from training.models.dcgan import DCGANConfig
    from training.models.infogan import InfoGANConfig
    from training.models.vae import VAEConfig

    sizes = dict(latent_dim=16, image_size=32, g_width=8, d_width=8)
    config = {
        "vae": lambda: VAEConfig(**sizes),
        "dcgan": lambda: DCGANConfig(**sizes),
        "cgan": lambda: CGANConfig.for_dataset(faces.attributes, **sizes),
        "infogan": lambda: InfoGANConfig(**sizes, categorical_codes=[3], continuous_codes=2, q_width=8),
    }[family]()
    # Half the faces held out: the VAE's latents.npz then holds 24 codes, enough for a t-SNE and directions.
    train_config = TrainConfig(steps=3, batch_size=16, snapshot_steps=(0,), checkpoint_every=100, holdout_fraction=0.5)
    return train(family, faces, config, train_config, out, source=SOURCE, progress=False, name=f"tiny {family}")


def tiny_featurenet(out: Path, faces) -> Path:
    """An untrained feature network bundle: its guesses are arbitrary, but the pages' wiring is real."""
    from training.bundle import save_bundle
    from training.models.featurenet import FeatureNet, FeatureNetConfig

    model = FeatureNetConfig(image_size=32, width=4, heads=[len(a.values) for a in faces.attributes])
    config = {"name": "tiny featurenet", "family": "featurenet", "model": asdict(model),
              "dataset": {"name": "toyfaces", "image_size": 32,
                          "attributes": [a.to_json() for a in faces.attributes], "source": SOURCE},
              "accuracy": {a.name: 0.5 for a in faces.attributes}}
    return save_bundle(out, config, {"featurenet": FeatureNet(model).eval()})


def make_root(root: Path, families: tuple[str, ...], featurenet: bool = True) -> Path:
    faces = tiny_faces()
    for family in families:
        train_tiny(family, root / "toyfaces" / family, faces)
    if featurenet:
        tiny_featurenet(root / "toyfaces" / "featurenet", faces)
    return root


def use_checkpoints(monkeypatch, root: Path) -> None:
    """Point the app at these bundles, as if they were the shipped ones."""
    from explorer.core import bundles

    monkeypatch.setattr(bundles, "CHECKPOINTS", Path(root))


def shipped(*families: str):
    """Skip unless every named shipped bundle (checkpoints/toyfaces/<family>) exists."""
    missing = [f for f in families if not (SHIPPED / f / "config.json").exists()]
    return pytest.mark.skipif(bool(missing), reason=f"shipped bundles not there yet: {SHIPPED}/"
                              f"{{{','.join(missing)}}} (they land when the real trainings finish)")


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def metric_labels(at) -> list[str]:
    return [m.label for m in at.metric]


def shared_root(tmp_path_factory) -> Path:
    """One set of tiny bundles per test session, shared by the page tests (they only read it)."""
    root = tmp_path_factory.getbasetemp() / "latent-pages-bundles"
    if not (root / "toyfaces" / "featurenet" / "config.json").exists():
        make_root(root, ("vae", "cgan", "dcgan", "infogan"))
    return root


def copy_root(root: Path, dest: Path, families: tuple[str, ...]) -> Path:
    """A private copy holding only some of the shared bundles (a test that edits or removes files uses one)."""
    import shutil

    for family in families:
        shutil.copytree(root / "toyfaces" / family, dest / "toyfaces" / family)
    return dest


def pick_model(at, family: str):
    """Select the bundle of this family in the sidebar (display names differ between tiny and shipped bundles)."""
    from explorer.core import bundles
    from training.bundle import read_config

    found = [(Path(path).parts[-2:] != ("toyfaces", family), name) for name, path in bundles.available().items()
             if read_config(path)["family"] == family]
    name = min(found)[1]  # checkpoints/toyfaces/<family> first, else any bundle of the family
    at.sidebar.selectbox(key="bundle_select").set_value(name).run()
    assert not at.exception, at.exception
    return name


def open_with_link(page: str, params: dict, timeout: int = 300) -> AppTest:
    """The app opened straight on `page` ("views/sample.py") with these query parameters, as a link opens it."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.query_params.update(params)
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def open_page(page: str, family: str, timeout: int = 180) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, at.exception
    pick_model(at, family)
    return at
