"""The feature network that judges generated images on the attribute pages: the one trained on the bundle's dataset
(checkpoints/<dataset>/featurenet), loaded once per process like every bundle."""

from __future__ import annotations

import streamlit as st

from explorer.core import bundles
from explorer.logic.recognition import FEATURENET_NETWORK, FeatureNetwork
from training.bundle import Bundle
from training.errors import LatentExplorerError


def featurenet_for(bundle: Bundle) -> FeatureNetwork | None:
    """The feature network of the bundle's dataset, or None when there is none (a warning on the page when it
    cannot be read)."""
    try:
        net_bundle = bundles.featurenet_bundle(bundle)
    except LatentExplorerError as exc:
        st.warning(f"The feature network of this dataset cannot be read: {exc}")
        return None
    if net_bundle is None or FEATURENET_NETWORK not in net_bundle.networks:
        return None
    return FeatureNetwork(net_bundle.networks[FEATURENET_NETWORK], net_bundle.attributes, str(net_bundle.path))


def needs_featurenet_text(bundle: Bundle) -> str:
    dataset = bundle.config["dataset"].get("name", "<dataset>")
    return (f"Train one with `python -m training train-featurenet --data {dataset} --out "
            f"checkpoints/{dataset}/featurenet` to see how often the attribute is recognised.")


def featurenet_at(key: bundles.BundleKey) -> FeatureNetwork:
    """The feature network of a BundleKey (a cached function's argument)."""
    net_bundle = key.load()
    return FeatureNetwork(net_bundle.networks[FEATURENET_NETWORK], net_bundle.attributes, key.path)
