"""Where bundles are looked for: the checkpoints folder (the repository's, or $LATENT_EXPLORER_CHECKPOINTS) and,
inside it, each dataset's feature network (checkpoints/<dataset>/featurenet). The app and the CLI both ask here."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # training/bundle/paths.py -> the repository
# The shipped bundles, in the repository itself (build-checkpoints rebuilds these).
REPO_CHECKPOINTS = REPO_ROOT / "checkpoints"
CHECKPOINTS_VARIABLE = "LATENT_EXPLORER_CHECKPOINTS"
FEATURENET_FOLDER = "featurenet"


def checkpoints_root() -> Path:
    """The folder of bundles this process uses: $LATENT_EXPLORER_CHECKPOINTS when set, else the repository's; a
    package installed with `pip install .` has no repository around it, so there it is ./checkpoints (start
    `latent-explorer` in the clone's folder)."""
    if CHECKPOINTS_VARIABLE in os.environ:
        return Path(os.environ[CHECKPOINTS_VARIABLE])
    if REPO_CHECKPOINTS.is_dir():
        return REPO_CHECKPOINTS
    return Path.cwd() / "checkpoints"


def featurenet_path(dataset: str, root: str | Path | None = None) -> Path:
    """Where a dataset's feature network lives: <root or checkpoints_root()>/<dataset>/featurenet (it may not exist)."""
    return Path(root if root is not None else checkpoints_root()) / dataset / FEATURENET_FOLDER
