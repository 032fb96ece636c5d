"""Figures behind the "Your photo in the latent space" page, on real faces read from their files as uploads are.

GAN bundle: for n faces, the inversion's feature distance against the best of --random codes from the prior.
VAE bundle: the encode-decode MSE of n of the training run's held-out faces against the bundle's metrics.json.
Both print how many files the photo pipeline turned into exactly the training array.

    OMP_NUM_THREADS=1 nice python -m training.bench.photo --bundle checkpoints/celeba/dcgan \\
        --data-root "<your data folder>/celeba64" --n 5
    OMP_NUM_THREADS=1 nice python -m training.bench.photo --bundle checkpoints/anime/vae \\
        --data-root "<your data folder>/anime64" --n 300
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch

from training.bundle import Bundle, load_bundle
from training.errors import LatentExplorerError
from training.latent.inversion import InversionSettings, invert
from training.latent.sampling import sample
from training.latent.typicality import reference_norms, typicality
from training.untrusted.photos import read_photo, training_preprocessing


def dataset_and_files(bundle: Bundle, data_root: str | None):
    """The dataset as the bundle was trained on it, and its image files in the same order (None where the images
    are made, not read: toyfaces, Fashion-MNIST's IDX files)."""
    from training.data.location import load_arguments
    from training.data.registry import load_dataset

    source = bundle.config["dataset"]["source"]
    if source.get("name") == "toyfaces":  # drawn from a seed, no folder
        return load_dataset("toyfaces", image_size=source["image_size"], num_images=source["num_images"],
                            seed=source["seed"], progress=False)[0], None
    args = load_arguments(source, data_root)
    dataset, _ = load_dataset(**args, progress=False)
    files = None
    # Files listed by the index but unreadable are dropped from the arrays, which would shift the order.
    if source.get("name") in ("celeba", "anime") and not (source.get("skipped") or {}).get("unreadable_image"):
        from pathlib import Path

        if source["name"] == "celeba":
            from training.data.celeba import index_celeba

            files = index_celeba(Path(args["path"]), args.get("split") or "all").paths
        else:
            from training.data.anime import index_anime

            files = index_anime(Path(args["path"])).paths
        files = files[:args.get("num_images") or len(files)]
        if len(files) != len(dataset):
            files = None
    return dataset, files


def photos_of(bundle: Bundle, dataset, files, positions: np.ndarray) -> tuple[torch.Tensor, int]:
    """The faces at `positions` read from their files by the photo pipeline (else the arrays), and how many came
    out bit for bit as the training arrays."""
    if files is None:
        return dataset.batch(positions)[0], 0
    prep, _ = training_preprocessing(bundle.config)
    photos = [read_photo(files[i], prep) for i in positions]
    exact = sum(np.array_equal(p.image, dataset.images[i]) for p, i in zip(photos, positions))
    return torch.cat([p.tensor for p in photos]), exact


def gan_figures(bundle: Bundle, dataset, files, args) -> None:
    from training.bundle.paths import featurenet_path
    from training.metrics.evaluate import load_featurenet
    from training.models.featurenet import to_input

    net, _ = load_featurenet(featurenet_path(bundle.config["dataset"]["name"]))
    positions = np.sort(np.random.default_rng(args.seed).choice(len(dataset), args.n, replace=False))
    x, exact = photos_of(bundle, dataset, files, positions)
    print(f"{bundle.name}: {args.n} faces at positions {positions.tolist()} of the {len(dataset)} it was trained on "
          f"(it holds none out); {exact}/{args.n} read from their files exactly as the training arrays")
    start = time.perf_counter()
    with torch.no_grad():
        random_features = torch.cat([net.features(to_input(sample(bundle, bundle.prior, 250, seed=args.seed + k)
                                                           .images, net.config))
                                     for k in range(math.ceil(args.random / 250))])[:args.random]
    print(f"features of {args.random} random codes from {bundle.prior.label}: {time.perf_counter() - start:.1f} s")
    settings = InversionSettings(starts=args.starts, candidates=args.candidates, steps=args.steps)
    norms = reference_norms(bundle.prior, bundle.latent_dim)
    print(f"inversion: {settings}")
    print("face  inversion  best-of-random  pixel MSE  code norm (prior 95%)   wall s  CPU s")
    wins, found, baseline = 0, [], []
    for k, i in enumerate(positions):
        start, cpu = time.perf_counter(), time.process_time()
        result = invert(bundle.generator, x[k:k + 1], bundle.prior, bundle.latent_dim, net, settings)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        with torch.no_grad():
            best_random = float((random_features - net.features(to_input(x[k:k + 1], net.config))).norm(dim=1).min())
        typical = typicality(result.best.code, bundle.prior, norms)
        wins += result.best.feature_distance < best_random
        found.append(result.best.feature_distance)
        baseline.append(best_random)
        print(f"{i:>5}  {result.best.feature_distance:9.3f}  {best_random:14.3f}  {result.best.pixel_mse:9.4f}  "
              f"{typical.norm:6.2f} ({typical.prior_low:.2f}..{typical.prior_high:.2f})  {seconds:7.1f} {cpu:6.1f}")
    print(f"inversion closer than the best of {args.random} random codes on {wins}/{args.n} faces; median feature "
          f"distance {np.median(found):.3f} against {np.median(baseline):.3f} (CPU s: what the search costs on a "
          "quiet machine with --threads; wall s grows with the machine's load)")


def vae_figures(bundle: Bundle, dataset, files, args) -> None:
    from training.loops.vae import holdout_split

    holdout = bundle.config.get("holdout") or {}
    recorded = (bundle.metrics or {}).get("holdout_reconstruction") or {}
    if "fraction" not in holdout or "mse" not in recorded:
        raise LatentExplorerError(f"{bundle.path}: the bundle records no held-out split or reconstruction MSE")
    _, held = holdout_split(len(dataset), holdout["fraction"], holdout["seed"])
    positions = np.sort(np.random.default_rng(args.seed).choice(held, min(args.n, len(held)), replace=False))
    x, exact = photos_of(bundle, dataset, files, positions)
    encoder, decoder = bundle.encoder.eval(), bundle.generator.eval()
    with torch.no_grad():
        mse = torch.cat([(decoder(encoder(chunk)[0]) - chunk).pow(2).mean(dim=(1, 2, 3)) for chunk in x.split(100)])
    mse = mse.double().numpy()
    se = mse.std(ddof=1) / math.sqrt(len(mse))
    print(f"{bundle.name}: {len(positions)} of its {len(held)} held-out faces, read from their files "
          f"({exact}/{len(positions)} exactly the training arrays)" if files else
          f"{bundle.name}: {len(positions)} of its {len(held)} held-out faces (from the dataset's arrays: it has no "
          "image files)")
    print(f"encode-decode MSE (pixels in [-1, 1]): mean {mse.mean():.4f}, per-face std {mse.std(ddof=1):.4f}, "
          f"standard error {se:.4f} (range {mse.min():.4f} .. {mse.max():.4f})")
    gap = (mse.mean() - recorded["mse"]) / se if se > 0 else float("inf")
    print(f"metrics.json: {recorded['mse']:.4f} on all {recorded.get('images', '?')} held-out faces; difference "
          f"{mse.mean() - recorded['mse']:+.4f} = {gap:+.1f} standard errors"
          + (" (within the spread)" if abs(gap) <= 2 else " (outside 2 standard errors)"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.bench.photo", description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", required=True, help="a DCGAN or VAE bundle folder")
    parser.add_argument("--data-root", help="the folder of the bundle's dataset (or the folder holding it)")
    parser.add_argument("--n", type=int, default=5, help="faces to try (default 5)")
    parser.add_argument("--random", type=int, default=1000, help="GAN: random codes to compare with (default 1000)")
    defaults = InversionSettings()
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--starts", type=int, default=defaults.starts)
    parser.add_argument("--candidates", type=int, default=defaults.candidates)
    parser.add_argument("--seed", type=int, default=0, help="which faces (default 0)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        bundle = load_bundle(args.bundle)
        dataset, files = dataset_and_files(bundle, args.data_root)
        capabilities = bundle.capabilities
        if capabilities.has_encoder:
            vae_figures(bundle, dataset, files, args)
        elif capabilities.generates and capabilities.generator_input is None:
            gan_figures(bundle, dataset, files, args)
        else:
            raise LatentExplorerError(f"{args.bundle} is a {bundle.family} bundle; give a DCGAN or a VAE")
    except LatentExplorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
