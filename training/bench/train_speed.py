"""`python -m training.bench`: how many images a second the 64x64 DCGAN trains, three ways, on this machine.

(a) our trainer: training.loops.gan.AdversarialSteps, the very step `python -m training train` repeats, plus
    Run.record, fed by Run's batches from the prepared uint8 dataset; with the defaults (a_fp32) and with
    --precision bf16 --channels-last (a_fast);
(b) a loop written the way pytorch/examples dcgan/main.py is: ImageFolder + transforms + DataLoader workers that
    decode the JPEGs again every epoch, the same G and D, Adam(2e-4, betas (0.5, 0.999)), BCE, fp32;
(c) the step of (a) on a few batches already in memory: what the arithmetic alone allows (c_fp32, c_fast).

Every way is warmed up before anything is timed: its first steps create oneDNN kernels and fill allocator caches
(the first rounds once ran 10x slower than the later ones), so it runs until two timed chunks in a row agree
within --steady. Then the ways take turns, round after round (a_fp32, a_fast, b, c_fp32, c_fast, a_fp32, ...), so
a machine that gets busier or quieter during the run slows every way alike; each figure is the median over the
rounds with its spread, and each ratio is the median of the per-round ratios (two ways timed next to each other).
Figures go to stdout as one JSON line each, progress to stderr. Nothing is downloaded; the toyfaces JPEGs the
reference loop decodes are written to a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.bench.report import emit_record
from training.data.base import ImageDataset
from training.errors import LatentExplorerError
from training.loops.config import TrainConfig, resolve_device
from training.loops.gan import AdversarialSteps
from training.models import dcgan

IMAGE_SIZE = 64
LATENT_DIM = 100
PRELOADED_BATCHES = 4  # (c) cycles over these: enough that BatchNorm does not see one batch over and over
WAYS = ("a_fp32", "a_fast", "b", "c_fp32", "c_fast")
RATIOS = (("a_fp32", "b"), ("a_fast", "b"), ("a_fp32", "c_fp32"), ("a_fast", "c_fast"))
FAST = {"precision": "bf16", "channels_last": True}
WHAT = {
    "a": "our trainer: training.loops.gan.AdversarialSteps(step) + Run.record, the loop body of `python -m "
         "training train`, fed by Run's batches (shuffled epochs over the prepared uint8 dataset, memory-mapped, "
         "normalised per batch in the main process); setup, snapshots and bundle saves not timed",
    "b": "a loop written like pytorch/examples dcgan/main.py: ImageFolder + Resize/CenterCrop/ToTensor/Normalize, "
         "DataLoader(shuffle=True, num_workers) decoding the JPEGs every epoch (its workers decode ahead, also "
         "between rounds), same G and D, Adam(2e-4, (0.5, 0.999)), BCE on D's logits, fp32",
    "c": "the step of (a) on batches already in memory (the compute-only limit): no data pipeline",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=["toyfaces", "anime"], default="toyfaces",
                        help="toyfaces (generated here, written once as JPEGs) or anime (a folder with images/)")
    parser.add_argument("--data-root", default=None, metavar="PATH", help="--data anime: the anime64 folder")
    parser.add_argument("--num-images", type=int, default=4096,
                        help="toyfaces: how many faces (enough that decoding JPEGs is real work every epoch)")
    parser.add_argument("--rounds", type=int, default=5, help="each way is timed once per round")
    parser.add_argument("--steps-per-round", type=int, default=10, help="training steps timed per way and round")
    parser.add_argument("--warmup-steps", type=int, default=3, help="untimed steps of each way before round 1, at "
                        "least; then more until it is steady")
    parser.add_argument("--steady", type=float, default=0.1, metavar="F",
                        help="warm-up ends when two timed chunks of a way agree within this share (default 0.1)")
    parser.add_argument("--max-warmup-chunks", type=int, default=10, metavar="N",
                        help="give up waiting for a steady way after this many chunks (and say so)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--g-width", type=int, default=32, help="generator width (the shipped recipe's 32)")
    parser.add_argument("--d-width", type=int, default=32, help="discriminator width (the shipped recipe's 32)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--workers", type=int, default=2, help="(b): DataLoader worker processes, as the example")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    args = parser.parse_args(argv)
    for name in ("rounds", "steps_per_round", "batch_size", "num_images"):
        if getattr(args, name) < 1:
            raise LatentExplorerError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.warmup_steps < 0 or args.workers < 0 or args.max_warmup_chunks < 0:
        raise LatentExplorerError("--warmup-steps, --max-warmup-chunks and --workers cannot be negative")
    if not 0 < args.steady < 1:
        raise LatentExplorerError(f"--steady must be between 0 and 1, got {args.steady}")
    if args.threads is not None and args.threads < 1:
        raise LatentExplorerError(f"--threads must be at least 1, got {args.threads}")
    return args


def info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(device: torch.device) -> dict:
    return {"figure": "machine", "cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "device": str(device), "python": platform.python_version()}


# -- data ---------------------------------------------------------------------------------------------------------

def load_data(args: argparse.Namespace, scratch: Path) -> tuple[ImageDataset, Path]:
    """(the prepared dataset our trainer reads, an ImageFolder root holding the same images as JPEG files)."""
    from training.data.registry import load_dataset

    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the figures
        if args.data == "toyfaces":
            dataset, _ = load_dataset("toyfaces", image_size=IMAGE_SIZE, num_images=args.num_images)
            return dataset, write_jpegs(dataset.images, scratch / "jpegs")
        if args.data_root is None:
            raise LatentExplorerError("--data anime needs --data-root PATH, the folder holding images/ and tags.csv")
        root = Path(args.data_root).expanduser()
        if not root.is_dir():
            raise LatentExplorerError(f"--data-root {root} is not a folder; pass the anime64 folder (images/, "
                                      "tags.csv)")
        dataset, source = load_dataset("anime", image_size=IMAGE_SIZE, path=str(root))
    # ImageFolder wants a root whose subfolders are classes: a link to the folder our trainer read, so both ways
    # see the same files and nothing is copied.
    from training.data.anime import index_anime

    folder = scratch / "jpegs"
    folder.mkdir()
    (folder / "images").symlink_to(Path(index_anime(root).files["images"]).resolve(), target_is_directory=True)
    return dataset, folder


def write_jpegs(images: np.ndarray, folder: Path) -> Path:
    """The images as JPEG files in ImageFolder's layout (one class folder), for the reference loop to decode."""
    from PIL import Image

    faces = folder / "faces"
    faces.mkdir(parents=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(faces / f"{i:05d}.jpg", quality=95)
    info(f"wrote {len(images)} JPEGs to {faces} for the reference loop")
    return folder


# -- the ways -----------------------------------------------------------------------------------------------------

class Trainer:
    """(a) and (c): our trainer's step. preload=True swaps its batches for a few of them held in memory."""

    def __init__(self, dataset: ImageDataset, args: argparse.Namespace, out: Path, preload: bool, **options):
        warm = args.warmup_steps + args.max_warmup_chunks * max(1, args.steps_per_round // 2)
        total = warm + args.rounds * args.steps_per_round + 1
        config = TrainConfig(steps=total, batch_size=args.batch_size, snapshot_steps=(), checkpoint_every=total,
                             device=args.device, **options)
        model = dcgan.DCGANConfig(latent_dim=LATENT_DIM, image_size=IMAGE_SIZE, channels=dataset.channels,
                                  g_width=args.g_width, d_width=args.d_width)
        self.training = AdversarialSteps("dcgan", dataset, model, config, out, progress=False)
        if preload:
            self.training.batches = itertools.cycle([next(self.training.batches) for _ in range(PRELOADED_BATCHES)])
        self.step_number = 0

    def step(self) -> int:
        self.step_number += 1
        values = self.training(self.step_number)
        self.training.run.record(self.step_number, values)
        return self.training.config.batch_size

    def close(self) -> None:
        pass


class TutorialLoop:
    """(b): pytorch/examples dcgan/main.py's data loading and training step, written again around our G and D."""

    def __init__(self, image_root: Path, channels: int, args: argparse.Namespace, device: torch.device):
        from torch.utils.data import DataLoader
        from torchvision import datasets, transforms

        torch.manual_seed(0)
        transform = transforms.Compose([
            transforms.Resize(IMAGE_SIZE), transforms.CenterCrop(IMAGE_SIZE), transforms.ToTensor(),
            transforms.Normalize((0.5,) * channels, (0.5,) * channels),
        ])
        self.loader = DataLoader(datasets.ImageFolder(str(image_root), transform=transform),
                                 batch_size=args.batch_size, shuffle=True, num_workers=args.workers)
        config = dcgan.DCGANConfig(latent_dim=LATENT_DIM, image_size=IMAGE_SIZE, channels=channels,
                                   g_width=args.g_width, d_width=args.d_width)
        self.device = device
        self.net_g, self.net_d = dcgan.Generator(config).to(device), dcgan.Discriminator(config).to(device)
        self.net_g.apply(dcgan.weights_init)
        self.net_d.apply(dcgan.weights_init)
        # Our D ends in a logit, not the example's Sigmoid: BCEWithLogitsLoss is BCELoss(Sigmoid(.)) in one op.
        self.criterion = nn.BCEWithLogitsLoss()
        self.opt_d = torch.optim.Adam(self.net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_g = torch.optim.Adam(self.net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.epoch = iter(self.loader)

    def next_batch(self) -> torch.Tensor:
        try:
            return next(self.epoch)[0]
        except StopIteration:  # the example's `for epoch ...: for data in dataloader` starts new workers here
            self.epoch = iter(self.loader)
            return next(self.epoch)[0]

    def step(self) -> int:
        real = self.next_batch().to(self.device)
        b = real.size(0)
        label = torch.full((b,), 1.0, device=self.device)
        self.net_d.zero_grad()
        err_d_real = self.criterion(self.net_d(real), label)
        err_d_real.backward()
        fake = self.net_g(torch.randn(b, LATENT_DIM, 1, 1, device=self.device))
        label.fill_(0.0)
        err_d_fake = self.criterion(self.net_d(fake.detach()), label)
        err_d_fake.backward()
        self.opt_d.step()
        self.net_g.zero_grad()
        label.fill_(1.0)
        err_g = self.criterion(self.net_d(fake), label)
        err_g.backward()
        self.opt_g.step()
        (err_d_real + err_d_fake).item(), err_g.item()  # the example logs both every step
        return b

    def close(self) -> None:
        self.epoch = None  # stops the worker processes


def images_per_second(way: Trainer | TutorialLoop, steps: int) -> float:
    start = time.perf_counter()
    images = sum(way.step() for _ in range(steps))
    return images / (time.perf_counter() - start)


def steady(rates: list[float], tolerance: float) -> bool:
    """The last two timings agree within `tolerance` of the larger."""
    return len(rates) >= 2 and abs(rates[-1] - rates[-2]) <= tolerance * max(rates[-1], rates[-2])


def warm_up(name: str, way: Trainer | TutorialLoop, args: argparse.Namespace) -> list[float]:
    """The untimed warm-up steps, then chunks of half a round's steps until two agree within --steady (at most
    --max-warmup-chunks); returns the chunks' images/s."""
    for _ in range(args.warmup_steps):
        way.step()
    chunks: list[float] = []
    chunk = max(1, args.steps_per_round // 2)
    while len(chunks) < args.max_warmup_chunks and not steady(chunks, args.steady):
        chunks.append(images_per_second(way, chunk))
    info(f"{name} warmed up: " + ", ".join(f"{r:.1f}" for r in chunks) + " images/s"
         + ("" if steady(chunks, args.steady) or not chunks else " (not steady: the machine is busy)"))
    return chunks


def measure(args: argparse.Namespace, scratch: Path, device: torch.device) -> dict[str, list[float]]:
    """Every way's images/s in each round, after it warmed up."""
    dataset, jpeg_root = load_data(args, scratch)
    info(f"{args.data}: {len(dataset)} images; building the five ways")
    ways = {
        "a_fp32": Trainer(dataset, args, scratch / "a_fp32", preload=False),
        "a_fast": Trainer(dataset, args, scratch / "a_fast", preload=False, **FAST),
        "b": TutorialLoop(jpeg_root, dataset.channels, args, device),
        "c_fp32": Trainer(dataset, args, scratch / "c_fp32", preload=True),
        "c_fast": Trainer(dataset, args, scratch / "c_fast", preload=True, **FAST),
    }
    try:
        for name, way in ways.items():
            warm_up(name, way, args)
        rates: dict[str, list[float]] = {name: [] for name in ways}
        for round_number in range(1, args.rounds + 1):
            for name, way in ways.items():
                rates[name].append(images_per_second(way, args.steps_per_round))
            info(f"round {round_number}/{args.rounds}: " + ", ".join(f"{n} {r[-1]:.1f}" for n, r in rates.items())
                 + " images/s")
        return rates
    finally:
        for way in ways.values():
            way.close()


def figure_lines(rates: dict[str, list[float]], args: argparse.Namespace) -> list[dict]:
    lines = []
    for name in WAYS:
        fast = name.endswith("fast")
        lines.append({"figure": "train_images_per_s", "way": name, "value": round(statistics.median(rates[name]), 1),
                      "unit": "images/s", "rounds": len(rates[name]), "steps_per_round": args.steps_per_round,
                      "batch_size": args.batch_size, "per_round": [round(r, 1) for r in rates[name]],
                      "spread": round(relative_spread(rates[name]), 3),
                      "precision": "bf16" if fast else "fp32", "channels_last": fast, "data": args.data,
                      "what": WHAT[name[0]]})
    for top, bottom in RATIOS:
        per_round = [t / b for t, b in zip(rates[top], rates[bottom])]
        lines.append({"figure": "ratio", "name": f"{top}/{bottom}", "value": round(statistics.median(per_round), 3),
                      "per_round": [round(r, 3) for r in per_round], "spread": round(relative_spread(per_round), 3)})
    return lines


def relative_spread(values: list[float]) -> float:
    """(max - min) / median: 0.1 means the rounds lie within 10% of the typical figure."""
    middle = statistics.median(values)
    return (max(values) - min(values)) / middle if middle else float("nan")


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        device = resolve_device(args.device)
        emit_record(machine(device))
        scratch = Path(tempfile.mkdtemp(prefix="latent-explorer-bench-"))
        try:
            rates = measure(args, scratch, device)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    except LatentExplorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in figure_lines(rates, args):
        emit_record(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
