"""Importers of foreign checkpoints: a student's netG.pth from the PyTorch DCGAN tutorial becomes one of our bundles.

Loading uses `torch.load(..., weights_only=True)` only, after pickle_scan has read the file's opcodes without
running them: tensors and plain containers come back, no class is ever instantiated, no code in the file runs,
and no file can nest or repeat objects enough to crash or stall the unpickler. torch.load itself runs in a child
process with a time and a memory limit (sandboxed_load), for the tricks the scan does not know. A file holding a
whole pickled model is refused with the one line that re-saves it as a state dict.
"""

from __future__ import annotations

import hashlib
import math
import pickle
import re
import reprlib
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from training.bundle import save_bundle
from training.errors import LatentExplorerError
from training.latent.priors import STANDARD_NORMAL
from training.models.dcgan import IMAGE_SIZES, DCGANConfig, Generator, discriminator_body
from training.untrusted.checks import regular_file_size
from training.untrusted.pickle_scan import damaged_file, scan_torch_file
from training.untrusted.sandboxed_load import read_tensors

RESAVE_HINT = 'in your notebook, run `torch.save(netG.state_dict(), "netG.pth")` and upload that file instead'
# Checkpoint dicts people save around the state dict, generator names first; we look inside for the generator's.
WRAPPER_KEYS = ("netG", "netG_state_dict", "generator", "generator_state", "generator_state_dict", "G",
                "state_dict", "model_state_dict", "model")
# nn.DataParallel / DistributedDataParallel put `module.` before every name, torch.compile `_orig_mod.`.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# Every size our Generator builds, the tutorial's own 64x64 first: when none fits, a tie in the report goes to it.
TUTORIAL_SIZES = tuple(sorted(IMAGE_SIZES, key=lambda size: size != 64))
SIZES_READ = ", ".join(f"{size}x{size}" for size in IMAGE_SIZES[:-1]) + f" or {IMAGE_SIZES[-1]}x{IMAGE_SIZES[-1]}"
LAYER_INDEX = re.compile(r"main\.(\d+)\.")
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default format since PyTorch 1.6
PICKLE_MAGIC = b"\x80"  # the legacy torch.save format starts with a pickle protocol opcode
LEGACY_TORCH_MAGIC = b"\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19"  # the number the legacy format pickles first
# pickle.dump of a tensor stores its storage as nested torch.save bytes read back by this function: reading such a
# file means running torch.load without weights_only. Its name comes within the first few hundred bytes of a
# pickled state dict; a pickled whole model may put pickled source code first, so we look at the first MB.
PLAIN_PICKLED_TENSOR = b"_load_from_bytes"
SNIFF_BYTES = 1 << 20
LFS_POINTER = b"version https://git-lfs.github.com/spec/"
# Names and keys from a file go into messages cut short: a key can be megabytes of text or a tuple of millions.
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel, _SHORT_REPR.maxtuple, _SHORT_REPR.maxstring, _SHORT_REPR.maxlong = 2, 4, 60, 40


def _key_in_message(key: object) -> str:
    """A file's key as a message shows it: whole when short, cut with ... when not, at a bounded cost."""
    return key if isinstance(key, str) and len(key) <= 80 else _SHORT_REPR.repr(key)


