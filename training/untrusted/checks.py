"""Readers for files that anyone may have made: a bundle a student copied in, an upload, a downloaded folder.

Each reader refuses, with one LatentExplorerError naming the file, what a careless or hostile file could do to
the server: a FIFO or a device in place of a file (hangs or endless reads), a JSON number with thousands of
digits or nesting 200,000 levels deep (ValueError / RecursionError deep in the parser), an infinite or NaN
number (OverflowError far from here), a small PNG that decodes to gigabytes, a JPEG whose frame or scans ask
its decoder for a gigabyte or a minute (decode_cost).
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from training.errors import LatentExplorerError

# A config is a few kB and a 15,000-step history under 1 MB; far beyond that is a damaged or hostile file.
MAX_JSON_BYTES = 32 << 20
# Integers in our JSON are steps, sizes, counts and seeds; 20 digits hold any 64-bit seed and no number bomb.
MAX_INT_DIGITS = 20
# A snapshot grid of 64 images at 128 px is about 1 M pixels; 16 M pixels (48 MB as RGB) is the most we decode.
MAX_IMAGE_PIXELS = 16 << 20
FORMAT_NAMES = {"WEBP": "WebP"}  # PIL's format names, as people write them where they differ


def _describe_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _os_problem(exc: OSError) -> str:
    """The plain-words reason an OSError gives, without Python's "[Errno 13]" prefix."""
    return exc.strerror or type(exc).__name__


def regular_file_size(file: str | Path, what: str) -> int:
    """The size of `file` once it is known to be a regular file this process may read; else LatentExplorerError.

    Symbolic links are followed (a bundle may link its weights); what they point to must be a regular file."""
    file = Path(file)
    try:
        info = os.stat(file)
    except FileNotFoundError:
        raise LatentExplorerError(f"{file}: missing {what} (no such file)") from None
    except OSError as exc:
        raise LatentExplorerError(f"{file}: cannot read the {what} ({_os_problem(exc)})") from None
    if not stat.S_ISREG(info.st_mode):
        raise LatentExplorerError(f"{file}: the {what} is {_describe_kind(info.st_mode)}, not a regular file")
    if not os.access(file, os.R_OK):
        raise LatentExplorerError(f"{file}: cannot read the {what} (permission denied)")
    return info.st_size


def read_bytes(file: str | Path, what: str, max_bytes: int) -> bytes:
    """The whole content of a regular file of at most max_bytes (read with a cap, in case it grows meanwhile)."""
    size = regular_file_size(file, what)
    if size > max_bytes:
        raise LatentExplorerError(f"{file}: the {what} is too large ({size / 2**20:.1f} MB, more than the "
                                  f"{max_bytes / 2**20:.0f} MB such a file can need); it is damaged or not ours")
    try:
        # O_NONBLOCK: if the file was swapped for a FIFO after the check, opening it must not hang.
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise LatentExplorerError(f"{file}: the {what} is not a regular file")
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise LatentExplorerError(f"{file}: cannot read the {what} ({_os_problem(exc)})") from None
    if len(data) > max_bytes:
        raise LatentExplorerError(f"{file}: the {what} grew past {max_bytes / 2**20:.0f} MB while being read")
    return data


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise ValueError(f"a number with {digits} digits")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large to represent")
    return value


def _no_constants(text: str) -> None:
    raise ValueError(f"{text} is not a number")


def parse_json(text: str | bytes, where: str, what: str) -> Any:
    """json.loads with every number finite and bounded; any problem is one LatentExplorerError."""
    try:
        return json.loads(text, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constants)
    except RecursionError:
        raise LatentExplorerError(f"{where}: the {what} is nested too deeply to be ours") from None
    except (ValueError, UnicodeDecodeError, MemoryError) as exc:
        raise LatentExplorerError(f"{where}: the {what} is not valid JSON ({str(exc)[:160]})") from None


def read_json(file: str | Path, what: str, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """A JSON file, read under the checks of read_bytes and parse_json."""
    return parse_json(read_bytes(file, what, max_bytes), str(file), what)


def finite_json(value: Any) -> Any:
    """`value` with every non-finite float replaced by None: what we write must be what we can read back."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


@contextmanager
def open_image(file: str | Path, what: str, max_pixels: int = MAX_IMAGE_PIXELS, max_bytes: int = 64 << 20,
               draft: tuple[str, int] | None = None, formats: tuple[str, ...] | None = None) -> Iterator[Any]:
    """A PIL image whose header promises at most max_pixels, for the with-block to decode; anything that goes wrong
    while opening or decoding it is one LatentExplorerError naming the file.

    A JPEG or PNG is also checked from its bytes for what decoding it would cost (decode_cost).
    draft (mode, side): a JPEG is decoded in that mode at the smallest DCT scale (1/2, 1/4, 1/8) still at least
    `side` pixels on each side (PIL's draft mode), and the cap applies to what is decoded: a 48-megapixel phone
    photo meant for a 64-pixel model costs a fraction of its full size. formats: the PIL formats tried (None: all)."""
    import io

    from PIL import Image, JpegImagePlugin, UnidentifiedImageError

    from training.untrusted.decode_cost import check_decode_cost

    size = regular_file_size(file, what)
    if size > max_bytes:
        raise LatentExplorerError(f"{file}: the {what} is {size / 2**20:.0f} MB, more than the "
                                  f"{max_bytes / 2**20:.0f} MB we read")
    data = read_bytes(file, what, max_bytes)  # once, so the checks and the decoder see the same bytes
    check_decode_cost(data, str(file), what, formats)  # before PIL, whose own reading of the headers can be slow
    try:
        with Image.open(io.BytesIO(data), formats=formats) as img:
            if draft is not None and isinstance(img, JpegImagePlugin.JpegImageFile):  # JPEG, and MPO (a phone's)
                img.draft(draft[0], (draft[1], draft[1]))
            width, height = img.size
            if width * height > max_pixels:
                raise LatentExplorerError(f"{file}: the {what} is {width}x{height} pixels, more than the "
                                          f"{max_pixels / 2**20:.0f} M pixels we decode")
            yield img
    except LatentExplorerError:
        raise
    except Image.DecompressionBombError as exc:  # PIL's own limit, checked at open: "Image size (N pixels) ..."
        found = re.search(r"\((\d+) pixels\)", str(exc))
        count = f"{int(found.group(1)) / 2**20:,.0f} M" if found else "far more than"
        raise LatentExplorerError(f"{file}: the {what} has {count} pixels, more than the "
                                  f"{max_pixels / 2**20:.0f} M pixels we decode") from None
    except UnidentifiedImageError:  # its message names the in-memory stream, not the file
        kinds = "an image format we know" if formats is None else "a " + " or ".join(
            ", ".join(FORMAT_NAMES.get(f, f) for f in formats).rsplit(", ", 1)) + " file"
        raise LatentExplorerError(f"{file}: cannot read the {what} as an image (it is not {kinds})") from None
    except (OSError, ValueError, SyntaxError, MemoryError, EOFError, struct.error) as exc:
        raise LatentExplorerError(f"{file}: cannot read the {what} as an image ({str(exc)[:160]})") from None


def read_image_rgb(file: str | Path, what: str, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """A PNG or JPEG file (what we write, and what anyone would put in its place) as uint8 RGB (H, W, 3), refused
    before decoding when its header promises too many pixels."""
    with open_image(file, what, max_pixels, formats=("PNG", "JPEG")) as img:
        return np.asarray(img.convert("RGB"))
