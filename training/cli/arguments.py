"""Checks every command shares, so that each plain mistake on the command line gets the same kind of message.

Numbers are checked at the start of `run()` rather than by argparse types: a wrong one then leaves through the
CLI's one error path like every other user mistake (one `error: ...` line, exit code 2, and `main()` returns
instead of exiting), and the messages read like the training config's own ("--steps must be at least 1")."""

from __future__ import annotations

import argparse
import re

from training.errors import LatentExplorerError

# Every random generator we seed takes it: numpy's refuses negative seeds, torch's overflows past 2**64.
MAX_SEED = 2**32 - 1
# The devices a run may train on, as torch spells them (torch.device also parses "meta", "xla", "opengl" ...).
TRAINING_DEVICE = re.compile(r"(cpu|cuda|mps)(?::(0|[1-9][0-9]{0,3}))?")


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


def device(args: argparse.Namespace, flag: str = "--device") -> None:
    """Refuse, before any work, a device torch cannot train on here: a typo ("bogus", "CPU"), a negative index,
    "meta" (tensors without data) or a GPU this machine does not have. Each failed later with a traceback. The
    spelling is checked without importing torch, so a typo costs no torch start-up."""
    name = str(_value(args, flag))
    if name == "auto":
        return
    spelled = TRAINING_DEVICE.fullmatch(name)
    if spelled is None:
        raise LatentExplorerError(f"{flag} must be auto, cpu, cuda, cuda:N or mps (got {name[:60]!r})")
    kind, index = spelled.group(1), spelled.group(2)
    if kind == "cpu":
        return
    import torch

    if kind == "mps" and not torch.backends.mps.is_available():
        raise LatentExplorerError(f"{flag} mps was asked for but no Apple GPU is available; use {flag} cpu")
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise LatentExplorerError(f"{flag} {name} was asked for but no CUDA GPU is available; use {flag} cpu")
        if index is not None and int(index) >= count:
            raise LatentExplorerError(f"{flag} {name} names a GPU this machine does not have (it has {count}: "
                                      f"cuda:0 to cuda:{count - 1})")


def add_overwrite(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help=f"replace {what} already at --out (only the files our commands write are removed; "
                             "anything else in the folder stays)")


def names_list(text: str) -> list[str]:
    """A comma-separated list of names, blanks dropped: "Smiling, Male," -> ["Smiling", "Male"]."""
    return [v.strip() for v in text.split(",") if v.strip()]
