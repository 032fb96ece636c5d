"""Mutated bundles (hypothesis): every damaged bundle loads as a working model or is refused with one
LatentExplorerError that names the file; never another exception, a hang, or a huge allocation."""

from __future__ import annotations

import copy
import json
import math
import os
import resource
import shutil
import struct
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from explorer.core.page import page_problem
from explorer.logic import replay
from training.bundle import load_bundle, read_config, save_bundle
from training.errors import LatentExplorerError
from training.latent.priors import STANDARD_NORMAL, sample_latents
from training.models import registry

PAGE_IDS = ("sample", "sweep", "conditions", "codes", "directions", "vae_map", "compare", "interpolate", "replay")

# Bounded so the whole file runs in well under a minute on two busy cores; FUZZ_EXAMPLES=2000 searches harder.
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 40)), deadline=None, derandomize=False, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SLOW_SECONDS = 15  # one load of a tiny bundle takes ~50 ms; anything near this is a hang
ATTRIBUTES = [{"name": "hair_colour", "values": ["black", "brown", "blonde"]},
              {"name": "smiling", "values": ["no", "yes"]}]
TINY = {"latent_dim": 8, "image_size": 32, "channels": 3, "g_width": 4, "d_width": 4}


def _fresh_bundle(out: Path, family: str, model: dict) -> Path:
    torch.manual_seed(0)
    networks = registry.build_networks(family, model, training=True)
    config = {"name": f"tiny {family}", "family": family, "model": model,
              "dataset": {"name": "toyfaces", "image_size": 32, "attributes": ATTRIBUTES,
                          "source": {"name": "toyfaces", "num_images": 8, "seed": 0}},
              "prior": STANDARD_NORMAL.to_json(), "training": {"steps": 20}, "step": 20}
    history = {"step": list(range(1, 21)), "loss_g": [1.0] * 20, "loss_d": [1.3] * 20, "d_real": [0.6] * 20,
               "d_fake": [0.4] * 20}
    return save_bundle(out, config, networks, history)


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict[str, Path]:
    """One valid tiny bundle per family, untrained (the loader cannot tell, and no training loop is needed)."""
    root = tmp_path_factory.mktemp("fuzz-bases")
    return {
        "dcgan": _fresh_bundle(root / "dcgan", "dcgan", dict(TINY)),
        "vae": _fresh_bundle(root / "vae", "vae", {**TINY, "kl_weight": 1e-4, "recon_loss": "mse"}),
        "cgan": _fresh_bundle(root / "cgan", "cgan", {**TINY, "conditions": ATTRIBUTES}),
        "infogan": _fresh_bundle(root / "infogan", "infogan", {**TINY, "categorical_codes": [3],
                                                               "continuous_codes": 1, "q_width": 4}),
    }


def exercise(bundle) -> None:
    """What the pages do with a bundle they were given: all of it must work for a bundle that loaded."""
    assert isinstance(bundle.name, str)
    config = read_config(bundle.path)
    assert config.get("name") is None or isinstance(config["name"], str)
    assert bundle.latent_dim >= 1
    prior, attributes, conditions, codes = bundle.prior, bundle.attributes, bundle.conditions, bundle.codes
    assert isinstance(prior.label, str) and isinstance(attributes, tuple) and isinstance(conditions, tuple)
    assert isinstance(codes, list)
    bundle.snapshot_paths()
    replay.run_status(bundle.config)
    replay.experiment_table([bundle.path])
    history = bundle.history
    curves = replay.series(history)
    if curves:
        np.asarray(history["step"], dtype=float)
        replay.value_at(history, next(iter(curves)), 1, 5)
    replay.loss_story(history)
    replay.vae_story(history)
    replay.summarise_metrics(bundle.metrics)
    if bundle.capabilities.generates:
        for page in PAGE_IDS:
            page_problem(bundle, page)
        z = sample_latents(prior, 2, bundle.latent_dim, seed=0)
        with torch.no_grad():
            images = bundle.generator(z)
            bundle.generator.first_layer_preactivation(z)
        size, channels = bundle.model_config.image_size, bundle.model_config.channels
        assert images.shape == (2, channels, size, size)


