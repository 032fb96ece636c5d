"""What a JPEG or PNG file will ask of its decoder, read from its structure before any pixel is decoded.

Why: libjpeg decodes a progressive JPEG (or any JPEG whose first scan carries only some of its components) by
holding every DCT coefficient of the whole frame at the size the file declares, whatever smaller scale it is asked
to output, and by walking the coefficients of each scan's band again for every scan. Neither cost shows in the
image size PIL reports after draft(): a 1 MB file can declare 13370x13370 pixels (1 GB of coefficients), and a
200 kB one can repeat a refinement scan thousands of times (a minute of CPU). Both costs follow from the frame
header (SOF) and the scan headers (SOS), so they are computed here from the bytes, the way libjpeg reads them.
PIL reads a PNG's chunks one Python step at a time (about 15 us each): 50 MB of empty chunks take 45 s, so
their number is capped the same way.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from training.errors import LatentExplorerError

# Photos have 1 scan (baseline) or about 10 (libjpeg's progressive script; mozjpeg's are similar). libtiff refuses
# JPEG data with more than 100 scans by default; so do we.
MAX_JPEG_SCANS = 100
# libjpeg keeps 64 two-byte coefficients per 8x8 block: a 48-megapixel (8064x6048) progressive photo needs 140 MB
# with the usual 4:2:0 colour, 280 MB (refused) with full-resolution colour.
MAX_JPEG_COEFFICIENT_BYTES = 160 << 20
# The decoding work of a multi-scan JPEG, counted in coefficient visits: each scan walks the coefficients of its
# band in every block of its components, plus a fixed cost per block. Measured with libjpeg-turbo 3.2 (CPU time):
# a refinement scan costs 0.65 ns per coefficient, a first DC scan 19 ns per block, so a block costs as much as
# BLOCK_WORK coefficients; the slowest scans we could make cost 1.1 ns per unit. A 12-megapixel progressive
# photo (libjpeg's 10-scan script, 4:2:0) needs 81 M units, a 48-megapixel one 325 M; the limit is about 0.6 s.
BLOCK_WORK = 24
MAX_JPEG_DECODING_WORK = 512 << 20

SOI, EOI, SOS = 0xD8, 0xD9, 0xDA
# The frame headers libjpeg decodes: baseline, extended sequential and progressive, Huffman-coded.
READ_FRAMES = {0xC0: "baseline", 0xC1: "extended sequential", 0xC2: "progressive"}
# Frame headers of codings photos never use (lossless, hierarchical, arithmetic-coded): refused by name.
OTHER_FRAMES = {0xC3: "lossless", 0xC5: "hierarchical", 0xC6: "hierarchical", 0xC7: "hierarchical",
                0xC9: "arithmetic-coded", 0xCA: "arithmetic-coded", 0xCB: "arithmetic-coded",
                0xCD: "hierarchical", 0xCE: "hierarchical", 0xCF: "hierarchical"}
# Segments with a length that the decoder reads or skips: tables, restart interval, application data, comments
# and DNL (libjpeg refuses any other marker; so do we).
SKIPPED = {0xC4, 0xCC, 0xDB, 0xDC, 0xDD, 0xFE, *range(0xE0, 0xF0)}
PARAMETERLESS = {0x01, *range(0xD0, 0xD8)}  # TEM and the restart markers, which libjpeg passes over between scans
# Markers outside the scans' data. A photo has a few dozen (tables, EXIF, ICC and XMP chunks, one per scan); each
# costs a step of the Python loop below, so 50 MB of 4-byte comments must not be followed one by one.
MAX_JPEG_MARKERS = 2000
BLOCK_BYTES = 64 * 2


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Component:
    ident: int
    h: int  # horizontal sampling factor, 1..4
    v: int


@dataclass(frozen=True)
class Scan:
    components: tuple[int, ...]  # positions in the frame's components
    band: tuple[int, int]  # spectral selection (Ss, Se): (0, 0) a DC scan, (0, 63) a sequential one


@dataclass(frozen=True)
class JpegLayout:
    """The frame a JPEG declares and the scans it holds, as libjpeg will read them."""

    coding: str  # "baseline", "extended sequential" or "progressive"
    width: int
    height: int
    components: tuple[Component, ...]
    scans: tuple[Scan, ...]

    def blocks(self, c: int) -> int:
        """8x8 blocks libjpeg allocates for component c (jdcoefct.c: padded to whole MCUs)."""
        comp = self.components[c]
        wide = _ceil_div(self.width * comp.h, 8 * max(k.h for k in self.components))
        high = _ceil_div(self.height * comp.v, 8 * max(k.v for k in self.components))
        return _ceil_div(wide, comp.h) * comp.h * _ceil_div(high, comp.v) * comp.v

    @property
    def whole_frame_buffered(self) -> bool:
        """libjpeg's has_multiple_scans (jdinput.c): the whole frame's coefficients are held while decoding."""
        first = self.scans[0].components if self.scans else ()
        return self.coding == "progressive" or len(first) < len(self.components)

    @property
    def coefficient_bytes(self) -> int:
        """Memory for the whole frame's coefficients (held only when whole_frame_buffered)."""
        return sum(self.blocks(c) for c in range(len(self.components))) * BLOCK_BYTES

    @property
    def decoding_work(self) -> int:
        """The work of all scans, in coefficient visits: for each scan, its components' blocks times the width of
        its band plus BLOCK_WORK."""
        return sum(sum(self.blocks(c) for c in scan.components) * (scan.band[1] - scan.band[0] + 1 + BLOCK_WORK)
                   for scan in self.scans)


