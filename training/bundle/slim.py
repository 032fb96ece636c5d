"""Ship a bundle with fewer networks than training used: every retrain of a committed bundle grows the repository
forever, so a 64x64 tutorial-width DCGAN (generator 13.7 MB, discriminator 10.6 MB in float32) ships its
generator only, the part every page of the explorer uses. config.json says so under "networks_shipped", so that
a reader asking for the missing network gets that reason, not "tensors missing".
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save

from training.bundle import (
    CONFIG_FILE,
    FORMAT_VERSION,
    TRAINING_STATE_FILE,
    WEIGHTS_FILE,
    atomic_write_json,
    read_config,
)
from training.bundle.atomic import atomic_write_bytes
from training.errors import LatentExplorerError
from training.models import registry

SHIPPED_KEY = "networks_shipped"
# Weights stored in half precision (read back as float32): the tutorial-width generator alone is 13.7 MB in float32,
# which leaves no room under the 15 MB bundle budget for its snapshots.
STORED_AS_KEY = "weights_stored_as"


def keep_networks(path: str | Path, keep: tuple[str, ...] | list[str], half: bool = False) -> int:
    """Drop every network but `keep` from a finished bundle's weights (and its training state, which needs them
    all), and with half=True store the float32 tensors as float16; return the bytes saved. Refuses to drop a
    network the explorer needs."""
    path = Path(path)
    config = read_config(path)
    needed = {registry.generator_name(config["family"]),
              "encoder" if registry.capabilities(config["family"]).has_encoder else None}
    missing = sorted(n for n in needed - set(keep) if n)
    if missing:
        raise LatentExplorerError(f"{path}: the explorer needs the {', '.join(missing)}; keep it in the bundle")
    file = path / WEIGHTS_FILE
    before = file.stat().st_size
    tensors = load_file(str(file))
    kept = {k: v.half() if half and v.dtype == torch.float32 else v for k, v in tensors.items()
            if k.split(".", 1)[0] in keep}
    atomic_write_bytes(file, save(kept, metadata={"format_version": str(FORMAT_VERSION)}))
    (path / TRAINING_STATE_FILE).unlink(missing_ok=True)
    extra = {STORED_AS_KEY: "float16"} if half else {}
    atomic_write_json(path / CONFIG_FILE, {**config, SHIPPED_KEY: sorted(keep), **extra})
    return before - file.stat().st_size