def _sniff(path: Path, label: str) -> None:
    """Refuse files that are plainly not torch.save output before handing them to torch."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head:
        raise LatentExplorerError(f"{label}: the file is empty")
    if head.startswith(PICKLE_MAGIC) and LEGACY_TORCH_MAGIC not in head[:32] and PLAIN_PICKLED_TENSOR in head:
        raise LatentExplorerError(f"{label}: this was written by pickle.dump, not torch.save, and reading its tensors "
                                  f"would run code from the file; {RESAVE_HINT}")
    if head.startswith(ZIP_MAGIC) or head.startswith(PICKLE_MAGIC):
        return
    if head.startswith(LFS_POINTER):
        raise LatentExplorerError(f"{label}: this is a Git LFS pointer, not the weights: download the real file with "
                                  "`git lfs pull` or the raw download link")
    if len(head) >= 9 and head[8:9] == b"{":
        raise LatentExplorerError(f"{label}: this looks like a safetensors file, not a PyTorch .pth state dict; "
                                  f"{RESAVE_HINT}")
    if head.startswith((b"\x89PNG", b"\xff\xd8", b"GIF8")):
        raise LatentExplorerError(f"{label}: this is an image, not a PyTorch .pth file; {RESAVE_HINT}")
    raise LatentExplorerError(f"{label}: not a file written by torch.save (a .pth/.pt/.pkl state dict); {RESAVE_HINT}")


def load_state_dict(path: str | Path, label: str | None = None) -> dict[str, torch.Tensor]:
    """Read a .pth safely and return its flat name -> tensor mapping (with any `module.` prefix removed).
    `label` names the file in messages (an upload is saved under a temporary name)."""
    path = Path(path)
    label = label or path.name
    regular_file_size(path, "state dict (.pth)")
    _sniff(path, label)
    scan_torch_file(path, label)  # weights_only is no sandbox: a deeply nested pickle crashes the interpreter
    return read_tensors(read_state_dict_unlimited, path, label)


def read_state_dict_unlimited(path: str, label: str) -> dict[str, torch.Tensor]:
    """torch.load and flatten, with no limit of time or memory: load_state_dict runs it in a limited child, after
    the checks that refuse a file at once."""
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
        # Torch's own text: "unexpected EOF, expected 5624 more bytes. The file might be corrupted."
        raise damaged_file(label, isinstance(exc, EOFError) or "EOF" in str(exc), "its data is damaged") from None
    return _flatten(loaded, label)


def _flatten(loaded: object, name: str) -> dict[str, torch.Tensor]:
    if isinstance(loaded, torch.Tensor):
        raise LatentExplorerError(f"{name} holds a single tensor, not a state dict; {RESAVE_HINT}")
    if not isinstance(loaded, dict):
        raise LatentExplorerError(f"{name} holds a {type(loaded).__name__}, not a state dict; {RESAVE_HINT}")
    wrapped = [key for key in WRAPPER_KEYS if isinstance(loaded.get(key), dict)]
    if wrapped:  # a training checkpoint: the state dicts sit next to "epoch", optimizer states, fixed noise ...
        key = next((key for key in wrapped if _has_first_layer(loaded[key])), wrapped[0])
        return _flatten(loaded[key], f"{name}[{key!r}]")
    not_tensors = [k for k, v in loaded.items() if not isinstance(v, torch.Tensor)]
    if not_tensors or not loaded:
        listed = ", ".join(map(_key_in_message, not_tensors[:5])) or "(nothing)"
        raise LatentExplorerError(
            f"{name} is not a generator state dict: entries {listed} are not tensors; {RESAVE_HINT}"
        )
    state = {}
    for key, value in loaded.items():
        if not isinstance(key, str):
            raise LatentExplorerError(f"{name}: parameter names must be strings, found {_key_in_message(key)}")
        state[_without_prefixes(key)] = value
    return state


def _without_prefixes(key: str) -> str:
    while key.startswith(WRAPPER_PREFIXES):
        key = key.split(".", 1)[1]
    return key


def _has_first_layer(candidate: dict) -> bool:
    return any(isinstance(key, str) and _without_prefixes(key) == "main.0.weight" for key in candidate)


def _generator_shapes(config: DCGANConfig) -> dict[str, tuple[int, ...]]:
    """Our Generator's parameter names and shapes for `config`, built on the meta device: nothing is allocated
    until a file has matched them all (a few numbers in main.0.weight could otherwise ask for gigabytes)."""
    with torch.device("meta"):
        return {key: tuple(value.shape) for key, value in Generator(config).state_dict().items()}


def _discriminator_layers(image_size: int) -> set[str]:
    """The layers with weights in the tutorial's netD at this size: our discriminator body, then its last conv."""
    with torch.device("meta"):
        body = discriminator_body(DCGANConfig(image_size=image_size))
    layers = {f"main.{key.rsplit('.', 1)[0]}" for key in body.state_dict() if key.endswith(".weight")}
    return layers | {f"main.{len(body)}"}


@dataclass(frozen=True)
class _Misfit:
    """Where a file stops matching the tutorial netG at one image size, and how far it matched before."""

    matched: int  # parameters in layer order that fit before the first that does not
    ends_alike: bool  # the file's last layer is where this size's netG ends
    problem: str


def _layer_order(key: str, expected: dict[str, tuple[int, ...]]) -> tuple[float, int, str]:
    found = LAYER_INDEX.match(key)
    position = list(expected).index(key) if key in expected else len(expected)
    return (int(found.group(1)) if found else math.inf, position, key)


