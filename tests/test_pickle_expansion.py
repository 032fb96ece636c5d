"""Pickles that stay small but stand for huge objects: a dictionary key built of shared sub-tuples (through the
memo) is one object for the unpickler and 2**depth for the hash a key needs. Each is refused fast, with a short
message, by load_state_dict and the CLI; random pickles of the opcodes torch.load(weights_only=True) allows load
or are refused, in bounded time, and never with another exception."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch_files import as_torch_zip

from training.errors import LatentExplorerError
from training.models.dcgan import DCGANConfig, Generator
from training.untrusted import pickle_scan
from training.untrusted.importers import load_state_dict

REPO = Path(__file__).resolve().parent.parent
REFUSAL_SECONDS = 10  # the refusal takes milliseconds; this only separates "fast" from "hung"
SHORT = 400  # characters: one sentence, never the object


def shared_tuple_key_pickle(depth: int) -> bytes:
    """{t_depth: 1} where t_0 = 0 and t_i = (t_(i-1), t_(i-1)), each level read back from the memo: a few bytes a
    level, and hashing the key visits 2**depth leaves."""
    out = bytearray(b"\x80\x02}K\x00q\x00")  # PROTO 2, EMPTY_DICT, BININT1 0, BINPUT 0
    for level in range(1, depth + 1):
        out += b"h" + bytes([level - 1]) + b"\x86q" + bytes([level])  # BINGET level-1, TUPLE2, BINPUT level
    return bytes(out + b"K\x01s.")  # BININT1 1, SETITEM, STOP


@pytest.fixture(params=[22, 60])
def hostile_file(request, tmp_path) -> Path:
    path = tmp_path / "netG.pth"
    path.write_bytes(as_torch_zip(shared_tuple_key_pickle(request.param)))
    assert path.stat().st_size < 2048
    return path


def test_the_scan_counts_memo_references_as_copies(hostile_file):
    start = time.perf_counter()
    with pytest.raises(LatentExplorerError, match="repeats objects by reference") as info:
        pickle_scan.scan_torch_file(hostile_file)
    assert time.perf_counter() - start < REFUSAL_SECONDS
    assert str(info.value).startswith("netG.pth: ") and len(str(info.value)) < SHORT


def test_shared_tuple_key_is_refused_by_load_state_dict(hostile_file):
    with pytest.raises(LatentExplorerError):  # the scan first: on a reader without it, fail here instead of hang
        pickle_scan.scan_torch_file(hostile_file)
    start = time.perf_counter()
    with pytest.raises(LatentExplorerError, match="repeats objects by reference") as info:
        load_state_dict(hostile_file, "netG.pth")
    assert time.perf_counter() - start < REFUSAL_SECONDS
    assert len(str(info.value)) < SHORT and "\n" not in str(info.value)


@pytest.mark.slow
def test_shared_tuple_key_cli_gives_one_line(hostile_file, tmp_path):
    out = tmp_path / "out"
    child = subprocess.run([sys.executable, "-m", "training", "import-dcgan", str(hostile_file), "--out", str(out)],
                           capture_output=True, text=True, cwd=REPO, timeout=120)
    assert child.returncode == 2, (child.returncode, child.stderr[-500:])
    lines = child.stderr.strip().splitlines()
    assert len(lines) == 1 and "repeats objects by reference" in lines[0] and len(lines[0]) < SHORT, lines[:3]
    assert not out.exists()


def test_a_list_filled_after_it_was_memoised_counts_its_contents(tmp_path):
    """[0]*1000 stored in the memo while empty, filled, then referenced 4,096 times: 4 million objects."""
    pkl = bytearray(b"\x80\x02]q\x00(" + b"K\x00" * 1000 + b"e")  # EMPTY_LIST, BINPUT 0, MARK, 1000 ints, APPENDS
    for level in range(1, 13):
        pkl += b"h" + bytes([level - 1]) + b"h" + bytes([level - 1]) + b"\x86q" + bytes([level])
    path = tmp_path / "netG.pth"
    path.write_bytes(as_torch_zip(bytes(pkl + b".")))
    with pytest.raises(LatentExplorerError, match="repeats objects by reference"):
        pickle_scan.scan_torch_file(path)


def test_real_files_stay_a_hundred_times_below_the_limits(tmp_path, monkeypatch):
    """A tutorial-style netG's state dict and a training checkpoint around it (Adam's state, 5,000 losses) pass
    even with every expansion limit divided by 100."""
    monkeypatch.setattr(pickle_scan, "MAX_EXPANDED", pickle_scan.MAX_EXPANDED // 100)
    monkeypatch.setattr(pickle_scan, "MAX_EXPANDED_TOTAL", pickle_scan.MAX_EXPANDED_TOTAL // 100)
    generator = Generator(DCGANConfig(image_size=64, g_width=8, d_width=8))
    parameters = list(generator.parameters())
    adam = {"state": {i: {"step": torch.tensor(1.0), "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
                      for i, p in enumerate(parameters)},
            "param_groups": [{"lr": 2e-4, "betas": (0.5, 0.999), "eps": 1e-8, "weight_decay": 0,
                              "params": list(range(len(parameters)))}]}  # what Adam.state_dict() holds
    path = tmp_path / "netG.pth"
    torch.save(generator.state_dict(), path)
    pickle_scan.scan_torch_file(path)
    torch.save({"epoch": 5, "netG": generator.state_dict(), "optimizerG": adam, "G_losses": [0.5] * 5000}, path)
    pickle_scan.scan_torch_file(path)
    assert set(load_state_dict(path)) == set(generator.state_dict())


def test_messages_show_keys_cut_short(tmp_path):
    """Keys small enough to pass the scan still never go whole into a message (torch.save itself writes a
    shared tuple through the memo)."""
    shared = 0
    for _ in range(10):
        shared = (shared, shared)
    path = tmp_path / "netG.pth"
    for content, match, shown in [
        ({shared: torch.zeros(1)}, "parameter names must be strings", "(((...), (...)), ((...), (...)))"),
        ({"a" * (1 << 20): 1}, "are not tensors", "'aaaaaaaaaaaaaaaaaaaaaaaaaaa...aaaaaaaaaaaaaaaaaaaaaaaaaaaa'"),
    ]:
        torch.save(content, path)
        with pytest.raises(LatentExplorerError, match=match) as info:
            load_state_dict(path)
        assert shown in str(info.value) and len(str(info.value)) < SHORT, str(info.value)[:500]


# --- random pickles of the opcodes weights_only allows ----------------------------------------------------------

HASHABLE = {"int", "str", "none", "bool", "float", "tuple"}


def _int_opcode(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])
    if 0 <= value < 65536:
        return b"M" + struct.pack("<H", value)
    if -2**31 <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


OPS = st.one_of(
    st.tuples(st.just("int"), st.one_of(st.integers(-300, 300), st.integers(-2**70, 2**70),
                                        st.integers(0, 20).map(lambda i: 1 + i * (2**61 - 1)))),  # equal hashes
    st.tuples(st.just("str"), st.text(max_size=12)),
    st.tuples(st.sampled_from(["none", "true", "float", "list", "dict", "empty tuple", "set", "mark", "close",
                               "append", "setitem", "keyed", "raw"]), st.integers(0, 255)),
    st.tuples(st.sampled_from(["tuple1", "tuple2", "tuple3"]), st.just(0)),
    st.tuples(st.sampled_from(["put", "get"]), st.integers(0, 7)),
    # (t, t) of the top, n times over through the memo, then maybe {that: None}: the trick, at every size
    st.tuples(st.sampled_from(["tower", "keyed tower"]), st.integers(1, 64)),
)
RAW = b"}](N\x85\x86\x87aeqhsu)\x88\x89.KJM\x8aX"  # opcode bytes weights_only reads; used out of order to break things


def random_pickle(ops: list[tuple[str, object]], finish: str) -> bytes:
    """A protocol-2 pickle from the ops, mostly well formed: a model of the stack (the kind of each item, and
    MARKs) picks opcodes that fit; "raw" puts in an opcode byte regardless. The pickle's object is the last item,
    as it is, as the key of a dict or as the value of a state dict's entry (`finish`)."""
    out = bytearray(b"\x80\x02")
    stack: list[tuple[str, bool]] = []  # (kind, hashable)
    memo: dict[int, tuple[str, bool]] = {}

    def top_since_mark() -> int:
        count = 0
        for kind, _ in reversed(stack):
            if kind == "mark":
                break
            count += 1
        return count

    for op, arg in ops:
        if op == "int":
            out += _int_opcode(arg)
            stack.append(("int", True))
        elif op == "str":
            encoded = arg.encode("utf-8", "surrogatepass")
            out += b"X" + struct.pack("<I", len(encoded)) + encoded
            stack.append(("str", True))
        elif op in ("none", "true", "float", "list", "dict", "empty tuple", "set"):
            out += {"none": b"N", "true": b"\x88", "float": b"G" + struct.pack(">d", arg / 7), "list": b"]",
                    "dict": b"}", "empty tuple": b")", "set": b"\x8f"}[op]
            stack.append((op if op in ("list", "dict", "set") else "tuple" if op == "empty tuple" else "int",
                          op not in ("list", "dict", "set")))
        elif op == "mark":
            out += b"("
            stack.append(("mark", False))
        elif op.startswith("tuple") and top_since_mark() >= int(op[-1]):
            items = [stack.pop() for _ in range(int(op[-1]))]
            out += {1: b"\x85", 2: b"\x86", 3: b"\x87"}[len(items)]
            stack.append(("tuple", all(hashable for _, hashable in items)))
        elif op == "close" and "mark" in [kind for kind, _ in stack]:
            items = [stack.pop() for _ in range(top_since_mark())]
            stack.pop()
            below = stack[-1][0] if stack else None
            if below == "list":
                out += b"e"
            elif below == "dict" and len(items) % 2 == 0 and all(items[i][1] for i in range(1, len(items), 2)):
                out += b"u"  # items are popped last first: keys sit at odd positions
            else:
                out += b"t"
                stack.append(("tuple", all(hashable for _, hashable in items)))
        elif op == "append" and top_since_mark() >= 2 and stack[-2][0] == "list":
            out += b"a"
            stack.pop()
        elif op == "setitem" and top_since_mark() >= 3 and stack[-3][0] == "dict" and stack[-2][1]:
            out += b"s"
            del stack[-2:]
        elif op == "keyed" and top_since_mark() >= 1 and stack[-1][1]:
            out += b"q\x07}h\x07Ns"  # BINPUT 7, EMPTY_DICT, BINGET 7, NONE, SETITEM: {top: None} above top
            memo[7] = stack[-1]
            stack.append(("dict", False))
        elif op == "put" and top_since_mark() >= 1:
            out += b"q" + bytes([arg])
            memo[arg] = stack[-1]
        elif op == "get" and arg in memo:
            out += b"h" + bytes([arg])
            stack.append(memo[arg])
        elif op.endswith("tower") and top_since_mark() >= 1:
            out += b"q\x06h\x06\x86" * arg  # BINPUT 6, BINGET 6, TUPLE2
            stack[-1] = ("tuple", stack[-1][1])
            if op == "keyed tower" and stack[-1][1]:
                out += b"q\x07}h\x07Ns"
                memo[7] = stack[-1]
                stack.append(("dict", False))
        elif op == "raw":
            out += RAW[arg % len(RAW):arg % len(RAW) + 1]
    while "mark" in [kind for kind, _ in stack]:
        out += b"t"
        items = [stack.pop() for _ in range(top_since_mark())]
        stack.pop()
        stack.append(("tuple", all(hashable for _, hashable in items)))
    if not stack:
        out += b"}"
    elif finish == "key" and stack[-1][1]:
        out += b"q\x07}h\x07Ns"
    elif finish == "value":
        out += b"q\x07}X\x0d\x00\x00\x00main.0.weighth\x07s"
    return bytes(out + b".")


@pytest.fixture(scope="module")
def warm_reader(tmp_path_factory):
    """One read first: the process that forks the readers starts (imports torch) once, outside the timings."""
    path = tmp_path_factory.mktemp("warm") / "netG.pth"
    torch.save({"main.0.weight": torch.zeros(1)}, path)
    load_state_dict(path)


@pytest.mark.slow
@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 60)), deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(OPS, max_size=40), finish=st.sampled_from(["as it is", "key", "value"]))
def test_random_pickles_load_or_are_refused_quickly(warm_reader, tmp_path, ops, finish):
    path = tmp_path / "random.pth"
    path.write_bytes(as_torch_zip(random_pickle(ops, finish)))
    start = time.perf_counter()
    try:
        load_state_dict(path)
    except LatentExplorerError as exc:
        assert len(str(exc)) < 1000, str(exc)[:300]
    # A read takes well under a second; a pickle that slipped past the scan would be killed by the reader's time
    # limit (10 s), which fails this bound.
    assert time.perf_counter() - start < 5
