"""Behaviour lock: every shipped bundle makes the same pictures (and every feature network the same features) as
when tests/data/behaviour_lock.json was recorded, so a refactoring can prove it changed no behaviour.

Each case records a sha256 of the images (float32 rounded to 1e-4) and of the codes, and a float fingerprint
(sum and sum of squares). The hashes prove bit-identical output where the recording was made (same torch and CPU
kernels, one thread); elsewhere convolutions may legitimately differ in the last bits, so only the fingerprints
are compared there, with a tolerance far below any visible change.

Record again (only after a change that is meant to alter the pictures):
    OMP_NUM_THREADS=1 python tests/test_behaviour_lock.py --record
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from training.bundle import find_bundles, load_bundle  # noqa: E402
from training.latent import sampling  # noqa: E402
from training.latent.priors import LatentDistribution  # noqa: E402

LOCK_FILE = Path(__file__).resolve().parent / "data" / "behaviour_lock.json"
CHECKPOINTS = REPO / "checkpoints"
N = 8
SEED = 7
DISTRIBUTIONS = {
    "N(0,1)": LatentDistribution.normal(0.0, 1.0),
    "N(-10,1)": LatentDistribution.normal(-10.0, 1.0),
    "U(0,1)": LatentDistribution.uniform(0.0, 1.0),
}
RELATIVE_TOLERANCE = 1e-4
# `python -m training sample` grids (PNG bytes) of these bundles, with the command's defaults but n.
CLI_SAMPLE_BUNDLES = ("toyfaces/dcgan", "toyfaces/cgan", "fashion-mnist/vae")


def _digest(tensor: torch.Tensor) -> str:
    rounded = np.round(tensor.detach().cpu().double().numpy() * 1e4).astype(np.int64)
    return hashlib.sha256(np.ascontiguousarray(rounded).tobytes()).hexdigest()


def _fingerprint(tensor: torch.Tensor) -> list[float]:
    x = tensor.detach().cpu().double()
    return [float(x.sum()), float(x.pow(2).sum())]


def _explicit_labels(conditions, n: int) -> torch.Tensor:
    """A fixed label row per sample that walks every value of every condition."""
    return torch.tensor([[(row + col) % len(c.values) for col, c in enumerate(conditions)] for row in range(n)],
                        dtype=torch.int64)


def _cases(bundle) -> dict[str, dict]:
    cases = {}
    if bundle.capabilities.generates:
        for name, distribution in DISTRIBUTIONS.items():
            out = sampling.sample(bundle, distribution, N, seed=SEED)
            cases[name] = {"codes": _digest(out.codes), "images": _digest(out.images),
                           "fingerprint": _fingerprint(out.images)}
        if bundle.capabilities.conditional:
            labels = _explicit_labels(bundle.conditions, N)
            out = sampling.sample(bundle, DISTRIBUTIONS["N(0,1)"], N, seed=SEED, labels=labels)
            cases["N(0,1) explicit labels"] = {"codes": _digest(out.codes), "images": _digest(out.images),
                                               "fingerprint": _fingerprint(out.images)}
    else:  # a feature network: its features of a fixed random batch in [-1, 1]
        net = next(iter(bundle.networks.values()))
        cfg = net.config
        x = torch.rand(N, cfg.channels, cfg.image_size, cfg.image_size,
                       generator=torch.Generator().manual_seed(SEED)) * 2 - 1
        with torch.no_grad():
            features = net.features(x)
        cases["features"] = {"features": _digest(features), "fingerprint": _fingerprint(features)}
    return cases


def _cli_grids(folder: Path) -> dict[str, str]:
    from training.__main__ import main

    grids = {}
    for name in CLI_SAMPLE_BUNDLES:
        out = folder / f"{name.replace('/', '-')}.png"
        if main(["sample", str(CHECKPOINTS / name), "--out", str(out), "--n", "12", "--nrow", "4",
                 "--dist", "N(0,1)", "--seed", "3"]) != 0:
            raise AssertionError(f"python -m training sample {name} failed")
        grids[name] = hashlib.sha256(out.read_bytes()).hexdigest()
    return grids


def _environment() -> dict:
    return {"torch": torch.__version__, "cpu": torch.backends.cpu.get_cpu_capability()}


def compute(folder: Path) -> dict:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        bundles = {}
        for path in find_bundles(CHECKPOINTS):
            bundles[str(path.relative_to(CHECKPOINTS))] = _cases(load_bundle(path))
        return {"environment": _environment(), "n": N, "seed": SEED, "bundles": bundles,
                "cli_sample_png": _cli_grids(folder)}
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def recorded_and_now(tmp_path_factory):
    return json.loads(LOCK_FILE.read_text()), compute(tmp_path_factory.mktemp("lock"))


def test_every_shipped_bundle_is_locked(recorded_and_now):
    recorded, now = recorded_and_now
    assert sorted(now["bundles"]) == sorted(recorded["bundles"]), "a shipped bundle was added or removed: record again"


def test_pictures_and_features_are_unchanged(recorded_and_now):
    recorded, now = recorded_and_now
    exact = recorded["environment"] == now["environment"]
    for bundle, cases in recorded["bundles"].items():
        assert sorted(now["bundles"][bundle]) == sorted(cases), bundle
        for case, old in cases.items():
            new = now["bundles"][bundle][case]
            for a, b in zip(old["fingerprint"], new["fingerprint"]):
                assert abs(a - b) <= RELATIVE_TOLERANCE * max(1.0, abs(a)), f"{bundle} {case}: {old} != {new}"
            if exact:
                assert new == old, f"{bundle} {case}: output changed"


def test_cli_sample_grids_are_unchanged(recorded_and_now):
    recorded, now = recorded_and_now
    if recorded["environment"] != now["environment"]:
        pytest.skip("PNG bytes are compared only where the lock was recorded (other kernels may round differently)")
    assert now["cli_sample_png"] == recorded["cli_sample_png"]


if __name__ == "__main__":
    if "--record" not in sys.argv:
        sys.exit("usage: python tests/test_behaviour_lock.py --record")
    import tempfile

    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        LOCK_FILE.write_text(json.dumps(compute(Path(folder)), indent=1) + "\n")
    print(f"wrote {LOCK_FILE}")
