"""Where and how the app's networks run: the device (LATENT_EXPLORER_DEVICE=auto|cpu|cuda) and the generators'
arithmetic (LATENT_EXPLORER_PRECISION=fp32|bf16|auto), set once per process and applied to every bundle the app
loads (explorer/core/bundles.py).

A prepared network takes and returns CPU float32 tensors whatever it runs on, so the pages, the diagnostics, the
shared cache and the JPEG grids never see a device: its forward moves the inputs to the device, and the outputs
back. On the CPU in fp32 nothing is wrapped: the networks run exactly as loaded.

bf16 autocast makes the generators' forward passes about twice as fast on CPUs with bf16 arithmetic (AMX or
AVX512-BF16), but their pixels are not those of fp32: at most 1 to 5 levels of 255 on N(0,1) codes, and up to 29
levels on the N(-10,1) codes the sampling page is about (the saturated blotches move). fp32 is therefore the
default; `auto` picks bf16 only where the CPU has bf16 arithmetic and a measurement on the model says it is faster.
The diagnostics' numbers (norms, cosines, the feature network's diversity) are always computed in float32.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from training.bundle import Bundle
from training.errors import LatentExplorerError
from training.latent.priors import sample_latents
from training.latent.sampling import whole_batch_inputs

DEVICE_ENV = "LATENT_EXPLORER_DEVICE"
PRECISION_ENV = "LATENT_EXPLORER_PRECISION"
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16", "auto")
DEFAULT_PRECISION = "fp32"  # bf16 moves N(-10,1) pixels by up to 29 levels of 255 (see above)
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of CPUs with bf16 arithmetic
# auto takes bf16 only when it is at least this much faster on the model (median of a few timed passes).
BF16_MIN_SPEEDUP = 1.15
_LOG = logging.getLogger(__name__)


def _setting(environ: Mapping[str, str] | None, name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = (environ if environ is not None else os.environ).get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in allowed:
        raise LatentExplorerError(f"{name}={raw!r} is not one of {', '.join(allowed)}: unset it or set it to one of "
                                  "those.")
    return raw


def device_setting(environ: Mapping[str, str] | None = None, cuda_available: bool | None = None) -> torch.device:
    """The device the app's networks run on: LATENT_EXPLORER_DEVICE (auto, the default: CUDA when torch sees a GPU,
    else the CPU). A bad value, or cuda without a GPU, raises LatentExplorerError in one sentence."""
    setting = _setting(environ, DEVICE_ENV, DEVICES, "auto")
    available = torch.cuda.is_available() if cuda_available is None else cuda_available
    if setting == "cuda" and not available:
        raise LatentExplorerError(f"{DEVICE_ENV}=cuda, but torch sees no CUDA GPU on this machine: set it to cpu or "
                                  "auto.")
    return torch.device("cuda" if setting == "cuda" or (setting == "auto" and available) else "cpu")


def precision_setting(environ: Mapping[str, str] | None = None) -> str:
    """LATENT_EXPLORER_PRECISION: fp32 (the default), bf16 (forced), or auto (bf16 where it is measured faster)."""
    return _setting(environ, PRECISION_ENV, PRECISIONS, DEFAULT_PRECISION)


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU does bf16 arithmetic (AMX or AVX512-BF16), from /proc/cpuinfo's flags; False where that
    file is missing (not Linux)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    return any(flag in flags for flag in BF16_CPU_FLAGS)


@functools.cache
def device() -> torch.device:
    """This process's device (read once)."""
    return device_setting()


def _to(value, where: torch.device, float32: bool = False):
    if isinstance(value, torch.Tensor):
        value = value.to(where)
        return value.float() if float32 and value.is_floating_point() else value
    if isinstance(value, (tuple, list)):
        return type(value)(_to(v, where, float32) for v in value)
    return value


# The methods the app and training/ call on a network from outside (the generator's first layer for the
# diagnostics, the feature network's features for GAN inversion); each is given CPU tensors and returns them.
ENTRY_POINTS = ("forward", "features", "first_layer_preactivation")
_INSIDE = threading.local()  # a prepared method running on this thread: its inner calls stay on the device