def check(path: Path) -> str:
    """Load a (possibly damaged) bundle: a working model, or a readable refusal that names the file."""
    start = time.monotonic()
    try:
        bundle = load_bundle(path)
    except LatentExplorerError as exc:
        message = str(exc)
        assert str(path) in message, message[:500]
        assert len(message) < 1500, f"unreadable message of {len(message)} characters: {message[:300]}..."
        assert time.monotonic() - start < SLOW_SECONDS
        return "refused"
    exercise(bundle)
    assert time.monotonic() - start < SLOW_SECONDS
    return "loaded"


def _copy(bases: dict[str, Path], family: str) -> tuple[tempfile.TemporaryDirectory, Path]:
    holder = tempfile.TemporaryDirectory(prefix="fuzz-")
    path = Path(holder.name) / "bundle"
    shutil.copytree(bases[family], path)
    return holder, path


FAMILIES = st.sampled_from(["dcgan", "vae", "cgan", "infogan"])


def test_every_base_bundle_loads(bases):
    for path in bases.values():
        assert check(path) == "loaded"


# --- the weights file ------------------------------------------------------------------------------------------

def _header_length(data: bytes) -> int:
    return 8 + struct.unpack("<Q", data[:8])[0]


@pytest.mark.slow
@FUZZ
@given(family=FAMILIES, where=st.floats(0, 1, exclude_max=True))
def test_truncated_weights_are_refused(bases, family, where):
    holder, path = _copy(bases, family)
    with holder:
        weights = path / "weights.safetensors"
        data = weights.read_bytes()
        weights.write_bytes(data[:int(where * len(data))])
        assert check(path) == "refused"


@pytest.mark.slow
@FUZZ
@given(family=FAMILIES, data=st.data())
def test_flipped_bytes_give_a_model_or_a_message(bases, family, data):
    holder, path = _copy(bases, family)
    with holder:
        weights = path / "weights.safetensors"
        raw = bytearray(weights.read_bytes())
        # Half the flips land in the JSON header (names, shapes, dtypes, offsets), where parsing can go wrong.
        header_end = _header_length(bytes(raw))
        for _ in range(data.draw(st.integers(1, 8), label="flips")):
            in_header = data.draw(st.booleans(), label="in header")
            at = data.draw(st.integers(0, header_end - 1) if in_header else st.integers(0, len(raw) - 1), label="at")
            raw[at] ^= data.draw(st.integers(1, 255), label="mask")
        weights.write_bytes(bytes(raw))
        check(path)


EXPLORER_NETWORKS = {"dcgan": ("generator",), "vae": ("encoder", "decoder"), "cgan": ("generator",),
                     "infogan": ("generator",)}
TENSOR_CHANGES = ("drop", "rename", "extra", "reshape", "grow", "scalar", "dtype", "nan", "empty")


