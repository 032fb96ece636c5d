"""`python -m training train`: train a model on a dataset and write a bundle folder."""

from __future__ import annotations

import argparse


def _steps_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(sorted({int(v) for v in text.split(",") if v.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated step numbers, got {text!r}") from None


def _names_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def add_parser(sub) -> None:
    train = sub.add_parser("train", help="train a model and write a bundle folder")
    train.add_argument("--model", choices=["dcgan"], default="dcgan")
    data = train.add_argument_group("data")
    # Not argparse choices: an unknown name is a LatentExplorerError from load_dataset (exit 2 with the list).
    data.add_argument("--data", default="toyfaces", metavar="{toyfaces,celeba,anime,fashion-mnist,folder}",
                      help="dataset (default toyfaces); the README's Datasets section describes each")
    data.add_argument("--data-root", default=None, metavar="PATH",
                      help="folder of a real dataset (fashion-mnist: default /usr/share/datasets/fashion-mnist)")
    data.add_argument("--attributes", type=_names_list, default=None, metavar="A,B,...",
                      help="label columns to keep, e.g. Smiling,Eyeglasses,Male (default: all)")
    data.add_argument("--face-margin", type=float, default=None, metavar="F",
                      help="trim this fraction of the shorter side from each edge before resizing (LFW: 0.25)")
    data.add_argument("--labels", default=None, metavar="CSV",
                      help="labels CSV of a --data folder dataset (default: <data-root>/labels.csv if present)")
    data.add_argument("--num-images", type=int, default=None,
                      help="dataset size (toyfaces: default 30000; real datasets: the first N, default all)")
    data.add_argument("--data-seed", type=int, default=0, help="seed of the procedural dataset")
    data.add_argument("--image-size", type=int, default=64)
    opt = train.add_argument_group("optimisation")
    opt.add_argument("--steps", type=int, default=5000)
    opt.add_argument("--batch-size", type=int, default=128)
    opt.add_argument("--lr", type=float, default=2e-4, help="learning rate of both networks")
    opt.add_argument("--lr-g", type=float, default=None)
    opt.add_argument("--lr-d", type=float, default=None)
    opt.add_argument("--beta1", type=float, default=0.5)
    opt.add_argument("--beta2", type=float, default=0.999)
    opt.add_argument("--noise", default="N(0,1)", help="training noise: N(0,1), U(0,1), U(-1,1), ...")
    opt.add_argument("--seed", type=int, default=0)
    opt.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    model = train.add_argument_group("model")
    model.add_argument("--latent-dim", type=int, default=100)
    model.add_argument("--g-width", type=int, default=64, help="generator width (ngf)")
    model.add_argument("--d-width", type=int, default=64, help="discriminator width (ndf)")
    model.add_argument("--g-activation", choices=["relu", "leaky_relu"], default="relu")
    out = train.add_argument_group("output")
    out.add_argument("--snapshot-steps", type=_steps_list, default=(0, 200, 1000, 2500, 5000, 10000, 20000))
    out.add_argument("--checkpoint-every", type=int, default=500)
    out.add_argument("--out", required=True, help="bundle folder to write")
    out.add_argument("--name", default=None, help="display name stored in the bundle")


def run(args: argparse.Namespace) -> None:
    from dataclasses import asdict

    from training.data.registry import load_dataset
    from training.latent import LatentDistribution
    from training.models.dcgan import DCGANConfig
    from training.trainer import TrainConfig, train_dcgan

    noise = LatentDistribution.parse(args.noise)
    train_config = TrainConfig(
        steps=args.steps, batch_size=args.batch_size, lr_g=args.lr_g or args.lr, lr_d=args.lr_d or args.lr,
        beta1=args.beta1, beta2=args.beta2, seed=args.seed, noise=noise.to_json(),
        snapshot_steps=args.snapshot_steps, checkpoint_every=args.checkpoint_every, device=args.device,
    )
    train_config.validate()
    model_config = DCGANConfig(latent_dim=args.latent_dim, image_size=args.image_size, g_width=args.g_width,
                               d_width=args.d_width, g_activation=args.g_activation)
    model_config.validate()
    dataset, source = load_dataset(args.data, image_size=args.image_size, num_images=args.num_images,
                                   seed=args.data_seed, path=args.data_root, attributes=args.attributes,
                                   face_margin=args.face_margin, labels=args.labels)
    model_config.channels = dataset.channels
    print(f"dataset {dataset.name}: {len(dataset)} images {dataset.image_size}px; model {asdict(model_config)}")
    out = train_dcgan(dataset, model_config, train_config, args.out, source=source, name=args.name)
    print(f"wrote {out}")
