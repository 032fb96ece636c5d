"""`python -m training.bench.live`: how fast a live run on the Train live page learns to draw recognisable toy faces.

It presses "start" the way the page does (training.live.manager: a worker process with its own thread cap, toyfaces
at 32x32, the page's default DCGAN: width 32, batch 64, nz 100, 4,096 training faces), then judges every published
fixed-noise grid (64 samples) with the toyfaces feature network (checkpoints/toyfaces/featurenet):

  precision   k-NN precision (Kynkäänniemi et al. 2019, k = 5) of the 64 samples against 4,000 real toy faces drawn
              at 32x32 from another seed (not the training faces), both first reduced to 16x16 and enlarged again
              (bilinear, antialiased), then enlarged to the network's 64x64 (featurenet.to_input; it was trained at
              64px). Without the reduction the network judges texture, not faces: the shipped 64px DCGAN's snapshots
              score 0.00 at step 1000, where anyone sees faces, and 0.81 at step 200, grey blobs (k = 5, 1,000 real).
  recognisable the median precision of three consecutive grids reaches THRESHOLD = 0.3.

The threshold comes from looking at the grids of live runs of these settings. Before step 100 the judge says 0.00
to 0.1 (grey noise, then grey blobs); from about step 120 it says 0.2 to 0.5 and stays there: face-shaped colour
layouts (hair on top, skin in the middle) at step 120, faces with hair, eyes and a mouth at step 200, clear faces at
step 420. So the judge marks the first face-shaped samples; it cannot tell a blob-face from a face with eyes (64
samples, a network that prefers real renders to any generator's, judged at 16x16), and the grids say when the eyes
come. One grid can jump by 0.3 from one step to the next, hence the median; 64 real faces score 1.00. The shipped
64px DCGAN's snapshots, reduced to 32x32, are judged again in the "calibration_step_*" lines.

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
from torch.nn import functional as F

from training.bench.report import emit
from training.bundle import paths as bundle_paths
from training.live import protocol
from training.live.manager import LiveRuns
from training.live.settings import LiveSettings

REPO_ROOT = bundle_paths.REPO_ROOT
FEATURENET = REPO_ROOT / "checkpoints" / "toyfaces" / "featurenet"
THRESHOLD = 0.3
MEDIAN_OF = 3  # consecutive judged grids
K = 5
JUDGED_SIZE = 16  # images are judged on their shapes and colours at 16x16 (see the module's docstring)
CALIBRATION = REPO_ROOT / "checkpoints" / "toyfaces" / "dcgan" / "snapshots"
REAL_IMAGES, REAL_SEED = 4000, 99  # the judge's real faces: not the training faces (seed 0)


class Judge:
    """Precision of a batch of uint8 (N, H, W, C) samples against real toy faces, in the feature network's space."""

    def __init__(self, size: int):
        from training.data.toyfaces import load_toyfaces
        from training.metrics.evaluate import load_featurenet

        self.net, _ = load_featurenet(FEATURENET)
        self.net.eval()
        real = load_toyfaces(REAL_IMAGES + 64, seed=REAL_SEED, size=size, progress=False).images
        self.real = self.features(real[:REAL_IMAGES])
        self.floor = self.precision(real[REAL_IMAGES:])

    @torch.no_grad()
    def features(self, pixels: np.ndarray) -> torch.Tensor:
        from training.models.featurenet import to_input

        x = torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).float().div(127.5).sub(1)
        size = x.shape[-1]
        x = F.interpolate(x, size=(JUDGED_SIZE, JUDGED_SIZE), mode="bilinear", antialias=True, align_corners=False)
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return torch.cat([self.net.features(to_input(part, self.net.config)) for part in x.split(250)])

    def precision(self, pixels: np.ndarray) -> float:
        from training.metrics.distances import precision_recall

        return precision_recall(self.real, self.features(pixels), k=K)[0]


def calibration(judge: Judge) -> None:
    """The judge on the shipped toyfaces DCGAN's snapshots (8x8 grids of 64px samples, reduced to 32x32)."""
    from PIL import Image

    for png in sorted(CALIBRATION.glob("step_*.png")):
        grid = np.asarray(Image.open(png).convert("RGB"))
        tiles = [grid[2 + r * 66:66 + r * 66, 2 + c * 66:66 + c * 66] for r in range(8) for c in range(8)]
        small = np.stack([np.asarray(Image.fromarray(t).resize((32, 32), Image.BILINEAR)) for t in tiles])
        emit(f"calibration_{png.stem}", round(judge.precision(small), 3), "precision",
             what="the shipped toyfaces DCGAN's fixed-noise snapshot at this step, judged like the live samples")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a live process (Linux), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.bench.live", description=__doc__.split("\n\n")[0])
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
    calibration(judge)
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
                recent = [r["precision"] for r in trajectory[-MEDIAN_OF:]]
                row["median"] = float(np.median(recent))
                print(json.dumps(row), file=sys.stderr, flush=True)
                if first is None and len(recent) == MEDIAN_OF and row["median"] >= THRESHOLD:
                    first = row
                after += first is not None
        finally:
            final = runs.stop("bench") or {}
            runs.shutdown()
    speeds = [r["steps_per_second"] for r in trajectory if r["steps_per_second"]]
    emit("steps_per_second", round(float(np.median(speeds)), 2) if speeds else None, "steps/s",
         what=f"median of the worker's own figure, {args.threads} torch thread(s), width {args.width}, batch "
              f"{args.batch_size}, 32x32")
    what = (f"first published grid where the median of {MEDIAN_OF} consecutive grids' k-NN precision (64 samples, "
            f"k = {K}) reaches {THRESHOLD} against "
            f"{REAL_IMAGES} real 32x32 toy faces, in the toyfaces feature network's space (both reduced to "
            f"{JUDGED_SIZE}x{JUDGED_SIZE}, then enlarged to its 64x64)")
    if first is None:
        emit("time_to_first_recognisable_s", None, "s", what=what, reached=False, steps=final.get("step"),
             best=max((r["precision"] for r in trajectory), default=None))
    else:
        emit("time_to_first_recognisable_s", first["wall_s"], "s", step=first["step"],
             worker_cpu_s=first["worker_cpu_s"], median_precision=first["median"], what=what + "; wall seconds "
             "since start was pressed (process start and data included), worker CPU seconds beside them")
    emit("trajectory", trajectory, "rows")
    if final.get("bundle") and args.out:
        emit("bundle", final["bundle"], "path")
    return 0


if __name__ == "__main__":
    sys.exit(main())
