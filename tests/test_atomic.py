"""training.bundle.atomic: the one way bundles and caches are written, so an interrupted write never leaves half
a file."""

from __future__ import annotations

import stat

import pytest
import torch

from training.bundle import WEIGHTS_FILE, atomic, save_bundle
from training.bundle.output_folder import is_own_temporary


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "config.json"
    atomic.atomic_write_bytes(target, b"old")

    def dies_half_way(handle):
        handle.write(b"ne")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic.atomic_write(target, dies_half_way)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # shareable, not mkstemp's private 0600


def test_the_temporary_is_hidden_beside_the_target_and_recognised_as_ours(tmp_path):
    with atomic.replacing(tmp_path / "sub" / "weights.safetensors") as tmp:
        assert tmp.parent == tmp_path / "sub" and is_own_temporary(tmp.name)
        tmp.write_bytes(b"w")
    assert (tmp_path / "sub" / "weights.safetensors").read_bytes() == b"w"


def test_save_bundle_writes_its_weights_atomically(tmp_path, monkeypatch):
    net = torch.nn.Linear(2, 2)
    save_bundle(tmp_path, {"family": "dcgan"}, {"generator": net})
    before = (tmp_path / WEIGHTS_FILE).read_bytes()

    def killed(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr("training.bundle.write.save_file", killed)
    with pytest.raises(KeyboardInterrupt):
        save_bundle(tmp_path, {"family": "dcgan"}, {"generator": torch.nn.Linear(2, 2)})
    assert (tmp_path / WEIGHTS_FILE).read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
