"""Figures behind the photo upload's limits: files made to exhaust the server, and the largest ones allowed, each
read as the "Your photo" page reads an upload (read_photo_bytes, then content_check) in a fresh process. One JSON
line per file: its size, wall and CPU seconds, peak resident memory above the process before reading, and what
the page would say.

    OMP_NUM_THREADS=1 python -m training.bench.photo_limits            # all files (about a minute)
    OMP_NUM_THREADS=1 python -m training.bench.photo_limits --only scans
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from training.untrusted.decode_cost import MAX_JPEG_DECODING_WORK, read_layout


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _flat_progressive(side: int) -> bytes:
    return _encoded(Image.new("RGB", (side, side), (128, 128, 128)), "JPEG", progressive=True, quality=50,
                    subsampling=0)


def _declaring(jpeg: bytes, marker: bytes, width: int, height: int) -> bytes:
    at = jpeg.index(marker)
    return jpeg[:at + 5] + struct.pack(">HH", height, width) + jpeg[at + 9:]


def _scans(jpeg: bytes) -> list[tuple[int, int]]:
    starts = [i for i in range(len(jpeg) - 1) if jpeg[i] == 0xFF and jpeg[i + 1] == 0xDA]
    return list(zip(starts, starts[1:] + [jpeg.rindex(b"\xff\xd9")]))


def _repeating(jpeg: bytes, scan: int, copies: int) -> bytes:
    start, end = _scans(jpeg)[scan]
    last = jpeg.rindex(b"\xff\xd9")
    return jpeg[:last] + jpeg[start:end] * copies + jpeg[last:]


def _up_to_the_work_limit(jpeg: bytes, scan: int) -> bytes:
    """The JPEG with one of its scans repeated as often as the work limit (and the scan limit) allow."""
    best = jpeg
    for copies in range(1, 91):
        candidate = _repeating(jpeg, scan, copies)
        if read_layout(candidate).decoding_work > MAX_JPEG_DECODING_WORK:
            break
        best = candidate
    return best


def _smooth(width: int, height: int) -> Image.Image:
    """A picture with photo-like content (smooth colour fields), not flat, not noise."""
    coarse = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)


def _png_chunks(count: int) -> bytes:
    png = _encoded(_smooth(64, 48), "PNG")
    empty = struct.pack(">I", 0) + b"abCd" + struct.pack(">I", zlib.crc32(b"abCd"))
    return png[:33] + empty * count + png[33:]


def _bmp_runs(side: int) -> bytes:
    """An 8-bit run-length BMP whose every run is one pixel: PIL decodes it one Python step per run."""
    pixels = (b"\x01\x05" * side + b"\x00\x00") * side + b"\x00\x01"
    palette = b"".join(bytes((i, i, i, 0)) for i in range(256))
    offset = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, side, side, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + palette + pixels


def _gif_blocks(megabytes: int) -> bytes:
    gif = _encoded(Image.new("P", (16, 16), 1), "GIF")
    at = gif.index(b"\x2c")  # the image descriptor
    return gif[:at] + b"\x21\xfe\x00" * (megabytes * 2**20 // 3) + gif[at:]


def _rotated_rgba_png() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encoded(Image.new("RGBA", (4096, 4096), (200, 180, 160, 255)), "PNG", exif=exif)


def _sixteen_bit_noise_png() -> bytes:
    return _encoded(Image.fromarray(np.random.default_rng(0).integers(0, 65536, (4096, 4096), dtype=np.uint16)),
                    "PNG")


FILES: dict[str, Callable[[], bytes]] = {
    "declared: progressive JPEG of 4 kB declaring 13370x13370 (4:4:4)":
        lambda: _declaring(_flat_progressive(64), b"\xff\xc2", 13370, 13370),
    "scans: progressive JPEG 4096x4096 with 3,010 scans (200 kB)": lambda: _repeating(_flat_progressive(4096), 9, 3000),
    "memory: progressive JPEG 5280x5280 4:4:4, just under the coefficient limit": lambda: _flat_progressive(5280),
    "work-dc: progressive JPEG 4600x4600, first DC scans up to the work limit":
        lambda: _up_to_the_work_limit(_flat_progressive(4600), 0),
    "work-refine: progressive JPEG 4600x4600, refinement scans up to the work limit":
        lambda: _up_to_the_work_limit(_flat_progressive(4600), 9),
    "baseline-declared: baseline JPEG of 1 kB declaring 13370x13370":
        lambda: _declaring(_encoded(Image.new("RGB", (64, 64), (120, 80, 60)), "JPEG", subsampling=0),
                           b"\xff\xc0", 13370, 13370),
    "comments: JPEG with 100,000 empty comment segments":
        lambda: (lambda j: j[:2] + b"\xff\xfe\x00\x02" * 100_000 + j[2:])(_encoded(_smooth(64, 48), "JPEG")),
    "png-chunks: PNG with 3,000,000 empty chunks (40 MB)": lambda: _png_chunks(3_000_000),
    "png-rgba: PNG 4096x4096 RGBA, EXIF-rotated, one flat colour": _rotated_rgba_png,
    "png-16bit: PNG 4096x4096 16-bit grey noise": _sixteen_bit_noise_png,
    "webp: WebP 4096x4096 lossless, one flat colour":
        lambda: _encoded(Image.new("RGB", (4096, 4096), (9, 9, 9)), "WEBP", lossless=True),
    "bmp-runs: BMP 2048x2048 of one-pixel runs (8 MB)": lambda: _bmp_runs(2048),
    "gif-blocks: GIF with 20 MB of empty extension blocks": lambda: _gif_blocks(20),
    "photo-48mp: progressive JPEG 8064x6048 4:2:0 (accepted)":
        lambda: _encoded(_smooth(8064, 6048), "JPEG", progressive=True, quality=90),
    "photo-16mp-png: PNG 4096x4096 (accepted)": lambda: _encoded(_smooth(4096, 4096), "PNG"),
}


def _resident_kb(key: str = "VmRSS:") -> int:
    with open("/proc/self/status") as status:
        return int(next(line.split()[1] for line in status if line.startswith(key)))


def measure_one(path: Path, name: str) -> dict:
    """Read one file as an upload, in this (fresh) process."""
    from training.data.prepare import Preprocessing
    from training.errors import LatentExplorerError
    from training.untrusted.photos import content_check, read_photo_bytes

    prep = Preprocessing(64, 0.0, "RGB")
    content_check(read_photo_bytes(_encoded(_smooth(96, 96), "JPEG"), "warm-up.jpg", prep))  # lazy imports
    data = path.read_bytes()
    before, peak, done = _resident_kb(), [0], threading.Event()

    def watch() -> None:  # sampled too, where the kernel cannot reset its own peak (VmHWM)
        while not done.is_set():
            peak[0] = max(peak[0], _resident_kb())
            time.sleep(0.002)

    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # the peak (VmHWM) starts again from the present size
    except OSError:
        pass
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        photo = read_photo_bytes(data, name, prep)
        content_check(photo)
        said = f"accepted, decoded at {photo.decoded_size[0]}x{photo.decoded_size[1]}"
    except LatentExplorerError as exc:
        said = str(exc)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    done.set()
    watcher.join()
    peak_kb = max(peak[0], _resident_kb("VmHWM:"))
    return {"file": name, "bytes": len(data), "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "peak_above_idle_mb": round((peak_kb - before) / 1024, 1), "says": said}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.bench.photo_limits", description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="the files whose label starts with this")
    parser.add_argument("--measure", nargs=2, metavar=("PATH", "LABEL"), help=argparse.SUPPRESS)  # the child's job
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure_one(Path(args.measure[0]), args.measure[1].split(":")[0] + ".upload")))
        return 0
    with tempfile.TemporaryDirectory(prefix="photo-limits-") as folder:
        for label, make in FILES.items():
            if args.only and not label.startswith(args.only):
                continue
            path = Path(folder) / "upload"
            path.write_bytes(make())
            child = subprocess.run([sys.executable, "-m", "training.bench.photo_limits", "--measure", str(path), label],
                                   capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            line = json.loads(child.stdout) if child.returncode == 0 else {"error": child.stderr[-500:]}
            print(json.dumps({"label": label, **line}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
