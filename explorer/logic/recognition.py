"""The dataset's feature network as a judge: does it see, in generated images, the attribute that was asked for?
Used by the conditional-GAN page and the attribute-directions page. No Streamlit here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from training.attributes import Attribute
from training.bundle import paths as bundle_paths

FEATURENET_NETWORK = "featurenet"  # the network's name in a feature-network bundle


def featurenet_path(checkpoints: str | Path, dataset: str) -> Path | None:
    """checkpoints/<dataset>/featurenet when it holds a bundle, else None."""
    path = bundle_paths.featurenet_path(dataset, checkpoints)
    return path if (path / "config.json").is_file() else None


def featurenet_column(net_attributes: tuple[Attribute, ...], attribute: Attribute) -> int | None:
    """The feature network's head for this attribute (same name and values), or None when it has none."""
    for j, a in enumerate(net_attributes):
        if a.name == attribute.name and a.values == attribute.values:
            return j
    return None


def predict_labels(net: nn.Module, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Feature-network label rows (B, A) for generated images in [-1, 1]."""
    from training.models.featurenet import to_input

    net.eval()
    with torch.no_grad():
        return torch.cat([net.predict(to_input(images[i:i + batch], net.config))
                          for i in range(0, images.shape[0], batch)])


def recognition_rate(predicted: torch.Tensor, column: int, value: int) -> float:
    """Share of images whose predicted label in `column` is `value`."""
    if predicted.shape[0] == 0:
        return float("nan")
    return float((predicted[:, column] == value).double().mean())


@dataclass(frozen=True)
class FeatureNetwork:
    """A loaded feature network with the attributes its heads predict, and where it came from."""

    network: nn.Module
    attributes: tuple[Attribute, ...]
    path: str

    def column(self, attribute: Attribute) -> int | None:
        return featurenet_column(self.attributes, attribute)

    def recognised(self, asked: dict[Attribute, str], images: torch.Tensor) -> dict[str, float]:
        """attribute name -> share of images in which the network finds the requested value (attributes it has no
        head for are left out)."""
        predicted = predict_labels(self.network, images)
        out = {}
        for attribute, value in asked.items():
            column = self.column(attribute)
            if column is not None:
                out[attribute.name] = recognition_rate(predicted, column, attribute.values.index(value))
        return out