class JpegStructureError(ValueError):
    """The marker structure is one libjpeg would refuse, or one we cannot follow as libjpeg would."""


def _frame(payload: bytes) -> tuple[int, int, tuple[Component, ...]]:
    if len(payload) < 6:
        raise JpegStructureError("its frame header is cut short")
    _precision, height, width, count = struct.unpack(">BHHB", payload[:6])
    if len(payload) != 6 + 3 * count or not 1 <= count <= 10:
        raise JpegStructureError(f"its frame header is damaged ({count} components in {len(payload)} bytes)")
    if height == 0 or width == 0:
        raise JpegStructureError(f"its frame declares {width}x{height} pixels")
    components = []
    for k in range(count):
        ident, sampling = payload[6 + 3 * k], payload[7 + 3 * k]
        h, v = sampling >> 4, sampling & 15
        if not (1 <= h <= 4 and 1 <= v <= 4):
            raise JpegStructureError(f"component {ident} has sampling factors {h}x{v}")
        components.append(Component(ident, h, v))
    return width, height, tuple(components)


def _scan(payload: bytes, components: tuple[Component, ...]) -> Scan:
    count = payload[0] if payload else 0
    if not 1 <= count <= 4 or len(payload) != 4 + 2 * count:
        raise JpegStructureError(f"a scan header is damaged ({count} components in {len(payload)} bytes)")
    idents = [c.ident for c in components]
    chosen = []
    for k in range(count):
        ident = payload[1 + 2 * k]
        if ident not in idents:
            raise JpegStructureError(f"a scan names component {ident}, which the frame does not have")
        chosen.append(idents.index(ident))
    start, end = payload[1 + 2 * count], payload[2 + 2 * count]
    if not start <= end <= 63:
        raise JpegStructureError(f"a scan covers coefficients {start} to {end}")
    return Scan(tuple(chosen), (start, end))


def _is_marker_code(code: np.ndarray, in_scan: bool) -> np.ndarray:
    """Which bytes after an 0xFF make a marker, as libjpeg reads them: not 0x00 (a stuffed data byte), not 0xFF (a
    fill byte: the marker comes after the last one); inside a scan's entropy-coded data, not a restart marker."""
    found = (code != 0x00) & (code != 0xFF)
    return found & ((code < 0xD0) | (code > 0xD7)) if in_scan else found


def _next_marker(view: np.ndarray, pos: int, in_scan: bool) -> int | None:
    """The position of the 0xFF of the first marker at or after pos (libjpeg's next_marker, which skips what is
    not a marker), or None. Vectorised over growing chunks, at 2 to 5 ms a MB: a Python loop or a regular
    expression over every 0xFF of 50 MB of 0xFF 0x00 pairs takes seconds."""
    step = 1 << 12
    while pos < len(view) - 1:
        end = min(len(view), pos + step + 1)
        chunk = view[pos:end]
        fills = chunk[:-1] == 0xFF
        if np.count_nonzero(fills) * 64 < len(fills):  # the usual case: look only after the few 0xFF bytes
            where = np.flatnonzero(fills)
            hits = where[_is_marker_code(chunk[where + 1], in_scan)]
        else:
            hits = np.flatnonzero(fills & _is_marker_code(chunk[1:], in_scan))
        if hits.size:
            return pos + int(hits[0])
        pos, step = end - 1, min(step * 2, 1 << 20)
    return None


