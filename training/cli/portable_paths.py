"""`python -m training portable-paths FOLDER...`: rewrite bundles' config.json and metrics.json so that they
record their dataset by a folder name under a data root, never by a path of this machine (weights untouched)."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "portable-paths", help="remove this machine's paths from bundles' config.json and metrics.json",
        description="Rewrite the JSON files of bundles written before bundles became portable: the dataset folder "
                    "is recorded by its name (found again with --data-root, $LATENT_EXPLORER_<DATASET>_ROOT or "
                    "$LATENT_EXPLORER_DATA_ROOT/<name>) and every file relative to it. Weights, history, snapshots "
                    "and latents are not touched.")
    parser.add_argument("folders", nargs="+", metavar="FOLDER", help="a bundle, or a folder of bundles such as "
                        "checkpoints/")
    parser.add_argument("--dry-run", action="store_true", help="say which files would change, write nothing")


def run(args: argparse.Namespace) -> None:
    from pathlib import Path

    from training.bundle import CONFIG_FILE, METRICS_FILE, atomic_write_json, find_bundles
    from training.bundle.output_folder import os_error
    from training.cli.build_checkpoints import REPO_CHECKPOINTS
    from training.data.location import portable_record
    from training.errors import LatentExplorerError
    from training.untrusted.checks import read_json

    bundles = [b for folder in args.folders for b in find_bundles(folder)]
    if not bundles:
        raise LatentExplorerError(f"no bundle (a folder with {CONFIG_FILE}) under {', '.join(args.folders)}")
    changed = 0
    for bundle in bundles:
        for name in (CONFIG_FILE, METRICS_FILE):
            file = Path(bundle) / name
            if not file.exists():
                continue
            data = read_json(file, name.removesuffix(".json"))
            portable = portable_record(data, REPO_CHECKPOINTS.parent)
            if portable == data:
                continue
            changed += 1
            print(f"{'would rewrite' if args.dry_run else 'rewrote'} {file}")
            if not args.dry_run:
                try:
                    atomic_write_json(file, portable)
                except OSError as exc:
                    raise os_error(exc, file, "run it again on a writable copy") from None
    print(f"{len(bundles)} bundle(s), {changed} file(s) {'to rewrite' if args.dry_run else 'rewritten'}; "
          "the rest were portable already")
