"""Checks every command shares, so that each plain mistake on the command line gets the same kind of message.

Numbers are checked at the start of `run()` rather than by argparse types: a wrong one then leaves through the
CLI's one error path like every other user mistake (one `error: ...` line, exit code 2, and `main()` returns
instead of exiting), and the messages read like the training config's own ("--steps must be at least 1")."""

from __future__ import annotations

import argparse

from training.errors import LatentExplorerError

# Every random generator we seed takes it: numpy's refuses negative seeds, torch's overflows past 2**64.
MAX_SEED = 2**32 - 1


def _value(args: argparse.Namespace, flag: str):
    return getattr(args, flag.lstrip("-").replace("-", "_"))


def at_least(args: argparse.Namespace, minimum: int, *flags: str) -> None:
    """Refuse each of the --flags that is given and below `minimum` (0 or negative counts, sizes, steps)."""
    for flag in flags:
        value = _value(args, flag)
        if value is not None and not value >= minimum:
            raise LatentExplorerError(f"{flag} must be at least {minimum} (got {value})")


def seeds(args: argparse.Namespace, *flags: str) -> None:
    """Refuse seeds that some random generator would refuse later, with a traceback instead of a message."""
    for flag in flags:
        value = _value(args, flag)
        if not 0 <= value <= MAX_SEED:
            raise LatentExplorerError(f"{flag} must be a whole number from 0 to {MAX_SEED} (got {value})")


def add_overwrite(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help=f"replace {what} already at --out (only the files our commands write are removed; "
                             "anything else in the folder stays)")


def names_list(text: str) -> list[str]:
    """A comma-separated list of names, blanks dropped: "Smiling, Male," -> ["Smiling", "Male"]."""
    return [v.strip() for v in text.split(",") if v.strip()]
