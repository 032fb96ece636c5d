"""The metrics study: how every figure moves with the number of samples, on every shipped generator, next to the
real floor, degraded real images and a collapsed batch. `python -m training.bench.metrics_study --help`.

Feature vectors are computed once per dataset at the largest size and cached (numpy files, keyed by the feature
network's weights), so smaller sizes are nested subsets and other settings (--set-size, --k, --grid) cost only
the distances. docs/metrics-study.md holds the tables and the defaults chosen from them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

from training.bundle import CONFIG_FILE, WEIGHTS_FILE, load_bundle, read_config
from training.bundle.paths import checkpoints_root
from training.errors import LatentExplorerError
from training.latent.priors import LatentDistribution, sample_latents
from training.metrics import degrade, scoring
from training.metrics.distances import frechet_distance, precision_recall
from training.metrics.evaluate import condition_rows, load_featurenet
from training.metrics.features import generated_features, real_features
from training.metrics.intervals import DEFAULT_REPEATS, scores_at_set_size, usable_set_size
from training.metrics.kid import kernel_distance
from training.metrics.manifold import SCORES
from training.metrics.real import load_real_for_bundle

SIZES = (300, 500, 1000, 2000)
GENERATORS = ("dcgan", "cgan", "vae")
COLLAPSE = LatentDistribution.normal(-10.0, 1.0)
CONTROL_IMAGES = 1000  # real training images behind the floor and each degraded control
COLLAPSE_SAMPLES = 1000


def _cached(cache: Path, key: str, compute) -> torch.Tensor:
    file = cache / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.npy"
    if file.exists():
        return torch.from_numpy(np.load(file, allow_pickle=False))
    value = compute()
    cache.mkdir(parents=True, exist_ok=True)
    np.save(file, value.numpy())
    return value


def dataset_features(dataset: str, data_root: str | None, cache: Path, max_size: int, feature_net: str | None,
                     progress: bool = True) -> dict[str, torch.Tensor]:
    """Features of held-out real images ("real"), of the floor's training images ("floor"), of those degraded
    ("degraded: noise" ...), and of each shipped generator at its prior and at N(-10, 1)."""
    folder = checkpoints_root() / dataset
    bundles = [folder / g for g in GENERATORS if (folder / g / CONFIG_FILE).exists()]
    if not bundles:
        raise LatentExplorerError(f"no shipped generator in {folder}")
    net_path = Path(feature_net) if feature_net else folder / "featurenet"
    net, net_bundle = load_featurenet(net_path)
    net_key = hashlib.sha256((net_path / WEIGHTS_FILE).read_bytes()).hexdigest()
    real = load_real_for_bundle(read_config(bundles[0]), data_root=data_root, n_test=max_size,
                                progress=progress)
    pick = np.random.default_rng(0)
    test_index = pick.choice(len(real.test), min(max_size, len(real.test)), replace=False)
    train_index = pick.choice(len(real.train), min(CONTROL_IMAGES, len(real.train)), replace=False)
    out = {"real": _cached(cache, f"{net_key}/{dataset}/test/{len(test_index)}",
                           lambda: real_features(net, real.test, test_index))}
    out["floor"] = _cached(cache, f"{net_key}/{dataset}/train/{len(train_index)}",
                           lambda: real_features(net, real.train, train_index))
    for name in degrade.MILD:
        out[f"degraded: {name}"] = _cached(
            cache, f"{net_key}/{dataset}/train/{len(train_index)}/{name}={degrade.MILD[name]}",
            lambda name=name: real_features(net, real.train, train_index,
                                            transform=lambda x, b: degrade.degrade(x, name, seed=b)))
    for path in bundles:
        bundle = load_bundle(path)
        sha = hashlib.sha256((path / WEIGHTS_FILE).read_bytes()).hexdigest()[:16]
        for label, dist, n in ((f"{path.name}", bundle.prior, max_size),
                               (f"{path.name} at N(-10,1)", COLLAPSE, COLLAPSE_SAMPLES)):
            def compute(dist=dist, n=n, bundle=bundle, label=label):
                labels, _ = condition_rows(bundle, real.test, n, seed=0)
                codes = sample_latents(dist, n, bundle.latent_dim, seed=0)
                return generated_features(bundle, net, codes, labels, progress=progress, desc=label)
            out[label] = _cached(cache, f"{net_key}/{dataset}/{sha}/{dist.label}/{n}", compute)
    if progress:
        print(f"{dataset}: feature network {net_bundle.name}, {len(out['real'])} held-out real images", file=sys.stderr)
    # Real features come in dataset order (batches read in order), and a folder's order can follow its content:
    # shuffle them (the floor and its degraded copies alike) so that the first n are a random n, as in evaluate.
    shuffle = {len(out["real"]): np.random.default_rng(1).permutation(len(out["real"])),
               len(out["floor"]): np.random.default_rng(2).permutation(len(out["floor"]))}
    for key in ["real", "floor", *(f"degraded: {name}" for name in degrade.MILD)]:
        out[key] = out[key][torch.from_numpy(shuffle[len(out[key])])]
    return out


def kind_of(item: str) -> str:
    if item in ("floor",) or item.startswith("degraded"):
        return "control"
    return "collapse" if "N(-10,1)" in item else "model"


def study_rows(dataset: str, features: dict[str, torch.Tensor], sizes: tuple[int, ...], k: int, set_size: int,
               repeats: int = DEFAULT_REPEATS, legacy: bool = True) -> list[dict]:
    """One row per (item, size n): n generated (or control) images against min(n, held-out) real ones, the way
    evaluate --samples n scores them, plus (legacy) the old n-vs-n precision/recall."""
    rows = []
    for item, fake in features.items():
        if item == "real":
            continue
        for n in sizes:
            if n > len(fake):
                continue
            real = features["real"][:min(n, len(features["real"]))]
            m = usable_set_size(set_size, n, len(real))
            if m <= k:
                continue
            sets = scores_at_set_size(real, fake[:n], k, m, repeats=repeats, seed=0)
            row = {"dataset": dataset, "item": item, "kind": kind_of(item), "n": n, "real": len(real),
                   "set_size": m, "sets": sets.sets,
                   **{name: e.value for name, e in sets.scores.items()},
                   **{f"{name}_ci": [e.low, e.high] for name, e in sets.scores.items()}}
            if legacy:
                kid = kernel_distance(real, fake[:n], subset_size=m)
                p, r = precision_recall(real[:n], fake[:min(n, len(real))], k)
                row.update(kid=kid.value, kid_std=kid.std, fd=frechet_distance(real, fake[:n]),
                           legacy_precision=p, legacy_recall=r)
            rows.append(row)
    return rows


def must_holds(rows: list[dict], app_sizes: tuple[int, ...] = (500, 2000), tolerance: float = 0.1) -> dict:
    """The three checks per score: collapse <= 0.5 at every size, a model's 500 and 2000 intervals overlap,
    degraded real within `tolerance` of the floor at the same size."""
    result = {}
    for name in SCORES:
        collapse = [r for r in rows if r["kind"] == "collapse"]
        worst_collapse = max((r[name] for r in collapse), default=float("nan"))
        disagree = []
        by_item = {}
        for r in rows:
            if r["kind"] == "model" and r["n"] in app_sizes:
                by_item.setdefault((r["dataset"], r["item"]), {})[r["n"]] = r
        for key, pair in by_item.items():
            if len(pair) == 2:
                a, b = (pair[n][f"{name}_ci"] for n in app_sizes)
                if a[0] > b[1] or b[0] > a[1]:
                    disagree.append(f"{key[0]} {key[1]}")
        floors = {(r["dataset"], r["n"]): r[name] for r in rows if r["item"] == "floor"}
        worst_degraded = max((abs(r[name] - floors[(r["dataset"], r["n"])]) for r in rows
                              if r["item"].startswith("degraded") and (r["dataset"], r["n"]) in floors),
                             default=float("nan"))
        result[name] = {"collapse_max": worst_collapse, "collapse_ok": worst_collapse <= 0.5,
                        "sizes_disagree": disagree, "degraded_max_gap": worst_degraded,
                        "degraded_ok": worst_degraded <= tolerance}
    return result


def _ci(row: dict, name: str) -> str:
    low, high = row[f"{name}_ci"]
    return f"{row[name]:.2f} [{low:.2f}, {high:.2f}]"


def markdown_table(rows: list[dict]) -> str:
    head = "| dataset | what | n | real | m | " + " | ".join(SCORES) + " | KID ×1000 (std) | FD | old P / R (n vs n) |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        legacy = (f"{r['kid'] * 1000:.2f} ({r['kid_std'] * 1000:.2f}) | {r['fd']:.2f} | "
                  f"{r['legacy_precision']:.3f} / {r['legacy_recall']:.3f}") if "kid" in r else " | | "
        lines.append(f"| {r['dataset']} | {r['item']} | {r['n']} | {r['real']} | {r['set_size']} | "
                     + " | ".join(_ci(r, name) for name in SCORES) + f" | {legacy} |")
    return "\n".join(lines)


def grid_table(features_by_dataset: dict[str, dict], sizes: tuple[int, ...], set_sizes: list[int], ks: list[int],
               repeats: int) -> str:
    """The must-holds for each (set size, k): which settings the defaults can come from."""
    lines = ["| m | k | score | collapse max | 500 vs 2000 disagree | degraded max gap to floor |",
             "|---|---|---|---|---|---|"]
    for m in set_sizes:
        for k in ks:
            rows = [r for d, f in features_by_dataset.items()
                    for r in study_rows(d, f, sizes, k, m, repeats=repeats, legacy=False)]
            for name, check in must_holds(rows).items():
                lines.append(f"| {m} | {k} | {name} | {check['collapse_max']:.2f} | "
                             f"{', '.join(check['sizes_disagree']) or 'none'} | {check['degraded_max_gap']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.bench.metrics_study", description=__doc__)
    parser.add_argument("--data", nargs="+", default=["toyfaces"], help="datasets (toyfaces anime celeba ...)")
    parser.add_argument("--data-root", default=None, help="folder holding anime64/, celeba64/ ...")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--set-size", type=int, default=scoring.DEFAULT_SET_SIZE)
    parser.add_argument("--k", type=int, default=scoring.DEFAULT_K)
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument("--grid", type=int, nargs="*", default=None, metavar="M",
                        help="also check the must-holds for these set sizes (with k = 3 and 5)")
    parser.add_argument("--feature-net", default=None, help="another feature network (one dataset only)")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "latent-explorer" / "study"))
    parser.add_argument("--json", default=None, help="also write every row to this JSON file")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sizes = tuple(sorted(args.sizes))
    try:
        if args.feature_net and len(args.data) != 1:
            raise LatentExplorerError("--feature-net needs exactly one dataset in --data")
        features = {d: dataset_features(d, args.data_root, Path(args.cache), max(sizes), args.feature_net)
                    for d in args.data}
    except LatentExplorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = [r for d, f in features.items() for r in study_rows(d, f, sizes, args.k, args.set_size, args.repeats)]
    print(markdown_table(rows))
    print()
    print(json.dumps(must_holds(rows), indent=1))
    if args.grid:
        print()
        print(grid_table(features, sizes, args.grid, [3, 5], max(5, args.repeats // 2)))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