def run_as(network: nn.Module, where: torch.device, bf16: bool) -> nn.Module:
    """Move `network` to `where` and make its entry points take and return CPU float32 tensors, its forward under
    bf16 autocast when asked; on the CPU in fp32 it is left as it is."""
    network.to(where)
    if where.type == "cpu" and not bf16:
        return network
    for name in ENTRY_POINTS:
        if callable(getattr(network, name, None)):
            # An instance attribute: nn.Module.__call__ and the callers find it before the class's method.
            setattr(network, name, _on_device(network, getattr(network, name), where, bf16 and name == "forward"))
    return network


def _with_default_inputs(network: nn.Module, args: tuple, kwargs: dict) -> dict:
    """A conditional GAN's or an InfoGAN's default conditions / codes for the codes in args, made here on the CPU
    (the model would make them on the CPU beside codes on the device) when the caller gave codes alone."""
    if len(args) != 1 or not isinstance(args[0], torch.Tensor):
        return kwargs
    labels, info = whole_batch_inputs(network, args[0].shape[0], kwargs.get("labels"), kwargs.get("codes"))
    extra = {"labels": labels} if labels is not None else {"codes": info} if info is not None else {}
    return {**extra, **kwargs}


def _on_device(network: nn.Module, method, where: torch.device, bf16: bool):
    takes_codes = method.__name__ in ("forward", "first_layer_preactivation")

    @functools.wraps(method)
    def call(*args, **kwargs):
        if getattr(_INSIDE, "active", False):  # called by another prepared method: already on the device
            return method(*args, **kwargs)
        if takes_codes and where.type != "cpu":
            kwargs = _with_default_inputs(network, args, kwargs)
        _INSIDE.active = True
        try:
            args, kwargs = _to(args, where), {k: _to(v, where) for k, v in kwargs.items()}
            with torch.autocast(where.type, dtype=torch.bfloat16, enabled=bf16):
                out = method(*args, **kwargs)
        finally:
            _INSIDE.active = False
        return _to(out, torch.device("cpu"), float32=True)

    return call


def bf16_is_faster(bundle: Bundle, rows: int = 16, rounds: int = 3) -> tuple[bool, float]:
    """Time the bundle's generator on `rows` prior codes in fp32 and under bf16 autocast, interleaved after a
    warm-up: (bf16 at least BF16_MIN_SPEEDUP times faster, fp32 time / bf16 time)."""
    generator = bundle.generator.eval()
    z = sample_latents(bundle.prior, rows, bundle.latent_dim, seed=0)
    labels, info = whole_batch_inputs(generator, rows, None, None)
    extra = {"labels": labels} if labels is not None else {"codes": info} if info is not None else {}
    times = {False: [], True: []}
    with torch.no_grad():
        for round_ in range(rounds + 1):
            for bf16 in (False, True):
                start = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    generator(z, **extra)
                if round_:  # the first round builds oneDNN's kernels
                    times[bf16].append(time.perf_counter() - start)
    speedup = sorted(times[False])[rounds // 2] / max(sorted(times[True])[rounds // 2], 1e-9)
    return speedup >= BF16_MIN_SPEEDUP, speedup


def generator_precision(bundle: Bundle, where: torch.device, setting: str | None = None) -> str:
    """fp32 or bf16 for this bundle's generator: the setting, with auto resolved (bf16 only on a CPU with bf16
    arithmetic where the measurement says it is faster; on a GPU auto keeps fp32, whose pixels the lessons show)."""
    setting = setting or precision_setting()
    if setting != "auto":
        return setting
    if where.type != "cpu" or not cpu_has_bf16():
        return "fp32"
    faster, speedup = bf16_is_faster(bundle)
    _LOG.info("%s: bf16 forward %.2fx the speed of fp32 -> %s", bundle.path, speedup, "bf16" if faster else "fp32")
    return "bf16" if faster else "fp32"


def prepare(bundle: Bundle) -> Bundle:
    """Ready a loaded bundle for the app: every network on this process's device, the generator in channels-last
    memory order (the CelebA DCGAN's 64-sample batch took 0.40 s instead of 0.57 s on one busy core, the same pixels
    to 1e-6) and in the precision chosen for it. Raises LatentExplorerError for a bad setting."""
    where = device()
    bf16 = False
    if bundle.capabilities.generates:
        bundle.generator.to(memory_format=torch.channels_last)
        bf16 = generator_precision(bundle, where) == "bf16"
    for network in bundle.networks.values():
        run_as(network, where, bf16 and network is bundle.generator)
    return bundle