@pytest.mark.slow
@FUZZ
@given(family=FAMILIES, data=st.data())
def test_changed_tensors_give_a_model_or_a_message(bases, family, data):
    holder, path = _copy(bases, family)
    with holder:
        weights = path / "weights.safetensors"
        tensors = load_file(str(weights))
        key = data.draw(st.sampled_from(sorted(tensors)), label="tensor")
        change = data.draw(st.sampled_from(TENSOR_CHANGES), label="change")
        value = tensors[key]
        if change == "drop":
            del tensors[key]
        elif change == "rename":
            tensors[key + "_renamed"] = tensors.pop(key)
        elif change == "extra":
            tensors[f"{key.split('.')[0]}.extra.weight"] = torch.zeros(3)
        elif change == "reshape":
            tensors[key] = value.reshape(-1).unsqueeze(0)
        elif change == "grow":
            tensors[key] = torch.cat([value.reshape(-1), value.reshape(-1)[:1]])
        elif change == "scalar":
            tensors[key] = torch.tensor(1.0)
        elif change == "dtype":
            dtype = data.draw(st.sampled_from([torch.float16, torch.float64, torch.bfloat16, torch.int64, torch.int8,
                                               torch.bool, torch.uint8]), label="dtype")
            tensors[key] = value.to(dtype)
        elif change == "nan" and value.is_floating_point() and value.numel():
            value = value.clone()
            value.view(-1)[0] = data.draw(st.sampled_from([math.nan, math.inf, -math.inf]), label="bad value")
            tensors[key] = value
        elif change == "empty":
            tensors[key] = torch.zeros(0)
        save_file(tensors, str(weights))
        outcome = check(path)
        if change in ("drop", "rename", "extra", "reshape", "grow", "scalar", "empty"):
            # Only networks the explorer builds are checked; a damaged discriminator tensor may go unnoticed.
            if key.split(".")[0] in EXPLORER_NETWORKS[family]:
                assert outcome == "refused", (key, change)


# --- the JSON files ------------------------------------------------------------------------------------------

HOSTILE_VALUES = st.one_of(
    st.sampled_from([None, True, False, 0, -1, 1, 2, 3, 64, 10**9, 2**20, 10**6, -10**6, 10**30, -(10**18), 10**400,
                     1.5, -0.0, 32.0, math.nan, math.inf, -math.inf, "", "16", "relu", "normal",
                     "x" * 10**6, [], {}, [1, 2], [-1], [10**9], {"a": 1}, [[[]]], {"name": "x", "values": []},
                     {"kind": "normal", "std": 0}, {"kind": "uniform", "low": 1, "high": 0}]),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.lists(st.integers(-5, 5), max_size=4),
)


