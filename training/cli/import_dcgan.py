"""`python -m training import-dcgan PATH --out BUNDLE`: a netG.pth from the PyTorch DCGAN tutorial -> a bundle."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "import-dcgan",
        help="turn a PyTorch DCGAN tutorial netG state dict (.pth) into a bundle the explorer can open",
        description="Reads the file with torch.load(weights_only=True): no code in it ever runs. Save it in "
                    'your notebook with torch.save(netG.state_dict(), "netG.pth").',
    )
    parser.add_argument("path", help="the .pth state dict of the generator (netG)")
    parser.add_argument("--out", required=True, help="bundle folder to write, e.g. checkpoints/celeba/my-dcgan")
    parser.add_argument("--name", default=None, help="display name stored in the bundle")


def run(args: argparse.Namespace) -> None:
    from training.checkpoint import load_bundle
    from training.importers import import_tutorial_dcgan

    out = import_tutorial_dcgan(args.path, args.out, name=args.name)
    bundle = load_bundle(out)  # prove the bundle reads back before telling the user it is done
    model = bundle.config["model"]
    print(f"wrote {out}: DCGAN generator with nz={model['latent_dim']}, ngf={model['g_width']}, "
          f"{model['channels']} channels, {model['image_size']}x{model['image_size']}; "
          f"open it with LATENT_EXPLORER_CHECKPOINTS or copy it under checkpoints/")
