"""Read a torch.save file's pickle opcodes, without running them, before torch.load may see the file.

`torch.load(weights_only=True)` runs no code from the file, but it is not a sandbox: a 2 MB file built only of
opcodes it allows (a dictionary key nested two million tuples deep) crashes the C parts of CPython's pickle
machinery with a stack overflow, and a crash takes the whole Streamlit server, every student's session, with it.
So we simulate the pickle stack first, with `pickletools` (pure Python, nothing is built) and refuse files whose
objects nest deeper, or whose opcode stream is longer, than any state dict needs. A tutorial netG's state dict
nests about 6 levels and takes a few thousand opcodes.
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from pathlib import Path
from typing import BinaryIO

from training.errors import LatentExplorerError

MAX_DEPTH = 64
MAX_OPCODES = 2_000_000
MAX_PICKLE_BYTES = 64 << 20
# The legacy (pre-1.6) torch.save format is five pickles in a row (magic number, protocol, system info, the
# object, the storage keys) followed by raw tensor bytes.
LEGACY_PICKLES = 5
# Opcodes that add to the container below them and leave it on the stack: nesting grows by the added items only.
_MUTATORS = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "BUILD", "ADDITEMS"}
_MEMO_PUT = {"PUT", "BINPUT", "LONG_BINPUT"}
_MEMO_GET = {"GET", "BINGET", "LONG_BINGET"}
_MARK = None  # a MARK on the simulated stack


class _Malformed(Exception):
    pass


def _pop_to_mark(stack: list) -> list[int]:
    popped = []
    while stack and stack[-1] is not _MARK:
        popped.append(stack.pop())
    if not stack:
        raise _Malformed("an opcode needs a MARK that is not there")
    stack.pop()
    return popped


def _pop(stack: list, count: int) -> list[int]:
    if len(stack) < count or any(item is _MARK for item in stack[len(stack) - count:]):
        raise _Malformed("an opcode needs more objects than the stack holds")
    popped = stack[len(stack) - count:]
    del stack[len(stack) - count:]
    return popped


def _step(stack: list, memo: dict, opcode: pickletools.OpcodeInfo, arg) -> int:
    """Apply one opcode to a stack of nesting depths; return the depth of what it pushed (0 if nothing)."""
    name = opcode.name
    if name in _MEMO_PUT or name == "MEMOIZE":
        if not stack or stack[-1] is _MARK:
            raise _Malformed("a memo store with nothing to store")
        memo[arg if name != "MEMOIZE" else len(memo)] = stack[-1]
        return 0
    if name in _MEMO_GET:
        if arg not in memo:
            raise _Malformed("a memo read of something never stored")
        stack.append(memo[arg])
        return memo[arg]
    before, after = opcode.stack_before, opcode.stack_after
    if pickletools.stackslice in before:
        marked = before.index(pickletools.markobject)
        inside = _pop_to_mark(stack)
        fixed = _pop(stack, marked)
    else:
        inside, fixed = [], _pop(stack, len(before))
    if name in _MUTATORS and fixed:
        added = inside + fixed[1:]
        depth = max(fixed[0], max(added, default=-1) + 1)
    else:
        depth = max(inside + fixed, default=-1) + 1
    for item in after:
        stack.append(_MARK if item is pickletools.markobject else depth)
    return depth if after else 0


def _scan_one(handle: BinaryIO, label: str, budget: list[int]) -> None:
    """Walk one pickle (up to its STOP) and refuse it when it nests or runs too deep."""
    stack: list = []
    memo: dict = {}
    try:
        for opcode, arg, _ in pickletools.genops(handle):
            budget[0] -= 1
            if budget[0] < 0:
                raise LatentExplorerError(f"{label}: the file's object structure has more than {MAX_OPCODES:,} "
                                          "parts; a state dict has a few thousand, so this is not one")
            if _step(stack, memo, opcode, arg) > MAX_DEPTH:
                raise LatentExplorerError(f"{label}: the file nests objects more than {MAX_DEPTH} levels deep; a "
                                          "state dict nests about 6, so this file is damaged or built to crash the "
                                          "reader, and it was not opened")
    except (ValueError, _Malformed, EOFError) as exc:
        # pickletools' own words ("no newline found when trying to read stringnl") mean nothing to a student.
        raise damaged_file(label, isinstance(exc, EOFError) or "not enough data" in str(exc),
                           "its pickle data is malformed") from None


def damaged_file(label: str, ends_early: bool, otherwise: str) -> LatentExplorerError:
    """The one sentence for a .pth that cannot be read, whichever reader found it (this scan or torch.load):
    the readers' own words mean nothing to a student, and a length limit would cut them anywhere."""
    ending = "it ends too early" if ends_early else otherwise
    return LatentExplorerError(f"{label}: cannot read it as a PyTorch file; it is truncated or damaged ({ending}; "
                               "was the download or copy complete?)")


def _zip_pickles(path: Path, label: str) -> list[bytes]:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = [i for i in archive.infolist() if i.filename.endswith(".pkl")]
            if not infos:
                raise LatentExplorerError(f"{label}: a zip file without the data.pkl that torch.save writes")
            found = []
            for info in infos:
                if info.file_size > MAX_PICKLE_BYTES:
                    raise LatentExplorerError(f"{label}: {info.filename} is {info.file_size / 2**20:.0f} MB; a state "
                                              "dict's structure takes well under 1 MB")
                with archive.open(info) as member:
                    found.append(member.read(MAX_PICKLE_BYTES + 1))
            return found
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, RuntimeError) as exc:
        raise LatentExplorerError(f"{label}: the file is a damaged zip archive, so not a complete torch.save "
                                  f"file ({str(exc)[:120]})") from None


def scan_torch_file(path: str | Path, label: str | None = None) -> None:
    """Refuse (LatentExplorerError) a torch.save file whose pickles could crash the unpickler; return if safe."""
    path = Path(path)
    label = label or path.name
    budget = [MAX_OPCODES]
    if zipfile.is_zipfile(path):
        for data in _zip_pickles(path, label):
            _scan_one(io.BytesIO(data), label, budget)
        return
    with path.open("rb") as handle:
        for _ in range(LEGACY_PICKLES):
            _scan_one(handle, label, budget)
