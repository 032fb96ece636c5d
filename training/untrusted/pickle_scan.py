"""Read a torch.save file's pickle opcodes, without running them, before torch.load may see the file.

`torch.load(weights_only=True)` runs no code from the file, but it is not a sandbox: a 2 MB file built only of
opcodes it allows (a dictionary key nested two million tuples deep) crashes the C parts of CPython's pickle
machinery with a stack overflow, and a crash takes the whole Streamlit server, every student's session, with it.
A 700-byte file does the opposite: a key of 60 levels where each level is the level below twice, by reference to
the pickle's memo, is one object for the unpickler but 2**60 for the hash that a dictionary key needs, computed
in C while holding the interpreter's lock, so no other thread (and no timeout in the process) runs until it ends.
So we simulate the pickle stack first, with `pickletools` (pure Python, nothing is built) and refuse files whose
objects nest deeper, expand to more objects (a memo reference counts as a copy), or whose opcode stream is longer,
than any state dict needs. A tutorial netG's state dict nests 5 levels, expands to about 600 objects and takes
about 900 opcodes.
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from array import array
from pathlib import Path
from typing import BinaryIO

from training.errors import LatentExplorerError

MAX_DEPTH = 64
MAX_OPCODES = 2_000_000
# Objects one stack item stands for once every memo reference is counted as a copy: what hashing, comparing or
# printing it costs (10 to 35 ns an object, so at most about 70 ms). A tutorial netG's state dict stands for 594,
# a training checkpoint with both networks, Adam's state and 5,000 losses 6,967, a dict of 10,000 tensors 200,003.
MAX_EXPANDED = 2_000_000
# The sum of the expanded sizes of everything the opcodes build or add, kept or left on the stack: many keys each
# just under the limit above cost no more than this. The same files sum to 2,508, 26,776 and 840,009.
MAX_EXPANDED_TOTAL = 20_000_000
MAX_PICKLE_BYTES = 64 << 20
# The legacy (pre-1.6) torch.save format is five pickles in a row (magic number, protocol, system info, the
# object, the storage keys) followed by raw tensor bytes.
LEGACY_PICKLES = 5
# Opcodes that add to the container below them and leave it on the stack: nesting grows by the added items only.
_MUTATORS = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "BUILD", "ADDITEMS"}
_MEMO_PUT = {"PUT", "BINPUT", "LONG_BINPUT"}
_MEMO_GET = {"GET", "BINGET", "LONG_BINGET"}
_MARK = -1  # a MARK on the simulated stack, where objects are numbers in _Objects


class _Malformed(Exception):
    pass


class _Objects:
    """What the simulation knows of each object the pickle builds, by number: how deep it nests and how many
    objects it expands to. A container's entry grows when APPEND or SETITEM fills it, and the memo and the stack
    share its number. Two arrays, not an object each: a million small objects that live through the scan would
    start a full garbage collection of the whole process (0.6 s holding the interpreter's lock, with torch
    loaded)."""

    def __init__(self) -> None:
        self.depth = array("q")
        self.size = array("q")

    def new(self, depth: int, size: int) -> int:
        self.depth.append(depth)
        self.size.append(size)
        return len(self.depth) - 1


class _Refused(Exception):
    """The object structure passes a limit: `what` says which, in the words of the one sentence the user sees."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


def _pop_to_mark(stack: list[int]) -> list[int]:
    popped = []
    while stack and stack[-1] != _MARK:
        popped.append(stack.pop())
    if not stack:
        raise _Malformed("an opcode needs a MARK that is not there")
    stack.pop()
    return popped


def _pop(stack: list[int], count: int) -> list[int]:
    if len(stack) < count or _MARK in stack[len(stack) - count:]:
        raise _Malformed("an opcode needs more objects than the stack holds")
    popped = stack[len(stack) - count:]
    del stack[len(stack) - count:]
    return popped


def _step(stack: list[int], memo: dict, objects: _Objects, opcode: pickletools.OpcodeInfo,
          arg) -> tuple[int | None, int]:
    """Apply one opcode to the simulated stack; return the number of the object it built or grew (None if
    neither) and how many objects that building or growing took, memo references counted as copies."""
    name = opcode.name
    if name in _MEMO_PUT or name == "MEMOIZE":
        if not stack or stack[-1] == _MARK:
            raise _Malformed("a memo store with nothing to store")
        memo[arg if name != "MEMOIZE" else len(memo)] = stack[-1]
        return None, 0
    if name in _MEMO_GET:
        if arg not in memo:
            raise _Malformed("a memo read of something never stored")
        stack.append(memo[arg])  # the same object: a reference is one more copy wherever it is put
        return None, 0
    before, after = opcode.stack_before, opcode.stack_after
    if not before:  # a constant, an empty container or a MARK: most of a state dict's opcodes
        if not after or after[0] is pickletools.markobject:
            stack.extend([_MARK] * len(after))
            return None, 0
        stack.append(objects.new(0, 1))
        return stack[-1], 1
    if pickletools.stackslice in before:
        marked = before.index(pickletools.markobject)
        inside = _pop_to_mark(stack)
        fixed = _pop(stack, marked)
    else:
        inside, fixed = [], _pop(stack, len(before))
    depth, size = objects.depth, objects.size
    if name in _MUTATORS and fixed:
        container, added = fixed[0], inside + fixed[1:]
        depth[container] = max(depth[container], max((depth[item] for item in added), default=-1) + 1)
        grown = sum(size[item] for item in added)
        size[container] += grown
        stack.append(container)
        return container, grown
    parts = inside + fixed
    built = None
    for item in after:
        if item is pickletools.markobject:
            stack.append(_MARK)
        else:
            built = objects.new(max((depth[part] for part in parts), default=-1) + 1,
                                1 + sum(size[part] for part in parts))
            stack.append(built)
    return built, size[built] if built is not None else 0


def _check(objects: _Objects, built: int, total: int) -> None:
    if objects.depth[built] > MAX_DEPTH:
        raise _Refused(f"nests objects more than {MAX_DEPTH} levels deep; a state dict nests about 6, so this file "
                       "is damaged or built to crash the reader")
    if objects.size[built] > MAX_EXPANDED or total > MAX_EXPANDED_TOTAL:
        raise _Refused(f"repeats objects by reference until they stand for more than {MAX_EXPANDED:,} objects; a "
                       "state dict stands for a few thousand, so this file is damaged or built to stall the reader")


def _scan_one(handle: BinaryIO, label: str, budget: list[int]) -> None:
    """Walk one pickle (up to its STOP) and refuse it when it nests, expands or runs too far.
    `budget` holds the opcodes and the expanded total left for the file's remaining pickles."""
    stack: list[int] = []
    memo: dict = {}
    objects = _Objects()
    try:
        for opcode, arg, _ in pickletools.genops(handle):
            budget[0] -= 1
            if budget[0] < 0:
                raise LatentExplorerError(f"{label}: the file's object structure has more than {MAX_OPCODES:,} "
                                          "parts; a state dict has a few thousand, so this is not one")
            built, grown = _step(stack, memo, objects, opcode, arg)
            if built is not None:
                budget[1] += grown
                _check(objects, built, budget[1])
    except _Refused as refused:
        raise LatentExplorerError(f"{label}: the file {refused.what}, and it was not opened") from None
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
    budget = [MAX_OPCODES, 0]  # opcodes left, expanded total so far
    if zipfile.is_zipfile(path):
        for data in _zip_pickles(path, label):
            _scan_one(io.BytesIO(data), label, budget)
        return
    with path.open("rb") as handle:
        for _ in range(LEGACY_PICKLES):
            _scan_one(handle, label, budget)
