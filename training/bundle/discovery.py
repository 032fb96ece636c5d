"""Finding bundles: every folder under a root that holds a config.json."""

from __future__ import annotations

import os
from pathlib import Path

from training.bundle.format import CONFIG_FILE, entry_is


def find_bundles(root: str | Path) -> list[Path]:
    """Every folder under root that holds a config.json, sorted (checkpoints/<dataset>/<model>).

    Hidden folders below root are skipped, and the search does not go inside a bundle (its snapshots/ hold no
    bundles): the app lists the bundles on every rerun, and walking every snapshot cost milliseconds each time.
    Symbolic links to folders are followed, once each."""
    root = Path(root)
    try:
        if not root.is_dir():
            return []
    except OSError:  # a root this process may not enter lists no bundle rather than breaking every page
        return []
    found, todo, linked = [], [root], {os.path.realpath(root)}
    while todo:
        folder = todo.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError:
            continue
        # An entry the process may not stat (a link into a forbidden folder) is skipped, not raised.
        if any(e.name == CONFIG_FILE and entry_is(e, "file") for e in entries):
            found.append(folder)
            continue
        for entry in entries:
            if entry.name.startswith(".") or not entry_is(entry, "dir"):
                continue
            if entry.is_symlink():  # only links can make a loop; resolving every folder cost more than the walk
                target = os.path.realpath(entry.path)
                if target in linked:
                    continue
                linked.add(target)
            todo.append(folder / entry.name)
    if len(linked) == 1:  # no link followed, so no bundle was found twice (resolving them all cost the most)
        return sorted(found)
    unique = {}
    for bundle in sorted(found):  # a link to a folder walked anyway finds its bundles twice: keep one path each
        unique.setdefault(os.path.realpath(bundle), bundle)
    return sorted(unique.values())
