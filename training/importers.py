"""Importers of foreign checkpoints: a student's netG.pth from the PyTorch DCGAN tutorial becomes one of our bundles.

Loading uses `torch.load(..., weights_only=True)` only: tensors and plain containers come back, no class is
ever instantiated and no code in the file runs. A file holding a whole pickled model is refused with the
one line that re-saves it as a state dict.
"""

from __future__ import annotations

import hashlib
import math
import pickle
import re
from dataclasses import asdict
from pathlib import Path

import torch

from training.checkpoint import save_bundle
from training.errors import LatentExplorerError
from training.latent import STANDARD_NORMAL
from training.models.dcgan import DCGANConfig, Generator

RESAVE_HINT = 'in your notebook, run `torch.save(netG.state_dict(), "netG.pth")` and upload that file instead'
# Checkpoint dicts people save around the state dict; we look one level inside for the generator's.
WRAPPER_KEYS = ("netG", "generator", "G", "state_dict", "model_state_dict", "model")
TUTORIAL_IMAGE_SIZE = 64
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default format since PyTorch 1.6
PICKLE_MAGIC = b"\x80"  # the legacy torch.save format starts with a pickle protocol opcode


def _sniff(path: Path, label: str) -> None:
    """Refuse files that are plainly not torch.save output before handing them to torch."""
    with path.open("rb") as handle:
        head = handle.read(16)
    if not head:
        raise LatentExplorerError(f"{label}: the file is empty")
    if head.startswith(ZIP_MAGIC) or head.startswith(PICKLE_MAGIC):
        return
    if len(head) >= 9 and head[8:9] == b"{":
        raise LatentExplorerError(f"{label}: this looks like a safetensors file, not a PyTorch .pth state dict; "
                                  f"{RESAVE_HINT}")
    if head.startswith((b"\x89PNG", b"\xff\xd8", b"GIF8")):
        raise LatentExplorerError(f"{label}: this is an image, not a PyTorch .pth file; {RESAVE_HINT}")
    raise LatentExplorerError(f"{label}: not a file written by torch.save (a .pth/.pt state dict); {RESAVE_HINT}")


def load_state_dict(path: str | Path, label: str | None = None) -> dict[str, torch.Tensor]:
    """Read a .pth safely and return its flat name -> tensor mapping (with any `module.` prefix removed).
    `label` names the file in messages (an upload is saved under a temporary name)."""
    path = Path(path)
    label = label or path.name
    if not path.exists():
        raise LatentExplorerError(f"{path}: no such file")
    if not path.is_file():
        raise LatentExplorerError(f"{path}: not a file (expected a .pth state dict)")
    _sniff(path, label)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        what = f" (it names the class `{found.group(1)}`)" if found else ""
        raise LatentExplorerError(
            f"{label} holds a whole pickled model or other Python objects{what}, not a state dict. "
            "Latent Explorer never unpickles code, because loading such a file can run anything. "
            f"To fix it, {RESAVE_HINT}."
        ) from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, KeyError... for damaged files
        raise LatentExplorerError(f"{label}: cannot read it as a PyTorch file; it is truncated or damaged "
                                  f"({type(exc).__name__}: {str(exc)[:200]})") from None
    return _flatten(loaded, label)


def _flatten(loaded: object, name: str) -> dict[str, torch.Tensor]:
    if isinstance(loaded, torch.Tensor):
        raise LatentExplorerError(f"{name} holds a single tensor, not a state dict; {RESAVE_HINT}")
    if not isinstance(loaded, dict):
        raise LatentExplorerError(f"{name} holds a {type(loaded).__name__}, not a state dict; {RESAVE_HINT}")
    if not any(isinstance(v, torch.Tensor) for v in loaded.values()):
        for key in WRAPPER_KEYS:
            if isinstance(loaded.get(key), dict):
                return _flatten(loaded[key], f"{name}[{key!r}]")
    not_tensors = [str(k) for k, v in loaded.items() if not isinstance(v, torch.Tensor)]
    if not_tensors or not loaded:
        listed = ", ".join(not_tensors[:5]) or "(nothing)"
        raise LatentExplorerError(
            f"{name} is not a generator state dict: entries {listed} are not tensors; {RESAVE_HINT}"
        )
    state = {}
    for key, value in loaded.items():
        if not isinstance(key, str):
            raise LatentExplorerError(f"{name}: parameter names must be strings, found {key!r}")
        # nn.DataParallel / DistributedDataParallel save every name with a `module.` prefix.
        state[key[len("module."):] if key.startswith("module.") else key] = value
    return state


