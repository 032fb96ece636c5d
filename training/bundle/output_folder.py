"""What a command may do to an existing --out: no command overwrites or deletes a file it did not write itself.

A command writes into a folder that already holds something only when it holds a Latent Explorer bundle (or the
snapshots and temporaries of a run killed before its first save) and the user said so: --resume continues the
run, --overwrite replaces the bundle. Our file names without our config.json are not taken as ours. Replacing
removes the bundle's own files, by name, never anything a user keeps beside them (notes, drafts, a config.json of
their own), so a wrong --out costs one error message, never a file.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from training.bundle import (
    CONFIG_FILE,
    HISTORY_FILE,
    LATENTS_FILE,
    METRICS_FILE,
    SNAPSHOT_DIR,
    TRAINING_STATE_FILE,
    WEIGHTS_FILE,
    read_config,
)
from training.errors import LatentExplorerError

BUNDLE_FILES = (CONFIG_FILE, WEIGHTS_FILE, HISTORY_FILE, METRICS_FILE,
                LATENTS_FILE, TRAINING_STATE_FILE)
_NAMES = "|".join(re.escape(name) for name in BUNDLE_FILES)
# The hidden temporaries our writers leave when killed: training.bundle.atomic's .<name>.<random>.tmp (the bare
# .<name>.tmp is what older versions' save_bundle left) and check_output_folder's .write-test-<random>. A user's own
# .draft.tmp matches none of them.
OWN_TEMPORARY = re.compile(rf"\.(?:{_NAMES})(?:\.\w+)?\.tmp|\.write-test-\w+")
SNAPSHOT = re.compile(r"step_\d+\.png")
SNAPSHOT_TEMPORARY = re.compile(r"\.step_\d+\.png\.\w+\.tmp")
SHOWN_NAMES = 4


def is_own_temporary(name: str, in_snapshots: bool = False) -> bool:
    """Whether a file name in a bundle folder (or in its snapshots/) is one of our interrupted writes."""
    return (SNAPSHOT_TEMPORARY if in_snapshots else OWN_TEMPORARY).fullmatch(name) is not None


def is_own_file(name: str, in_snapshots: bool = False) -> bool:
    """Whether a file name in a bundle folder (or in its snapshots/) is one our commands write."""
    if in_snapshots:
        return SNAPSHOT.fullmatch(name) is not None or is_own_temporary(name, True)
    return name in BUNDLE_FILES or is_own_temporary(name)


def _contents(out: Path) -> tuple[list[Path], list[str]]:
    """(our files in `out` and its snapshots/, names of everything else there). Links are never ours."""
    own, other = [], []
    for entry in sorted(out.iterdir()):
        if entry.name == SNAPSHOT_DIR and entry.is_dir() and not entry.is_symlink():
            for inner in sorted(entry.iterdir()):
                if inner.is_file() and not inner.is_symlink() and is_own_file(inner.name, in_snapshots=True):
                    own.append(inner)
                else:
                    other.append(f"{entry.name}/{inner.name}")
        elif entry.is_file() and not entry.is_symlink() and is_own_file(entry.name):
            own.append(entry)
        else:
            other.append(entry.name)
    return own, other


def _bundle_label(out: Path) -> str | None:
    """'a dcgan bundle (step 500)' when out/config.json reads as a bundle's config, else None."""
    try:
        config = read_config(out)
    except LatentExplorerError:
        return None
    step = config.get("step")
    return f"a {config['family']} bundle" + (f" (step {step})" if step is not None else "")


def check_folder(out: str | Path, resume: bool = False, overwrite: bool = False, can_resume: bool = False) -> None:
    """Refuse, before any work, an --out this command must not write into: a folder holding anything but a
    bundle (files beside a bundle are fine: they stay), or a bundle the user did not ask to continue (--resume,
    where the command has it) or to replace (--overwrite); then prove it can be created and written, leaving
    nothing behind (a file in the way, a read-only disk). A missing or empty folder is always fine."""
    out = Path(out)
    try:
        if out.is_dir() and any(out.iterdir()):
            _check_contents(out, resume or overwrite, can_resume)
    except OSError as exc:  # a folder this process may list but not enter (mode 644)
        raise _unreadable(out, exc) from None
    check_output_folder(out, keep=False)


