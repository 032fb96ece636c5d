"""An optimizer's state as flat tensors plus JSON, so a training state file holds it without pickle."""

from __future__ import annotations

import torch

from training.loops import speed


def optimizer_state(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer's state_dict as flat tensors (optimizer.<name>.<param index>.<key>) plus JSON."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{name}.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def load_optimizer_state(name: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                         data: dict) -> None:
    state: dict[int, dict] = {}
    prefix = f"optimizer.{name}."
    for key, tensor in tensors.items():
        if key.startswith(prefix):
            index, field_name = key[len(prefix):].split(".", 1)
            state.setdefault(int(index), {})[field_name] = tensor
    for index, values in data["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in data["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    speed.match_parameter_layout(optimizer)
