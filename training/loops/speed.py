"""The two runtime speed options of a training run: bf16 autocast (--precision) and channels_last (--channels-last).

Both change how a step's arithmetic is carried out, not what the step computes: the weights, the optimizer state
and every loss stay float32, and bundles save ordinary contiguous float32 tensors whichever options trained them.
On a CPU with bf16 instructions (AVX512-BF16, AMX) they make a 64x64 DCGAN step about twice as fast.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from training.errors import LatentExplorerError

PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision this device cannot run (TrainConfig.validate has checked the name), before any time is
    spent on data or training."""
    if precision != "bf16":
        return
    if device.type == "cuda" and not torch.version.hip and torch.cuda.get_device_capability(device)[0] < 8:
        # Older GPUs only emulate bf16, which is slower than fp32: the option would defeat its purpose.
        name = torch.cuda.get_device_name(device)
        raise LatentExplorerError(f"--precision bf16: {name} ({device}) has no bf16 arithmetic (it needs compute "
                                  "capability 8.0 or newer, e.g. an A100); use --precision fp32")
    if not torch.amp.is_autocast_available(device.type):
        raise LatentExplorerError(f"--precision bf16: torch {torch.__version__} has no autocast for {device.type} "
                                  "devices; use --precision fp32")


class Autocast(nn.Module):
    """Runs a network under bf16 autocast and hands back its outputs as float32, so the losses computed from
    them are float32 while the convolutions ran in bf16. The network stays a child module: DDP may wrap this,
    and the loops keep (and bundles save) the network itself."""

    def __init__(self, network: nn.Module, device_type: str):
        super().__init__()
        self.network = network
        self.device_type = device_type

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with torch.autocast(device_type=self.device_type, dtype=torch.bfloat16):
            outputs = self.network(*args, **kwargs)
        return as_float32(outputs)


def as_float32(outputs: Any) -> Any:
    """Floating tensors (also inside tuples, lists and dicts) cast to float32; anything else as it is."""
    if torch.is_tensor(outputs):
        return outputs.float() if outputs.is_floating_point() else outputs
    if isinstance(outputs, (tuple, list)):
        return type(outputs)(as_float32(o) for o in outputs)
    if isinstance(outputs, dict):
        return {k: as_float32(v) for k, v in outputs.items()}
    return outputs


def with_precision(network: nn.Module, precision: str, device: torch.device) -> nn.Module:
    """The network as the loop should call it for this precision (fp32: the network itself)."""
    return Autocast(network, device.type) if precision == "bf16" else network


def memory_format(channels_last: bool) -> torch.memory_format:
    """channels_last, or else whatever layout a tensor already has (a run without the option is unchanged)."""
    return torch.channels_last if channels_last else torch.preserve_format


def match_parameter_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give every per-parameter state tensor (Adam's moments) its parameter's memory layout. A resumed run loads
    them contiguous; against channels_last gradients that would make each optimizer step shuffle memory."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            for key, value in optimizer.state.get(param, {}).items():
                if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                    optimizer.state[param][key] = torch.empty_like(param, dtype=value.dtype).copy_(value)