def _paths(value, prefix=()):
    """Every location in a JSON tree, the root included, as a tuple of keys and indices."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value[:6]):  # long histories: the first rows are as good as any
            yield from _paths(v, prefix + (i,))


def _mutate(tree, where: tuple, action: str, value):
    if not where:
        return value
    parent = tree
    for k in where[:-1]:
        parent = parent[k]
    last = where[-1]
    if action == "drop":
        del parent[last]
    elif action == "rename" and isinstance(last, str):
        parent[last + "_"] = parent.pop(last)
    else:
        parent[last] = value
    return tree


@pytest.mark.slow
@FUZZ
@given(family=FAMILIES, file=st.sampled_from(["config.json"] * 4 + ["history.json", "metrics.json"]),
       data=st.data())
def test_json_mutations_give_a_model_or_a_message(bases, family, file, data):
    holder, path = _copy(bases, family)
    with holder:
        target = path / file
        tree = json.loads(target.read_text()) if target.exists() else {}
        for _ in range(data.draw(st.integers(1, 3), label="mutations")):
            where = data.draw(st.sampled_from(list(_paths(tree))), label="where")
            action = data.draw(st.sampled_from(["drop", "rename", "set"]), label="action")
            tree = _mutate(tree, where, action, copy.deepcopy(data.draw(HOSTILE_VALUES, label="value")))
        target.write_text(json.dumps(tree))  # NaN and Infinity too: Python's json reads them back
        check(path)


ABSURD = st.sampled_from([10**9, 2**20, 10**6, 4097, 1025, 0, -1, -64, 1.0, 64.5, "64", None, True, 10**400,
                          "x" * 10**6, [64], {"value": 64}])
SIZE_FIELDS = ("latent_dim", "image_size", "channels", "g_width", "d_width", "q_width", "continuous_codes",
               "categorical_codes", "conditions")


@pytest.mark.slow
@FUZZ
@given(family=FAMILIES, data=st.data())
def test_absurd_sizes_are_refused_quickly(bases, family, data):
    holder, path = _copy(bases, family)
    with holder:
        config = json.loads((path / "config.json").read_text())
        fields = [f for f in SIZE_FIELDS if f in config["model"]]
        for name in data.draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3, unique=True), label="fields"):
            config["model"][name] = data.draw(ABSURD, label=name)
        (path / "config.json").write_text(json.dumps(config))
        start = time.monotonic()
        outcome = check(path)
        assert time.monotonic() - start < 5
        assert outcome == "refused"


# What the fuzzing found, kept as plain regression tests (each crashed a page or the loader before the fix).
FOUND = [
    ("vae", "config.json", ("model", "kl_weight"), 10**400),  # OverflowError from float()
    ("dcgan", "config.json", ("training",), True),  # run_status: 'bool' object has no attribute 'get'
    ("dcgan", "config.json", ("name",), ["a", "list"]),  # the model picker: unhashable name
    ("dcgan", "config.json", ("dataset", "name"), None),  # Bundle.name: KeyError
    ("dcgan", "config.json", ("family",), "x" * 10**6),  # a megabyte-long message
    ("dcgan", "history.json", (), [1, 2]),  # the replay page: 'list' object has no attribute 'get'
    ("dcgan", "history.json", ("step",), 5),  # series(): len() of an int
    ("dcgan", "metrics.json", (), "text"),
]


@pytest.mark.parametrize("family,file,where,value", FOUND)
def test_found_by_fuzzing(bases, family, file, where, value):
    holder, path = _copy(bases, family)
    with holder:
        target = path / file
        tree = json.loads(target.read_text()) if target.exists() else {}
        target.write_text(json.dumps(_mutate(tree, where, "set", value)))
        assert check(path) == "refused"


# --- oversized but well-formed configs: refused before any memory is allocated -----------------------------------

def _rss_limited_child(limit_bytes: int, work) -> tuple[str, str]:
    """Run work() in a forked child whose address space is capped: an attempt to allocate the model runs out of
    memory there instead of on this machine. Returns (outcome, message)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_end)
        try:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
            outcome = work()
        except LatentExplorerError as exc:
            outcome = ("refused", str(exc))
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            outcome = ("crashed", f"{type(exc).__name__}: {str(exc)[:300]}")
        os.write(write_end, json.dumps(outcome).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    return tuple(json.loads(text)) if text else ("crashed", "child died without a word")


def _address_space_now() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("family,model", [
    # Inside every per-field limit, yet the generator alone would need about 16 GB of float32 weights.
    ("dcgan", {"latent_dim": 4096, "image_size": 128, "channels": 3, "g_width": 1024, "d_width": 1024}),
    ("vae", {"latent_dim": 4096, "image_size": 128, "channels": 3, "g_width": 1024, "d_width": 1024,
             "kl_weight": 1e-4, "recon_loss": "mse"}),
    ("infogan", {"latent_dim": 4096, "image_size": 128, "channels": 3, "g_width": 1024, "d_width": 1024,
                 "categorical_codes": [64] * 32, "continuous_codes": 64, "q_width": 1024}),
])
def test_oversized_config_is_refused_before_allocating(bases, tmp_path, family, model):
    path = tmp_path / "bundle"
    shutil.copytree(bases["dcgan"], path)
    config = json.loads((path / "config.json").read_text())
    config.update(family=family, model=model)
    (path / "config.json").write_text(json.dumps(config))

    def work():
        start = time.monotonic()
        load_bundle(path, with_training_networks=True)
        return ("loaded", f"{time.monotonic() - start:.1f} s")

    # 1 GiB of headroom over what this process already maps: far below the model, plenty for the check.
    outcome, message = _rss_limited_child(_address_space_now() + 2**30, work)
    assert outcome == "refused", message
    assert str(path / "weights.safetensors") in message and ("shape" in message or "missing" in message)
