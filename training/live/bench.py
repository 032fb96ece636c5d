"""`python -m training.live.bench`: how fast a live run on the Train live page learns to draw recognisable toy faces.

It presses "start" the way the page does (training.live.manager: a worker process with its own thread cap, toyfaces
at 32x32, the page's default DCGAN: width 32, batch 64, nz 100, 4,096 training faces), then judges every published
fixed-noise grid (64 samples) with the toyfaces feature network (checkpoints/toyfaces/featurenet):

  recognisable = k-NN precision (Kynkäänniemi et al. 2019, k = 3) of the 64 samples against 1,000 real toy faces
                 drawn at 32x32 from another seed, at or above THRESHOLD (0.5: at least half the samples fall inside
                 the real faces' manifold). The feature network was trained at 64x64, so real and generated 32x32
                 images are both enlarged to 64x64 the same way (training.models.featurenet.to_input: bilinear,
                 antialiased); the reference's own 64 real faces score the "floor" line.

Figures go to stdout as one JSON line each: steps/s, the first step and time at which the grid is recognisable (wall
seconds since start was pressed, including the process start and the data; and the worker's CPU seconds, which
depend less on what else the machine runs), and the precision trajectory. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from training.live import protocol
from training.live.manager import LiveRuns
from training.live.settings import LiveSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
FEATURENET = REPO_ROOT / "checkpoints" / "toyfaces" / "featurenet"
THRESHOLD = 0.5
K = 3
REAL_IMAGES, REAL_SEED = 1000, 99  # the judge's real faces: not the training faces (seed 0)


def emit(figure: str, value, unit: str, **extra) -> None:
    print(json.dumps({"figure": figure, "value": value, "unit": unit, **extra}), flush=True)


class Judge:
    """Precision of a batch of uint8 (N, H, W, C) samples against real toy faces, in the feature network's space."""

    def __init__(self, size: int):
        from training.data.toyfaces import generate_toyfaces
        from training.metrics.evaluate import load_featurenet

        self.net, _ = load_featurenet(FEATURENET)
        self.net.eval()
        real, _ = generate_toyfaces(REAL_IMAGES + 64, seed=REAL_SEED, size=size, workers=1)
        self.real = self.features(real[:REAL_IMAGES])
        self.floor = self.precision(real[REAL_IMAGES:])

    @torch.no_grad()
    def features(self, pixels: np.ndarray) -> torch.Tensor:
        from training.models.featurenet import to_input

        x = torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).float().div(127.5).sub(1)
        return torch.cat([self.net.features(to_input(part, self.net.config)) for part in x.split(250)])

    def precision(self, pixels: np.ndarray) -> float:
        from training.metrics.distances import precision_recall

        return precision_recall(self.real, self.features(pixels), k=K)[0]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a live process (Linux), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.live.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=150, help="give up after this long (default 150)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the live run (the page's 1)")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-images", type=int, default=4096)
    parser.add_argument("--out", default=None, metavar="FOLDER", help="keep the run's bundle in this runs folder")
    parser.add_argument("--after", type=int, default=3, help="judged grids to keep watching once recognisable")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the judge must not take the run's core
    judge = Judge(32)
    emit("real_floor_precision", round(judge.floor, 3), "precision", k=K, real=REAL_IMAGES,
         what="64 real 32x32 toy faces judged like the samples")
    settings = LiveSettings(width=args.width, batch_size=args.batch_size, num_images=args.num_images)
    with tempfile.TemporaryDirectory(prefix="live-bench-") as scratch:
        runs = LiveRuns(limit=1, threads=args.threads, time_limit=args.seconds + 120, root=Path(scratch))
        pressed = time.time()
        run = runs.submit("bench", settings, alive=lambda: True, runs_folder=args.out)
        trajectory, first, seen_step, after = [], None, -1, 0
        try:
            while time.time() - pressed < args.seconds and after < args.after:
                status = runs.status("bench") or {}
                if status.get("state") in protocol.ENDED:
                    raise SystemExit(f"the live run ended: {status.get('message')}")
                samples = protocol.read_array(run.folder / protocol.SAMPLES)
                step = int(status.get("step", 0))
                if samples is None or step == seen_step:
                    time.sleep(0.2)
                    continue
                seen_step = step
                row = {"step": step, "wall_s": round(time.time() - pressed, 1),
                       "worker_cpu_s": cpu_seconds(run.process.pid), "precision": round(judge.precision(samples), 3),
                       "steps_per_second": status.get("steps_per_second")}
                trajectory.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
                if first is None and row["precision"] >= THRESHOLD:
                    first = row
                after += first is not None
        finally:
            final = runs.stop("bench") or {}
            runs.shutdown()
    speeds = [r["steps_per_second"] for r in trajectory if r["steps_per_second"]]
    emit("steps_per_second", round(float(np.median(speeds)), 2) if speeds else None, "steps/s",
         what=f"median of the worker's own figure, {args.threads} torch thread(s), width {args.width}, batch "
              f"{args.batch_size}, 32x32")
    what = (f"first published grid whose 64 samples reach k-NN precision >= {THRESHOLD} (k = {K}) against "
            f"{REAL_IMAGES} real 32x32 toy faces, in the 64px toyfaces feature network's space (both enlarged)")
    if first is None:
        emit("time_to_first_recognisable_s", None, "s", what=what, reached=False, steps=final.get("step"),
             best=max((r["precision"] for r in trajectory), default=None))
    else:
        emit("time_to_first_recognisable_s", first["wall_s"], "s", step=first["step"],
             worker_cpu_s=first["worker_cpu_s"], precision=first["precision"], what=what + "; wall seconds "
             "since start was pressed (process start and data included), worker CPU seconds beside them")
    emit("trajectory", trajectory, "rows")
    if final.get("bundle") and args.out:
        emit("bundle", final["bundle"], "path")
    return 0


if __name__ == "__main__":
    sys.exit(main())