def read_layout(data: bytes) -> JpegLayout:
    """The frame and scans of the JPEG in `data`, up to its first EOI (an MPO's further pictures, and anything a
    camera appends, are not decoded), or up to one scan more than MAX_JPEG_SCANS. A file cut short gives the scans
    it has; the decoder then says it is cut."""
    if not data.startswith(b"\xff\xd8"):
        raise JpegStructureError("it does not start as a JPEG does")
    view = np.frombuffer(data, np.uint8)
    coding, frame, scans = None, None, []
    pos, markers = 2, 0
    while (found := _next_marker(view, pos, in_scan=False)) is not None:
        marker, pos = data[found + 1], found + 2
        markers += 1
        if markers > MAX_JPEG_MARKERS:
            raise JpegStructureError(f"it holds more than {MAX_JPEG_MARKERS} markers")
        if marker == EOI:
            break
        if marker in PARAMETERLESS:
            continue
        if marker == SOI:
            raise JpegStructureError("it holds a second start-of-image marker")
        if pos + 2 > len(data):
            break
        length = struct.unpack(">H", data[pos:pos + 2])[0]
        if length < 2:
            raise JpegStructureError(f"a segment has length {length}")
        if pos + length > len(data):
            break
        payload = data[pos + 2:pos + length]
        pos += length
        if marker in READ_FRAMES or marker in OTHER_FRAMES:
            if frame is not None:
                raise JpegStructureError("it holds two frame headers")
            if marker in OTHER_FRAMES:
                raise JpegStructureError(f"it is a {OTHER_FRAMES[marker]} JPEG, a coding photos do not use")
            coding, frame = READ_FRAMES[marker], _frame(payload)
        elif marker == SOS:
            if frame is None:
                raise JpegStructureError("a scan comes before the frame header")
            scans.append(_scan(payload, frame[2]))
            if len(scans) > MAX_JPEG_SCANS:
                break
            end = _next_marker(view, pos, in_scan=True)
            pos = len(data) if end is None else end
        elif marker not in SKIPPED:
            raise JpegStructureError(f"it holds an unknown marker 0xFF{marker:02X}")
    if frame is None:
        raise JpegStructureError("it has no frame header")
    return JpegLayout(coding, frame[0], frame[1], frame[2], tuple(scans))


def check_jpeg_cost(data: bytes, where: str, what: str) -> JpegLayout:
    """The layout of a JPEG whose decoding stays within the limits above; else one LatentExplorerError naming
    `where`, that says what the file asks for and what to do."""
    try:
        layout = read_layout(data)
    except JpegStructureError as exc:
        raise LatentExplorerError(f"{where}: cannot read the {what} as an image (its JPEG structure is not one we "
                                  f"decode: {exc})") from None
    size = f"{layout.width}x{layout.height}"
    if len(layout.scans) > MAX_JPEG_SCANS:
        raise LatentExplorerError(f"{where}: the {what} is a JPEG of more than {MAX_JPEG_SCANS} scans, more than "
                                  "we decode (a photo has 1 to about 12); save it again as an ordinary JPEG")
    if layout.whole_frame_buffered and layout.coefficient_bytes > MAX_JPEG_COEFFICIENT_BYTES:
        raise LatentExplorerError(f"{where}: the {what} is a {layout.coding} JPEG of {size} pixels, which needs "
                                  f"{layout.coefficient_bytes / 2**20:,.0f} MB to decode, more than the "
                                  f"{MAX_JPEG_COEFFICIENT_BYTES / 2**20:.0f} MB we allow; save it as a smaller or "
                                  "baseline JPEG")
    if layout.whole_frame_buffered and layout.decoding_work > MAX_JPEG_DECODING_WORK:
        times = layout.decoding_work / MAX_JPEG_DECODING_WORK
        raise LatentExplorerError(f"{where}: the {what} is a {layout.coding} JPEG of {size} pixels whose "
                                  f"{len(layout.scans)} scans ask for {times:.1f} times the decoding work we allow "
                                  "for one picture (a 48-megapixel photo needs two thirds of it); save it again as "
                                  "an ordinary JPEG")
    return layout


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A PNG encoder writes its pixels in chunks of 8 kB (libpng) or more: 50 MB make about 6,400 chunks.
MAX_PNG_CHUNKS = 20_000


def count_png_chunks(data: bytes, limit: int = MAX_PNG_CHUNKS) -> int:
    """The chunks of the PNG in `data` up to IEND or its end, counting no further than limit + 1."""
    pos, count = len(PNG_SIGNATURE), 0
    while pos + 8 <= len(data) and count <= limit:
        length, kind = struct.unpack_from(">I4s", data, pos)
        count += 1
        if kind == b"IEND":
            break
        pos += 12 + length
    return count


def check_decode_cost(data: bytes, where: str, what: str, formats: tuple[str, ...] | None = None) -> None:
    """Refuse, in one LatentExplorerError naming `where`, a JPEG or PNG (among the PIL `formats` it may be read
    as; None: any) whose decoding would cost more than the limits above."""
    if data.startswith(b"\xff\xd8\xff") and (formats is None or "JPEG" in formats):  # PIL's test for a JPEG
        check_jpeg_cost(data, where, what)
    elif data.startswith(PNG_SIGNATURE) and (formats is None or "PNG" in formats):
        if count_png_chunks(data) > MAX_PNG_CHUNKS:
            raise LatentExplorerError(f"{where}: the {what} is a PNG of more than {MAX_PNG_CHUNKS:,} chunks, more "
                                      "than we read (an encoder writes one every 8 kB or more); save it again")
