"""`python -m training build-checkpoints [--only anime/cgan]`: retrain shipped bundles from their own recipes."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

from training.bundle.paths import REPO_CHECKPOINTS
from training.cli.arguments import at_least


def add_parser(sub) -> None:
    parser = sub.add_parser("build-checkpoints", help="retrain shipped bundles with the recipe in their config.json")
    parser.add_argument("--only", default=None, metavar="DATASET[/MODEL],...",
                        help="e.g. anime/cgan, toyfaces or experiments/cgan-balance (default: every shipped bundle)")
    parser.add_argument("--checkpoints", default=str(REPO_CHECKPOINTS), help="where the shipped bundles are")
    parser.add_argument("--data-root", default=None, metavar="PATH",
                        help="local copy of the dataset, or the folder that holds it (else "
                             "$LATENT_EXPLORER_<DATASET>_ROOT, e.g. LATENT_EXPLORER_ANIME_ROOT, else "
                             "$LATENT_EXPLORER_DATA_ROOT/<the folder name the bundle records>)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="write rebuilt bundles under DIR/<dataset>/<model> (default: in place, replacing them)")
    parser.add_argument("--overwrite", action="store_true",
                        help="with --out: replace bundles already there (in place, replacing is the point); only the "
                             "files our commands write are removed")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--dry-run", action="store_true", help="print the recipes, train nothing")


def run(args: argparse.Namespace) -> None:
    import json

    import torch

    from training.bundle import METRICS_FILE, read_config
    from training.bundle.output_folder import check_folder, remove_own_files
    from training.data.registry import load_dataset
    from training.loops.trainer import train
    from training.recipes.experiments import rebuild_run
    from training.recipes.rebuild import dataset_arguments, recipe, select, strip_dataset_images

    at_least(args, 1, "--threads")
    if args.threads:
        torch.set_num_threads(args.threads)
    root = Path(args.checkpoints)
    only = [o for o in args.only.split(",") if o.strip()] if args.only else None
    bundles = select(root, only)
    # In place, replacing the shipped bundle is the point of the command; under --out only when asked. Every
    # destination is checked before the first of possibly hours of training.
    outs = {bundle: Path(args.out) / bundle.relative_to(root) if args.out else bundle for bundle in bundles}
    if not args.dry_run:
        for out in outs.values():
            check_folder(out, overwrite=args.overwrite or not args.out)
    for bundle, out in outs.items():
        config = read_config(bundle)
        family, model_config, train_config = recipe(config)
        data_args = dataset_arguments(config, args.data_root)
        relative = bundle.relative_to(root)
        print(f"{relative}: {family}, {train_config.steps} steps, data {json.dumps(data_args)} -> {out}")
        if args.dry_run:
            continue
        dataset, source = load_dataset(**data_args)
        if any(f.name == METRICS_FILE for f in remove_own_files(out)):  # the old files describe the old weights
            print(f"{relative}: its metrics.json described the old weights and was removed; score the new ones with "
                  f"python -m training evaluate {out} --write")
        # An experiment run keeps its group record, its slimming, and a divergence guard's stop as its result.
        rebuild_run(config, out, partial(train, family, dataset, model_config, train_config, out, source=source,
                                         name=config.get("name")))
        if strip_dataset_images(out, config):
            print(f"{relative}: held-out {config['dataset'].get('name')} images dropped from latents.npz (may not "
                  "be redistributed; the explorer reads them from a local copy)")
