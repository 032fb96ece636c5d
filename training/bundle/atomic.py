"""Writing a file so that a kill or a power cut at any moment leaves the old file or the new one, never half of one.

Every writer of bundles and caches goes through `replacing`: write a hidden temporary beside the target
(`.<name>.<random>.tmp`, the pattern output_folder.OWN_TEMPORARY recognises), flush it to the disk, rename it over
the target, then flush the folder so the rename itself survives a crash.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from training.untrusted.checks import finite_json


def _fsync_path(path: str | Path, directory: bool = False) -> None:
    if directory and os.name != "posix":  # only POSIX systems can open a folder to flush it
        return
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` for the block to write; when the block ends without an error the file is
    flushed to disk and renamed over `path`, else it is removed. The folder is created when missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; bundles and caches are meant to be shared
        yield Path(tmp)
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_path(path.parent, directory=True)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Call write(handle) on a binary file that replaces `path` only once it is complete."""
    with replacing(path) as tmp, open(tmp, "wb") as handle:
        write(handle)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write_json(path: str | Path, data: Any, indent: int | None = 1) -> None:
    """The one JSON writer for bundles, caches and live runs. A NaN or infinity is refused (finite_json) rather than
    written: our own strict reader would refuse the file afterwards."""
    text = json.dumps(finite_json(data), indent=indent, sort_keys=False, allow_nan=False) + "\n"
    atomic_write_bytes(path, text.encode())
