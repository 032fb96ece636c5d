"""`python -m training import-dcgan PATH --out BUNDLE [--data DATASET]`: a netG.pth from the PyTorch DCGAN tutorial
-> a bundle; with --data it records the dataset it was trained on and `evaluate` scores it like a shipped model."""

from __future__ import annotations

import argparse

from training.cli.arguments import add_overwrite


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "import-dcgan",
        help="turn a PyTorch DCGAN tutorial netG state dict (.pth) into a bundle the explorer can open",
        description="Reads the file with torch.load(weights_only=True): no code in it ever runs. Save it in "
                    'your notebook with torch.save(netG.state_dict(), "netG.pth").',
    )
    parser.add_argument("path", help="the .pth state dict of the generator (netG)")
    parser.add_argument("--out", required=True, help="bundle folder to write, e.g. checkpoints/celeba/my-dcgan")
    add_overwrite(parser, "a bundle")
    parser.add_argument("--name", default=None, help="display name stored in the bundle")
    # Not argparse choices: a wrong name leaves through the CLI's one error line, like every other mistake.
    parser.add_argument("--data", default=None, metavar="{celeba,anime,toyfaces,fashion-mnist}",
                        help="the dataset the generator was trained on: the bundle then records it as the "
                             "dataset's shipped models do (checked: image size and channels must fit it), and "
                             "`python -m training evaluate` scores it with that dataset's feature network. Leave it "
                             "out for a generator trained on something else (explored, not scored)")


def run(args: argparse.Namespace) -> None:
    from training.bundle import CONFIG_FILE, WEIGHTS_FILE, load_bundle
    from training.bundle.output_folder import check_folder, remove_own_files
    from training.bundle.trained_on import check_choice
    from training.errors import LatentExplorerError
    from training.untrusted.importers import import_tutorial_dcgan

    check_choice(args.data)
    check_folder(args.out, overwrite=args.overwrite)  # before the file is read: a wrong --out fails at once
    try:
        out = import_tutorial_dcgan(args.path, args.out, name=args.name, trained_on=args.data)
    except OSError as exc:  # the disk filled up, or a file was unreadable after all its checks
        raise LatentExplorerError(f"could not import {args.path} into {args.out}: {exc.strerror or exc}") from None
    # Only once the new bundle is written (a file that fails to import leaves the old one whole): the old run's
    # history, metrics, snapshots and codes describe other weights.
    remove_own_files(out, keep=(CONFIG_FILE, WEIGHTS_FILE))
    bundle = load_bundle(out)  # prove the bundle reads back before telling the user it is done
    model = bundle.config["model"]
    print(f"wrote {out}: DCGAN generator with nz={model['latent_dim']}, ngf={model['g_width']}, "
          f"{model['channels']} channels, {model['image_size']}x{model['image_size']}; "
          f"open it with LATENT_EXPLORER_CHECKPOINTS or copy it under checkpoints/")
    if args.data is not None:
        print(f"trained on {args.data}: score it with `python -m training evaluate {out}` (the {args.data} feature "
              "network and real images, as for the shipped models)")
    else:
        print("trained on something else (no --data): it is explored, not scored; name its dataset with --data to "
              "compare it with the shipped models")