def _check_contents(out: Path, asked: bool, can_resume: bool) -> None:
    own, other = _contents(out)
    has_config = out / CONFIG_FILE in own  # a link or a folder by that name is the user's
    if not has_config:
        # Without our config.json a weights.safetensors or history.json is only a name anyone may use (a model of
        # the user's own): a run killed before its first save leaves nothing but snapshots and hidden temporaries.
        other = sorted({*other, *(f.name for f in own if f.parent == out and not is_own_temporary(f.name))})
    label = _bundle_label(out) if has_config else "an unfinished run (nothing saved yet)"
    if label is None:  # a config.json that is not a bundle's is the user's, like any other file
        other = sorted({CONFIG_FILE, *other})
    if label is None or (other and not has_config):
        shown = ", ".join(other[:SHOWN_NAMES]) + (f" and {len(other) - SHOWN_NAMES} more"
                                                  if len(other) > SHOWN_NAMES else "")
        raise LatentExplorerError(f"{out} already holds files that are not a Latent Explorer bundle ({shown}); "
                                  "choose another --out (a new or empty folder) so that none of them is overwritten")
    if not asked:
        hint = "pass --resume to continue it or --overwrite to replace it" if can_resume else \
            "pass --overwrite to replace it"
        raise LatentExplorerError(f"{out} already holds {label}; {hint}, or choose another --out")


def remove_own_files(out: str | Path, keep: tuple[str, ...] = ()) -> list[Path]:
    """Delete the files our commands wrote in `out` (bundle files, snapshots, temporaries) except the names in
    `keep`, and snapshots/ when that leaves it empty; everything else stays. Returns what was deleted."""
    out = Path(out)
    if not out.is_dir():
        return []
    removed = [file for file in _contents(out)[0] if file.name not in keep]
    for file in removed:
        file.unlink(missing_ok=True)
    snapshots = out / SNAPSHOT_DIR
    if removed and snapshots.is_dir() and not snapshots.is_symlink() and not any(snapshots.iterdir()):
        snapshots.rmdir()
    return removed


def check_file(out: str | Path, overwrite: bool = False, suffix: str = ".png") -> None:
    """Refuse an --out file that is a folder, has another suffix, or exists when --overwrite was not given."""
    out = Path(out)
    try:
        if out.is_dir():
            raise LatentExplorerError(f"--out {out} is a folder; name the file to write, e.g. "
                                      f"{out / ('grid' + suffix)}")
        if out.suffix.lower() != suffix:
            raise LatentExplorerError(f"--out must name a {suffix} file (got {out})")
        if (out.exists() or out.is_symlink()) and not overwrite:
            raise LatentExplorerError(f"{out} already exists; pass --overwrite to replace it, or choose another --out")
    except OSError as exc:
        raise _unreadable(out.parent, exc) from None


def _unreadable(folder: Path, exc: OSError) -> LatentExplorerError:
    return LatentExplorerError(f"cannot look inside the output folder {folder}: {exc.strerror or exc}; fix its "
                               "permissions or choose another --out")


def os_error(exc: OSError, target: str | Path, other: str = "choose another --out") -> LatentExplorerError:
    """An OSError while writing `target` (disk full, read-only folder, a file in the way) as one plain sentence."""
    return LatentExplorerError(f"could not write {target}: {exc.strerror or exc}; free some space, fix the "
                               f"permissions or {other}")


def check_output_folder(out: Path, keep: bool = True) -> None:
    """Create `out` and prove a file can be written in it, before any time is spent on data or training.
    With keep=False the folders this check created are removed again, so a run that then fails on its data
    leaves nothing behind."""
    try:
        created = [p for p in (out, *out.parents) if not p.exists()]
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LatentExplorerError(
            f"cannot create the output folder {out}: {exc.strerror or exc}"
            + (" (a file is in the way)" if isinstance(exc, (FileExistsError, NotADirectoryError)) else "")
            + "; choose another --out"
        ) from None
    try:
        handle, probe = tempfile.mkstemp(dir=out, prefix=".write-test-")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise LatentExplorerError(
            f"cannot write in the output folder {out}: {exc.strerror or exc}; fix its permissions or choose "
            "another --out"
        ) from None
    if not keep:
        for folder in created:  # deepest first
            folder.rmdir()


def remove_stale_temporaries(out: Path) -> None:
    """Delete what writes interrupted by a kill left behind: the bundle's files are written as hidden
    `.<name>...tmp` files and renamed when complete, so such a file is never part of a bundle. Only those
    names go: a user's own .draft.tmp beside the bundle is not ours to delete."""
    for folder in (out, out / SNAPSHOT_DIR):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                if is_own_temporary(tmp.name, in_snapshots=folder != out):
                    tmp.unlink(missing_ok=True)