def _fit(state: dict[str, torch.Tensor], image_size: int) -> DCGANConfig | _Misfit:
    """The config whose Generator has exactly `state`'s names and shapes at this image size, or the first misfit."""
    probe = DCGANConfig(image_size=image_size)
    last = [key for key in _generator_shapes(probe) if key.endswith(".weight")][-1]
    mult = 2 ** (probe.upsamplings - 1)  # ngf * mult channels leave the first layer
    netg = f"a {image_size}x{image_size} DCGAN tutorial netG"
    first, final = state["main.0.weight"], state.get(last)
    layers = [int(found.group(1)) for found in map(LAYER_INDEX.match, state) if found]
    ends_alike = last.startswith(f"main.{max(layers)}.")
    if first.dim() != 4 or tuple(first.shape[2:]) != (4, 4):
        return _Misfit(0, ends_alike, f"main.0.weight has shape {tuple(first.shape)} where {netg} has a "
                                      f"ConvTranspose2d weight of shape (nz, ngf*{mult}, 4, 4)")
    if first.shape[1] % mult:
        return _Misfit(0, ends_alike, f"main.0.weight has {first.shape[1]} output channels, not a multiple of "
                                      f"{mult} (ngf*{mult} in {netg})")
    made = int(final.shape[1]) if final is not None and final.dim() == 4 else 3
    channels = made if made in (1, 3) else 3  # another count is reported when the walk below reaches that layer
    config = DCGANConfig(latent_dim=int(first.shape[0]), image_size=image_size, channels=channels,
                         g_width=int(first.shape[1]) // mult, d_width=int(first.shape[1]) // mult)
    try:
        config.validate()
    except LatentExplorerError as exc:
        return _Misfit(1, ends_alike, f"the shapes of main.0.weight imply an unsupported generator ({exc})")
    expected = _generator_shapes(config)
    for matched, key in enumerate(sorted(expected.keys() | state.keys(), key=lambda k: _layer_order(k, expected))):
        if key not in state:
            if key.endswith("num_batches_tracked"):
                continue  # PyTorch < 0.4.1 saved no BatchNorm counters; they only matter for training
            problem = f"{key} is missing, which {netg} has"
        elif key not in expected:
            problem = f"{_key_in_message(key)} is not a parameter of {netg}"
        elif key == last and made != channels:
            problem = f"{key} makes {made}-channel images where {netg} makes 1 (grey) or 3 (colour)"
        elif tuple(state[key].shape) != expected[key]:
            problem = (f"{key} has shape {tuple(state[key].shape)} where {netg} with nz={config.latent_dim}, "
                       f"ngf={config.g_width} has {expected[key]}")
        else:
            continue
        return _Misfit(matched, ends_alike, problem)
    return config


def infer_tutorial_config(state: dict[str, torch.Tensor], name: str = "the file") -> DCGANConfig:
    """Image size, nz, ngf and channels of the tutorial netG in `state`: the one config of our Generator whose
    parameter names and shapes are exactly the file's (32, 64 or 128 px, 1 or 3 channels)."""
    if "main.0.weight" not in state:
        shown = ", ".join(map(_key_in_message, list(state)[:4]))
        raise LatentExplorerError(
            f"{name}: these are not the PyTorch DCGAN tutorial's generator parameters (expected names like "
            f"main.0.weight, main.1.running_mean ...; found {shown} ...)"
        )
    layers = {key.rsplit(".", 1)[0] for key in state if key.endswith(".weight")}
    if any(layers == _discriminator_layers(size) for size in TUTORIAL_SIZES):
        raise LatentExplorerError(f"{name}: this is a discriminator (netD): upload the generator (netG)")
    misfits = []
    for image_size in TUTORIAL_SIZES:
        fit = _fit(state, image_size)
        if isinstance(fit, DCGANConfig):
            return fit
        misfits.append(fit)
    closest = max(misfits, key=lambda misfit: (misfit.ends_alike, misfit.matched))  # the first one on ties
    raise LatentExplorerError(f"{name}: {closest.problem}, so the file is none of the DCGAN tutorial generators this "
                              f"app reads ({SIZES_READ} pixels, 1 or 3 channels)")


def tutorial_generator(state: dict[str, torch.Tensor], name: str = "the file") -> Generator:
    """Our Generator with the tutorial netG's weights, after checking every name, shape and value."""
    config = infer_tutorial_config(state, name)  # every name and shape fits; only BatchNorm counters may be absent
    generator = Generator(config)
    converted = {}
    for key, tensor in generator.state_dict().items():
        value = state.get(key, torch.zeros_like(tensor))
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
                          display_filename: str | None = None, trained_on: str | None = None,
                          checkpoints: str | Path | None = None) -> Path:
    """Turn a netG.pth from the PyTorch DCGAN tutorial or pytorch/examples `dcgan` into a bundle at out_dir.

    The bundle has weights and config but no history, snapshots or metrics: nothing we could know.
    `display_filename` names the file in messages when it was saved under a temporary name (uploads).
    `trained_on` names its dataset
    (training.bundle.trained_on.TRAINED_ON): the bundle then keeps the record the dataset's
    shipped bundles under `checkpoints` keep, and is scored like them; None: "imported", explored but not scored."""
    from training.bundle.trained_on import check_choice, dataset_record, unknown_record

    check_choice(trained_on)  # a misspelt dataset fails before the file is read
    path = Path(state_dict_path)
    label = display_filename or path.name
    state = load_state_dict(path, label)
    generator = tutorial_generator(state, label)
    config = generator.config
    dataset = (dataset_record(trained_on, config.image_size, config.channels, label, checkpoints)
               if trained_on is not None else unknown_record(label, config.image_size, config.channels))
    with torch.no_grad():
        sample = generator(torch.zeros(2, config.latent_dim))
    if not math.isfinite(float(sample.abs().sum())):
        raise LatentExplorerError(f"{label}: the generator produces NaN images")
    bundle_config = {
        "name": name or f"imported · {label}",
        "family": "dcgan",
        "model": asdict(config),
        "dataset": dataset,
        "prior": STANDARD_NORMAL.to_json(),  # the tutorial samples torch.randn
        "imported_from": {"format": "pytorch-dcgan-tutorial netG state dict", "file": label,
                          "sha256": sha256_of(path), "nz": config.latent_dim, "ngf": config.g_width,
                          "channels": config.channels, "trained_on": trained_on},
        "versions": {"torch": torch.__version__},
    }
    return save_bundle(out_dir, bundle_config, {"generator": generator})
