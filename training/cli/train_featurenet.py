"""`python -m training train-featurenet`: train a dataset's feature network (attribute classifier) for evaluate."""

from __future__ import annotations

import argparse

from training.cli.arguments import add_overwrite, at_least, device, names_list, seeds


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "train-featurenet", help="train the attribute classifier whose features evaluate compares",
        description="Train a small CNN to predict a dataset's labels and save it as a bundle with its held-out "
                    "accuracy. evaluate looks for it at checkpoints/<dataset>/featurenet/.")
    parser.add_argument("--data", default="toyfaces", help="dataset name (toyfaces)")
    parser.add_argument("--data-root", default=None, help="local folder of a real dataset")
    parser.add_argument("--num-images", type=int, default=None, help="training images (toyfaces: default 30000)")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the procedural dataset")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--heldout", type=int, default=5000, help="held-out images for the accuracy (default 5000)")
    parser.add_argument("--width", type=int, default=32, help="channels of the first conv (features: 4 x width)")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda ...")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--no-harmless", action="store_true", help="leave JPEG and colour jitter out of the "
                        "augmentations (the older recipe)")
    parser.add_argument("--no-artifacts", action="store_true", help="do not teach the features to tell saturated, "
                        "noise-drowned or black images from real ones (the older recipe)")
    parser.add_argument("--damage", type=names_list, default="saturated,noise,dark", metavar="KIND,...",
                        help="damage the features learn to tell from real images: saturated, noise, dark "
                        "(default all three)")
    parser.add_argument("--consistency", type=float, default=0.0, help="weight of a loss that keeps an augmented "
                        "image's features on its original's (default 0: off)")
    parser.add_argument("--blur-share", type=float, default=0.6, help="largest share of a 3x3 blur mixed into a "
                        "training image (0 to 1, default 0.6); thin-stroke data such as Fashion-MNIST needs 1.0")
    parser.add_argument("--out", default=None, help="bundle folder (default checkpoints/<dataset>/featurenet)")
    add_overwrite(parser, "a bundle (such as the shipped feature network)")


def run(args: argparse.Namespace) -> None:
    at_least(args, 1, "--num-images", "--image-size", "--heldout", "--width", "--steps", "--batch-size", "--threads")
    seeds(args, "--seed", "--data-seed")
    device(args)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)

    from pathlib import Path

    from training.bundle import CONFIG_FILE, HISTORY_FILE, METRICS_FILE, WEIGHTS_FILE, read_config
    from training.bundle.output_folder import check_folder, os_error, remove_own_files
    from training.bundle.paths import featurenet_path
    from training.metrics.real import load_real
    from training.metrics.train_featurenet import FeatureNetTrainConfig, config_for, train_featurenet

    out = Path(args.out or featurenet_path(args.data))
    check_folder(out, overwrite=args.overwrite)  # before minutes of training, not after
    train_config = FeatureNetTrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                                         device=args.device, harmless=not args.no_harmless,
                                         artifacts=not args.no_artifacts, blur_share=args.blur_share,
                                         consistency=args.consistency,
                                         damage=tuple(args.damage))
    train_config.validate()
    real = load_real(args.data, image_size=args.image_size, num_images=args.num_images, seed=args.data_seed,
                     data_root=args.data_root, n_test=args.heldout, progress=True)
    model_config = config_for(real.train, width=args.width)
    print(f"feature network for {args.data}: {len(real.train)} training images, {len(real.test)} held out, "
          f"{model_config.feature_dim} features")
    try:
        train_featurenet(real.train, real.test, model_config, train_config, out, real.train_source, real.test_source)
    except OSError as exc:
        raise os_error(exc, out) from None
    # Only now, so that a run that fails leaves the old bundle whole: what the new one did not rewrite is stale.
    remove_own_files(out, keep=(CONFIG_FILE, WEIGHTS_FILE, HISTORY_FILE, METRICS_FILE))
    accuracy = read_config(out)["accuracy"]
    print("held-out accuracy: " + ", ".join(f"{k} {v:.4f}" for k, v in accuracy.items()))
    print(f"wrote {out}")
