"""CLI subcommands, one module each; every module exposes `add_parser(subparsers)` and `run(args)` (arguments.py
holds the checks of numbers and flags they share)."""

COMMANDS = ("train", "info", "import-dcgan", "evaluate", "train-featurenet", "build-checkpoints", "sample",
            "portable-paths")
