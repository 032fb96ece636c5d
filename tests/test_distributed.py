"""DistributedDataParallel: `torchrun --nproc_per_node=2 -m training train` on two CPU processes (gloo) writes one
bundle from rank 0, with the history of every step and no DDP `module.` prefix; each rank reads a disjoint slice of
the same seeded batch order."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from training.bundle import TRAINING_STATE_FILE, WEIGHTS_FILE, load_bundle
from training.loops.batches import EpochBatches

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ranks_read_disjoint_slices_of_the_same_order():
    one = EpochBatches(22, 3, torch.Generator().manual_seed(0))
    ranks = [EpochBatches(22, 3, torch.Generator().manual_seed(0), rank=r, world_size=2) for r in range(2)]
    assert (one.per_epoch, ranks[0].per_epoch) == (7, 3)  # drop_last over the global batch of 2 x 3
    for _ in range(7):  # two epochs and a bit: every global batch is the single-process order's next 6 images
        together = np.concatenate([next(ranks[0]), next(ranks[1])])
        assert len(set(together)) == 6
        assert sorted(together) == sorted(np.concatenate([next(one), next(one)]))
        if ranks[0].taken == ranks[0].per_epoch:  # the single process has one batch left this epoch: skip it
            while one.taken != one.per_epoch:
                next(one)


@pytest.mark.slow
def test_two_cpu_processes_train_one_bundle(tmp_path):
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               "--master_addr=127.0.0.1", f"--master_port={_free_port()}", "-m", "training", "train",
               "--model", "cgan", "--num-images", "40", "--image-size", "32", "--steps", "4", "--batch-size", "8",
               "--g-width", "8", "--d-width", "8", "--latent-dim", "8", "--snapshot-steps", "0,2",
               "--checkpoint-every", "2", "--threads", "1", "--device", "cpu", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    # The timeout only stops a hung rendezvous; on a busy machine four tiny steps of two processes can take minutes.
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("wrote ") == 1  # rank 0 alone reports (and writes)
    assert "x 2 processes" in done.stderr

    bundle = load_bundle(out, with_training_networks=True)
    assert bundle.history["step"] == [1, 2, 3, 4] and bundle.config["step"] == 4
    assert bundle.config["distributed"] == {"world_size": 2, "backend": "gloo", "global_batch_size": 16}
    assert not any(k.startswith("module.") or ".module." in k for k in load_file(str(out / WEIGHTS_FILE)))
    assert sorted(bundle.snapshot_paths()) == [0, 2, 4]
    assert not (out / TRAINING_STATE_FILE).exists()
    images_per_second = json.loads((out / "config.json").read_text())["training"]["images_per_second"]
    assert images_per_second > 0
