"""`python -m training evaluate BUNDLE`: FD, KID, precision / recall / density / coverage with intervals in our
feature space, references and floors."""

from __future__ import annotations

import argparse
import json

from training.cli.arguments import at_least, seeds
from training.errors import LatentExplorerError

SCORE_COLUMNS = ("precision", "recall", "density", "coverage")


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "evaluate", help="score a bundle (FD, KID, precision, recall, density, coverage in our own feature space; "
                         "not Inception FID)",
        description="Score a bundle against held-out real images and print the figures; --write also stores them in "
                    "the bundle's metrics.json. The feature network defaults to checkpoints/<dataset>/featurenet/ "
                    "(see train-featurenet). A generator imported with `import-dcgan --data DATASET` is scored like "
                    "the dataset's shipped models.")
    parser.add_argument("bundle")
    parser.add_argument("--samples", type=int, default=2000, help="generated images per row (default 2000); more "
                        "narrow the intervals without moving the figures")
    parser.add_argument("--seed", type=int, default=0, help="seed of the codes and of the real-image subsets")
    parser.add_argument("--feature-net", default=None, help="feature network bundle (default: "
                        "checkpoints/<dataset>/featurenet)")
    parser.add_argument("--data-root", default=None, help="local folder of the real dataset, or the folder that "
                        "holds it (else $LATENT_EXPLORER_<DATASET>_ROOT, else $LATENT_EXPLORER_DATA_ROOT/<folder the "
                        "bundle records>); toyfaces needs none, it is regenerated from its seed")
    parser.add_argument("--k", type=int, default=3, help="nearest neighbours of the k-NN scores (default 3)")
    parser.add_argument("--set-size", type=int, default=250, help="real and generated images each k-NN score "
                        "compares (default 250; capped at half of --samples): the figures depend on it, not on "
                        "--samples")
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--json", action="store_true", help="print the same figures as JSON")
    parser.add_argument("--write", action="store_true", help="also store the figures in the bundle's metrics.json "
                        "(without it nothing is written: checking a shipped model leaves it as it was)")
    parser.add_argument("--no-write", action="store_true", help=argparse.SUPPRESS)  # the old opt-out; now the default
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--nearest", type=int, default=0, metavar="N",
                        help="also check N samples for copies of training images: each one's nearest training image "
                             "by features and by pixels, against the usual distance between two training images "
                             "(stored as 'memorisation'; default 0: no check)")


def _cell(row: dict, name: str) -> str:
    interval = (row.get("intervals") or {}).get(name)
    if interval is None:
        return f"{row[name]:.3f}"
    return f"{row[name]:.3f} [{interval[0]:.2f}, {interval[1]:.2f}]"


def _label(key: str, row: dict) -> str:
    if key == "real_floor":
        return "floor: real train vs real held-out"
    if key == "model":
        return f"model, z ~ {row['latent']} (its prior)"
    return f"reference: same model, z ~ {row['latent']}"


def format_report(result: dict) -> str:
    """The result as a few human-readable lines."""
    net = result["feature_network"]
    accuracy = ", ".join(f"{k} {v:.3f}" for k, v in net["heldout_accuracy"].items())
    lines = [
        f"{result['bundle']['name']} ({result['bundle']['path']}): {result['samples']} samples per row, "
        f"{result['real_samples']['test']} held-out real images, seed {result['seed']}",
        f"k-NN scores: k = {result['k']}, sets of {result['set_size']} real vs {result['set_size']} generated images, "
        f"mean over disjoint sets with a 95% interval [low, high]",
        f"feature network {net['path']} ({net['feature_dim']} features; held-out accuracy {accuracy})",
        "numbers are in that network's feature space: this is NOT Inception FID",
        "",
        f"{'':40s} {'FD':>8s} {'KID (std)':>17s}  " + "".join(f"{n:>21s}" for n in SCORE_COLUMNS),
    ]
    for key, row in result["fd_precision_recall"].items():
        kid = f"{row['kid']:.4f} ({row['kid_std']:.4f})"
        lines.append(f"{_label(key, row):40s} {row['fd']:8.3f} {kid:>17s}  "
                     + "".join(f"{_cell(row, n):>21s}" for n in SCORE_COLUMNS))
    if "attribute_accuracy" in result:
        lines += ["", "attribute accuracy of generated images (classifier's accuracy on real images):"]
        for name, row in result["attribute_accuracy"]["attributes"].items():
            real = row.get("classifier_real_accuracy")
            lines.append(f"  {name:20s} {row['accuracy']:.3f}  (real {real if real is None else f'{real:.3f}'}, "
                         f"chance {row['chance']:.3f})")
    if "reconstruction" in result:
        rec = result["reconstruction"]
        lines += ["", f"reconstruction MSE on {rec['images']} held-out images: {rec['mse']:.5f} "
                      f"(pixels in [-1, 1]); {rec['mse_01']:.5f} (pixels in [0, 1])"]
    if "memorisation" in result:
        lines += ["", f"memorisation: {result['memorisation']['verdict']}"]
    lines.append(f"\n{result['seconds']:.0f} s")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> None:
    at_least(args, 1, "--samples", "--k", "--batch-size", "--set-size")
    at_least(args, 0, "--nearest")
    seeds(args, "--seed")
    if args.write and args.no_write:
        raise LatentExplorerError("--write and --no-write contradict each other; pass one of them")

    from training.bundle import METRICS_FILE, load_bundle, read_config
    from training.bundle.output_folder import os_error
    from training.metrics.evaluate import evaluate_bundle, write_metrics
    from training.models.registry import capabilities

    family = read_config(args.bundle)["family"]
    # The VAE's encoder is a training network: load it for the reconstruction error.
    bundle = load_bundle(args.bundle, with_training_networks=capabilities(family).has_encoder)
    result = evaluate_bundle(bundle, featurenet=args.feature_net, samples=args.samples, seed=args.seed,
                             data_root=args.data_root, k=args.k, set_size=args.set_size, batch_size=args.batch_size,
                             progress=not args.quiet)
    if args.nearest:
        from training.metrics.evaluate import featurenet_for
        from training.metrics.memorisation import METRICS_KEY, memorisation_check
        from training.metrics.real import load_real_for_bundle

        real = load_real_for_bundle(bundle.config, data_root=args.data_root, n_test=2)
        net = featurenet_for(bundle, args.feature_net)[0]
        result[METRICS_KEY] = memorisation_check(bundle, real.train, net, samples=args.nearest, seed=args.seed)
    print(json.dumps(result, indent=1) if args.json else format_report(result))
    if args.write:
        try:  # the one file evaluate writes, beside the weights it scored
            written = write_metrics(bundle.path, result)
        except OSError as exc:
            raise os_error(exc, bundle.path / METRICS_FILE, "leave out --write to only print the figures") from None
        if not args.json:
            print(f"wrote {written}")
