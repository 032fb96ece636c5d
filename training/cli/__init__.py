"""CLI subcommands, one module each; every module exposes `add_parser(subparsers)` and `run(args)`."""

COMMANDS = ("train", "info", "import-dcgan", "evaluate", "train-featurenet", "build-checkpoints", "sample")
