"""`python -m training train`: train a model on a dataset and write a bundle folder."""

from __future__ import annotations

import argparse

from training.cli.arguments import add_overwrite, at_least, device, names_list, seeds


class _Trainable:
    """registry.TRAINABLE, looked up only when argparse asks (building the parser must not import torch)."""

    def _names(self) -> tuple[str, ...]:
        from training.models import registry

        return registry.TRAINABLE

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self):
        return iter(self._names())


TRAINABLE_FAMILIES = _Trainable()


def _steps_list(text: str) -> tuple[int, ...]:
    try:
        steps = tuple(sorted({int(v) for v in text.split(",") if v.strip()}))
    except ValueError:
        steps = None
    if steps is None or (steps and steps[0] < 0):
        raise argparse.ArgumentTypeError(f"expected comma-separated step numbers (0 or more), got {text!r}")
    return steps


def _comma_ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


def _or(value, default):
    """A per-network option, or the shared one when it is not given (0 is given, and then refused)."""
    return default if value is None else value


def _model_config(args: argparse.Namespace):
    """The family's config from the model flags (a conditional GAN's conditions come once the data is loaded)."""
    from dataclasses import fields

    from training.models import registry

    flags = dict(latent_dim=args.latent_dim, image_size=args.image_size, g_width=args.g_width,
                 d_width=args.d_width, g_activation=args.g_activation, kl_weight=args.kl_weight,
                 recon_loss=args.recon_loss, categorical_codes=list(args.info_categorical),
                 continuous_codes=args.info_continuous)
    cls = registry.config_class(args.model)
    # A family takes the flags its config has a field for (--kl-weight is the VAE's, --info-* InfoGAN's).
    own = {f.name for f in fields(cls)}
    return cls(**{name: value for name, value in flags.items() if name in own})


def add_parser(sub) -> None:
    train = sub.add_parser("train", help="train a model and write a bundle folder")
    train.add_argument("--model", choices=TRAINABLE_FAMILIES, default="dcgan",
                       help="dcgan (the tutorial's), vae, cgan (ACGAN-style, needs labels), infogan; "
                            "docs/training.md (Models) describes each")
    data = train.add_argument_group("data")
    # Not argparse choices: an unknown name is a LatentExplorerError from load_dataset (exit 2 with the list).
    data.add_argument("--data", default="toyfaces", metavar="{toyfaces,celeba,anime,fashion-mnist,folder}",
                      help="dataset (default toyfaces); docs/training.md (Datasets) describes each")
    data.add_argument("--data-root", default=None, metavar="PATH",
                      help="folder of a real dataset (fashion-mnist: default /usr/share/datasets/fashion-mnist)")
    data.add_argument("--attributes", type=names_list, default=None, metavar="A,B,...",
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
    opt.add_argument("--lr-g", type=float, default=None, help="generator (VAE: decoder) learning rate")
    opt.add_argument("--lr-d", type=float, default=None, help="discriminator (VAE: encoder) learning rate")
    opt.add_argument("--beta1", type=float, default=0.5)
    opt.add_argument("--beta2", type=float, default=0.999)
    opt.add_argument("--noise", default="N(0,1)", help="training noise: N(0,1), U(0,1), U(-1,1), ...")
    opt.add_argument("--seed", type=int, default=0)
    opt.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    opt.add_argument("--threads", type=int, default=None,
                     help="CPU threads for torch (default: torch's choice). On a busy machine 1 thread is often "
                          "several times faster than 2, which stall waiting for each other")
    opt.add_argument("--d-every", type=int, default=1, metavar="K",
                     help="update the discriminator only on every K-th step (the anime lab halves it: 2)")
    opt.add_argument("--d-steps", type=int, default=1, metavar="K",
                     help="discriminator updates, each on a fresh batch, per generator update")
    opt.add_argument("--label-smoothing", type=float, default=0.0, metavar="S",
                     help="one-sided: the discriminator's target for real images is 1 - S (e.g. 0.1)")
    opt.add_argument("--label-flip", type=float, default=0.0, metavar="P",
                     help="swap each real/fake target of the discriminator with probability P (e.g. 0.05)")
    opt.add_argument("--class-weight", type=float, default=1.0, metavar="W",
                     help="cgan: loss = adversarial + W x classification (the anime lab tried 2 and 10)")
    opt.add_argument("--classify-fakes", action="store_true",
                     help="cgan: D's classifier also learns from fakes with their requested labels (the ACGAN "
                          "paper); by default it learns from real images only, so G cannot hide attributes in "
                          "patterns only D sees")
    opt.add_argument("--balance-classes", action="store_true",
                     help="cgan: weigh each attribute value's classification loss by the inverse of its share of "
                          "the training labels, so rare values (Eyeglasses, Blond_Hair on CelebA) count as much as "
                          "common ones")
    opt.add_argument("--info-weight", type=float, default=1.0, metavar="W",
                     help="infogan: loss = adversarial + W x Q's code loss")
    opt.add_argument("--diverge-patience", type=int, default=1000, metavar="N",
                     help="stop when D(G(z)) < 0.001 for N steps in a row (the discriminator has won)")
    fast = train.add_argument_group("speed (runtime choices: they may change on --resume; bundles are the same)")
    fast.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                      help="bf16: forward passes under bf16 autocast, about 1.8x faster for the 64x64 DCGAN on a "
                           "CPU with AVX512-BF16 (measure yours: python -m training.bench); weights, optimizer "
                           "and losses stay fp32")
    fast.add_argument("--channels-last", action="store_true",
                      help="networks and batches in channels_last (NHWC) memory order, the one oneDNN and cuDNN "
                           "convolutions prefer (about 10%% faster for the 64x64 DCGAN on a CPU)")
    model = train.add_argument_group("model")
    model.add_argument("--latent-dim", type=int, default=100, help="nz (InfoGAN: noise, without the codes)")
    model.add_argument("--g-width", type=int, default=64, help="generator / decoder width (ngf)")
    model.add_argument("--d-width", type=int, default=64, help="discriminator / encoder width (ndf)")
    model.add_argument("--g-activation", choices=["relu", "leaky_relu"], default="relu")
    model.add_argument("--kl-weight", type=float, default=1e-4, metavar="W",
                       help="vae: loss = reconstruction + W x KL (the VAE lab compares 1e-4 and 1e-5)")
    model.add_argument("--recon-loss", choices=["mse", "bce"], default="mse", help="vae: reconstruction loss")
    model.add_argument("--conditions", type=names_list, default=None, metavar="A,B,...",
                       help="cgan: attributes to condition on (default: all the dataset's)")
    model.add_argument("--info-categorical", type=_comma_ints, default=[10], metavar="K,...",
                       help="infogan: number of values of each categorical code ('' for none; default 10)")
    model.add_argument("--info-continuous", type=int, default=2, metavar="N",
                       help="infogan: number of continuous codes, uniform on [-1, 1] (default 2)")
    out = train.add_argument_group("output")
    out.add_argument("--snapshot-steps", type=_steps_list, default=(0, 200, 1000, 2500, 5000, 10000, 20000))
    out.add_argument("--checkpoint-every", type=int, default=500)
    out.add_argument("--out", required=True, help="bundle folder to write")
    out.add_argument("--name", default=None, help="display name stored in the bundle")
    out.add_argument("--resume", action="store_true",
                     help="continue the interrupted run in --out from its last bundle (same flags; --steps may "
                          "grow); ends with the same weights as an uninterrupted run")
    add_overwrite(out, "the bundle")
    out.add_argument("--keep-training-state", action="store_true",
                     help="keep training_state.safetensors (optimizers, random streams) in the finished bundle, "
                          "so that it can be --resume'd with more --steps later (about 2-3x the weights' size)")
    out.add_argument("--holdout-fraction", type=float, default=0.1, metavar="F",
                     help="vae: share of the images held out for the test MSE and latents.npz")