def infer_tutorial_config(state: dict[str, torch.Tensor], name: str = "the file") -> DCGANConfig:
    """nz, ngf and channels from the tutorial netG's first and last layer shapes (64x64 output)."""
    if "main.0.weight" not in state or not any(k.startswith("main.") for k in state):
        shown = ", ".join(list(state)[:4])
        raise LatentExplorerError(
            f"{name}: these are not the PyTorch DCGAN tutorial's generator parameters (expected names like "
            f"main.0.weight, main.1.running_mean ...; found {shown} ...)"
        )
    if "main.11.weight" in state and "main.12.weight" not in state:
        raise LatentExplorerError(f"{name}: this is the tutorial's discriminator (netD); upload the generator (netG)")
    first, last = state["main.0.weight"], state.get("main.12.weight")
    if first.dim() != 4 or first.shape[2:] != (4, 4) or last is None or last.dim() != 4:
        raise LatentExplorerError(
            f"{name}: main.0.weight has shape {tuple(first.shape)}; the tutorial's 64x64 netG has (nz, ngf*8, 4, 4) "
            "and a last layer main.12.weight of shape (ngf, channels, 4, 4)"
        )
    nz, ngf8 = int(first.shape[0]), int(first.shape[1])
    if ngf8 % 8:
        raise LatentExplorerError(f"{name}: main.0.weight has {ngf8} output channels, not a multiple of 8 (ngf*8)")
    channels = int(last.shape[1])
    config = DCGANConfig(latent_dim=nz, image_size=TUTORIAL_IMAGE_SIZE, channels=channels, g_width=ngf8 // 8,
                         d_width=ngf8 // 8)
    try:
        config.validate()
    except LatentExplorerError as exc:
        raise LatentExplorerError(f"{name}: the shapes imply an unsupported generator ({exc})") from None
    return config


def tutorial_generator(state: dict[str, torch.Tensor], name: str = "the file") -> Generator:
    """Our Generator with the tutorial netG's weights, after checking every name, shape and value."""
    config = infer_tutorial_config(state, name)
    generator = Generator(config)
    expected = generator.state_dict()
    state = dict(state)
    for key, tensor in expected.items():
        # State dicts from PyTorch < 0.4.1 have no BatchNorm counters; they only matter for training.
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(tensor)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}" + (f" and {len(missing) - 5} more" if len(missing) > 5
                                                                 else ""))
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:5])}"
                         + (f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else ""))
        raise LatentExplorerError(
            f"{name}: the parameters do not match the tutorial's 64x64 netG with nz={config.latent_dim}, "
            f"ngf={config.g_width} ({'; '.join(parts)})"
        )
    converted = {}
    for key, tensor in expected.items():
        value = state[key]
        if tuple(value.shape) != tuple(tensor.shape):
            raise LatentExplorerError(
                f"{name}: {key} has shape {tuple(value.shape)} but the tutorial's netG with nz={config.latent_dim}, "
                f"ngf={config.g_width} needs {tuple(tensor.shape)}"
            )
        if tensor.is_floating_point():
            if not value.is_floating_point():
                raise LatentExplorerError(f"{name}: {key} holds {value.dtype} values, expected floating point")
            value = value.float()
            if not torch.isfinite(value).all():
                raise LatentExplorerError(f"{name}: {key} contains NaN or infinite values (did training diverge?)")
        else:
            value = value.to(tensor.dtype)
        converted[key] = value
    generator.load_state_dict(converted)
    return generator.eval()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_tutorial_dcgan(state_dict_path: str | Path, out_dir: str | Path, name: str | None = None,
                          display_filename: str | None = None) -> Path:
    """Turn a netG.pth from the PyTorch DCGAN tutorial or pytorch/examples `dcgan` into a bundle at out_dir.

    The bundle has weights and config but no history, snapshots or metrics: nothing we could know.
    `display_filename` names the file in messages when it was saved under a temporary name (uploads)."""
    path = Path(state_dict_path)
    label = display_filename or path.name
    state = load_state_dict(path, label)
    generator = tutorial_generator(state, label)
    config = generator.config
    with torch.no_grad():
        sample = generator(torch.zeros(2, config.latent_dim))
    if not math.isfinite(float(sample.abs().sum())):
        raise LatentExplorerError(f"{label}: the generator produces NaN images")
    bundle_config = {
        "name": name or f"imported · {label}",
        "family": "dcgan",
        "model": asdict(config),
        "dataset": {
            "name": "imported",
            "source": {"name": "imported", "file": label},
            "image_size": config.image_size,
            "channels": config.channels,
            "normalisation": "x / 127.5 - 1 (pixels in [-1, 1]), as in the tutorial",
            "attributes": [],
        },
        "prior": STANDARD_NORMAL.to_json(),  # the tutorial samples torch.randn
        "imported_from": {"format": "pytorch-dcgan-tutorial netG state dict", "file": label,
                          "sha256": sha256_of(path), "nz": config.latent_dim, "ngf": config.g_width,
                          "channels": config.channels},
        "versions": {"torch": torch.__version__},
    }
    return save_bundle(out_dir, bundle_config, {"generator": generator})
