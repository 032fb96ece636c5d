"""`python -m training info BUNDLE`: validate a bundle and say what it holds."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    parser = sub.add_parser("info", help="validate a bundle and print what it holds")
    parser.add_argument("bundle")


def run(args: argparse.Namespace) -> None:
    from training.bundle import load_bundle

    bundle = load_bundle(args.bundle)
    if not bundle.capabilities.generates:  # the feature network: a classifier for the metrics, no latent space
        print(f"{bundle.path}: feature network for {bundle.config['dataset']['name']}, "
              f"held-out accuracy {bundle.config.get('accuracy')}")
        return
    steps = bundle.history.get("step", [])
    print(f"{bundle.path}: {bundle.family} on {bundle.config['dataset']['name']}, latent dim {bundle.latent_dim}, "
          f"prior {bundle.prior.label}, trained {bundle.config.get('step', '?')} steps, "
          f"{len(steps)} history rows, snapshots at {list(bundle.snapshot_paths())}")
    problem = bundle.snapshot_problem()
    if problem:
        print(f"note: {problem}")