def run(args: argparse.Namespace) -> None:
    from training.errors import LatentExplorerError

    at_least(args, 1, "--threads", "--num-images", "--image-size")
    seeds(args, "--seed", "--data-seed")
    device(args)
    if args.resume and args.overwrite:
        raise LatentExplorerError("--resume continues the run in --out and --overwrite replaces it: pass only one")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    import os
    from dataclasses import asdict

    from training.bundle.output_folder import check_folder, remove_own_files
    from training.data.registry import load_dataset
    from training.latent.priors import LatentDistribution
    from training.loops.config import TrainConfig
    from training.loops.distributed import shutdown
    from training.loops.trainer import train
    from training.models import registry

    noise = LatentDistribution.parse(args.noise)
    train_config = TrainConfig(
        steps=args.steps, batch_size=args.batch_size, lr_g=_or(args.lr_g, args.lr), lr_d=_or(args.lr_d, args.lr),
        beta1=args.beta1, beta2=args.beta2, seed=args.seed, noise=noise.to_json(),
        snapshot_steps=args.snapshot_steps, checkpoint_every=args.checkpoint_every, device=args.device,
        d_every=args.d_every, d_steps=args.d_steps, label_smoothing=args.label_smoothing, label_flip=args.label_flip,
        class_weight=args.class_weight, classify_fakes=args.classify_fakes,
        balance_classes=args.balance_classes, info_weight=args.info_weight,
        diverge_patience=args.diverge_patience, holdout_fraction=args.holdout_fraction,
        precision=args.precision, channels_last=args.channels_last,
    )
    train_config.validate()
    main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 writes
    if main_process:  # before the data loads: a wrong --out fails in a second
        check_folder(args.out, resume=args.resume, overwrite=args.overwrite, can_resume=True)
    model_config = _model_config(args)
    # Refuse bad flags before loading data (a conditional GAN's conditions are checked once the data is here).
    conditional = registry.capabilities(args.model).conditional
    (model_config.dcgan_config() if conditional else model_config).validate()
    if args.conditions is not None and not conditional:
        raise LatentExplorerError(f"--conditions is for --model cgan; a {args.model} is not conditioned")
    dataset, source = load_dataset(args.data, image_size=args.image_size, num_images=args.num_images,
                                   seed=args.data_seed, path=args.data_root, attributes=args.attributes,
                                   face_margin=args.face_margin, labels=args.labels)
    model_config.channels = dataset.channels
    if conditional:
        model_config.conditions = type(model_config).for_dataset(dataset.attributes, args.conditions).conditions
    model_config.validate()
    if main_process and args.overwrite:  # only now: a mistake in the flags or the data leaves the old bundle whole
        removed = remove_own_files(args.out)
        if removed:
            print(f"--overwrite: removed the {len(removed)} files of the previous bundle in {args.out}")
    if main_process:
        print(f"dataset {dataset.name}: {len(dataset)} images {dataset.image_size}px; {args.model} "
              f"{asdict(model_config)}")
    try:
        out = train(args.model, dataset, model_config, train_config, args.out, source=source, name=args.name,
                    resume=args.resume, keep_training_state=args.keep_training_state)
    finally:
        shutdown()  # torchrun: leave the process group even when training stopped with an error
    if main_process:
        print(f"wrote {out}")
