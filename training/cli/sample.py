"""`python -m training sample BUNDLE --out grid.png`: a PNG grid of a bundle's samples (any latent distribution)."""

from __future__ import annotations

import argparse
from pathlib import Path

from training.cli.arguments import add_overwrite, at_least, seeds


def add_parser(sub) -> None:
    parser = sub.add_parser("sample", help="write a PNG grid of samples from a bundle")
    parser.add_argument("bundle")
    parser.add_argument("--out", required=True, help="PNG file to write")
    add_overwrite(parser, "a file")
    parser.add_argument("--n", type=int, default=32, help="number of samples (1-256)")
    parser.add_argument("--nrow", type=int, default=8, help="images per row")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dist", default="N(0,1)", help="latent distribution: N(0,1), N(-10,1), U(0,1), ...")


def run(args: argparse.Namespace) -> None:
    from training.errors import LatentExplorerError

    if not 1 <= args.n <= 256:
        raise LatentExplorerError(f"--n must be between 1 and 256 (got {args.n})")
    at_least(args, 1, "--nrow")
    seeds(args, "--seed")

    from training.bundle import load_bundle
    from training.bundle.grids import save_grid
    from training.bundle.output_folder import check_file, check_output_folder, os_error
    from training.latent import sampling
    from training.latent.priors import LatentDistribution

    out = Path(args.out)
    check_file(out, overwrite=args.overwrite)
    check_output_folder(out.parent, keep=False)  # a folder that cannot be written fails before the generator runs
    bundle = load_bundle(args.bundle)
    if not bundle.capabilities.generates:
        raise LatentExplorerError(f"{bundle.path} is a {bundle.family} bundle, which makes no images; sample a "
                                  "generator's bundle (a DCGAN, VAE, conditional GAN or InfoGAN)")
    # Conditional / InfoGAN generators use their deterministic default inputs.
    images = sampling.sample(bundle, LatentDistribution.parse(args.dist), args.n, seed=args.seed).images
    try:
        save_grid(images, out, nrow=args.nrow)
    except OSError as exc:
        raise os_error(exc, out) from None
    print(f"wrote {out}: {args.n} samples from {bundle.name} with z ~ {args.dist}")
