"""What a page shows, as data: run one page of the app headless (AppTest) on one bundle with its default controls and
record its texts, metrics, tables, plots and a thumbnail of each image it hands to st.image. `differences` compares
two records the way a reader would: words exactly, numbers within their last shown digit, plotted numbers within a
thousandth of their series' size and images within a few 8-bit levels, so a record made on one machine holds on
another whose CPU kernels round differently. tests/test_page_snapshots.py keeps the records of every shipped bundle.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import re
from pathlib import Path

import numpy as np
from PIL import Image
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "explorer" / "app.py")
TEXT_KINDS = ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success")
# Folders that change from run to run (an upload's private temporary folder).
_TEMP = re.compile(r"/tmp/[^\s'\"`]*?latent-explorer-imports/import-[^/\s'\"`]+")
# An image is kept as a thumbnail this many pixels on its long side: a changed sample in a grid of 64 still moves
# its cells by tens of levels, while kernels that round differently move them by a level at most.
THUMBNAIL_SIDE = 32
IMAGE_MAX_LEVELS = 8  # largest difference allowed in any thumbnail pixel, in 8-bit levels
IMAGE_MEAN_LEVELS = 1.0  # and on average over the thumbnail
# A plotted series longer than this is kept as this many bucket means (and its min and max).
SERIES_POINTS = 64
PLOT_TOLERANCE = 1e-3  # of the largest magnitude in the series
# A number as a reader sees one: its sign when it stands alone ("-0.00"), not digits inside a word ("AVX512", "x2").
_NUMBER = re.compile(r"(?<![\w.])[-\u2212]?\d+(?:\.\d+)?")
_COLOUR = re.compile(r"#[0-9a-fA-F]{3,8}|rgba?\([\d., ]+\)")  # a chart's colours are part of its form


def _digest(data: bytes | str) -> str:
    return hashlib.sha256(data if isinstance(data, bytes) else data.encode()).hexdigest()[:16]


def _clean(text: str) -> str:
    return _TEMP.sub("<upload folder>", str(text)).replace(str(REPO), "<repo>")


def image_record(data: bytes, mimetype: str) -> dict:
    """An image as its type, size and a box-filtered thumbnail (base64 of its 8-bit pixels, row by row)."""
    with Image.open(io.BytesIO(data)) as image:
        image = image.convert("L" if image.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB")
        width, height = image.size
        scale = THUMBNAIL_SIDE / max(width, height)
        side = (max(1, round(width * scale)), max(1, round(height * scale))) if scale < 1 else (width, height)
        thumbnail = image.resize(side, Image.Resampling.BOX)
    return {"type": mimetype, "size": [width, height], "mode": thumbnail.mode, "thumbnail_size": list(side),
            "thumbnail": base64.b64encode(thumbnail.tobytes()).decode()}


def _pixels(record: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(record["thumbnail"]), dtype=np.uint8).astype(np.int16)


class MediaRecorder:
    """Everything the app stores as media (st.image's bytes, after Streamlit encodes them), in order."""

    def __init__(self) -> None:
        self.images: list[dict] = []
        self._original = MemoryMediaFileStorage.load_and_get_id

    def __enter__(self) -> MediaRecorder:
        recorder, original = self, self._original

        def load_and_get_id(storage, path_or_data, mimetype, kind, filename=None):
            data = path_or_data if isinstance(path_or_data, bytes) else Path(path_or_data).read_bytes()
            if mimetype.startswith("image/"):
                recorder.images.append(image_record(data, mimetype))
            else:
                recorder.images.append({"type": mimetype, "sha256": _digest(data)})
            return original(storage, path_or_data, mimetype, kind, filename)

        MemoryMediaFileStorage.load_and_get_id = load_and_get_id
        return self

    def __exit__(self, *exc) -> None:
        MemoryMediaFileStorage.load_and_get_id = self._original


def _rounded(values: list[float]) -> list[float | None]:
    """6 significant digits, NaN as None (JSON has no NaN)."""
    return [None if not math.isfinite(v) else float(f"{v:.6g}") for v in values]


def _series(values: list[float]) -> list[float | None]:
    if len(values) <= SERIES_POINTS:
        return _rounded(values)
    array = np.asarray(values, dtype=float)
    with np.errstate(all="ignore"):
        means = [float(np.nanmean(b)) if np.isfinite(b).any() else math.nan
                 for b in np.array_split(array, SERIES_POINTS)]
        ends = [float(np.nanmin(array)), float(np.nanmax(array))] if np.isfinite(array).any() else [math.nan] * 2
    return _rounded(means + ends)


def chart_record(spec: dict) -> dict:
    """A plotly chart as a digest of its form (keys, words, series lengths, the theme's template), its numbers by
    path (long series as bucket means) and its strings that hold digits (hover templates, axis titles) by path."""
    numbers: dict[str, list] = {}
    texts: dict[str, str] = {}

    def walk(value, path: str):
        if path == "layout.template":  # the theme: constant, kept whole in the form
            return value
        if isinstance(value, dict) and "bdata" in value and "dtype" in value:  # plotly's base64 typed array
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
            numbers[path] = _series(array.astype(float).ravel().tolist())
            return ["series", value["dtype"], list(value.get("shape", [len(array)]))]
        if isinstance(value, dict):
            return {key: walk(item, f"{path}.{key}" if path else key) for key, item in value.items()}
        if isinstance(value, list) and value and all(
                v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in value):
            numbers[path] = _series([math.nan if v is None else float(v) for v in value])
            return ["series", len(value)]
        if isinstance(value, list):
            return [walk(item, f"{path}.{i}") for i, item in enumerate(value)]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            numbers[path] = _rounded([float(value)])
            return "<number>"
        if isinstance(value, str) and any(c.isdigit() for c in value) and not _COLOUR.fullmatch(value):
            texts[path] = _clean(value)
            return "<text>"
        return value

    form = walk(spec, "")
    return {"form": _digest(json.dumps(form, sort_keys=True)), "numbers": numbers, "texts": texts}


def _frame(value) -> str:
    buffer = io.StringIO()
    value.to_csv(buffer, index=False)
    return _clean(buffer.getvalue())


def describe(at: AppTest, images: list[dict]) -> dict:
    """The record of the last run: every element a reader sees, in the page's order within each kind."""
    record: dict = {kind: [_clean(e.value) for e in getattr(at, kind)] for kind in TEXT_KINDS}
    record["sidebar_caption"] = [_clean(e.value) for e in at.sidebar.caption]
    record["metric"] = [[m.label, m.value, m.delta, _clean(m.proto.help)] for m in at.metric]
    record["dataframe"] = [_frame(d.value) for d in at.dataframe]
    record["plotly_chart"] = [chart_record(json.loads(p.proto.spec)) for p in at.get("plotly_chart")]
    record["images"] = list(images)
    record["exception"] = [str(e.value) for e in at.exception]
    return record


def record_page(page: str, bundle_path: str | None, timeout: int = 600, upload: tuple | None = None) -> dict:
    """Open `page` (a path such as views/sample.py) with `bundle_path` selected and its default controls; an upload
    (name, bytes) is given to the upload page's file box."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    if bundle_path is not None:
        at.session_state["bundle_path"] = bundle_path
    at.switch_page(page)
    with MediaRecorder() as media:
        at.run()
        if upload is not None:
            media.images.clear()
            name, content = upload
            at.file_uploader(key="upload_file").set_value((name, content, "application/octet-stream")).run()
    return describe(at, media.images)


# Comparing two records.

def _value(token: str) -> float:
    return float(token.replace("\u2212", "-"))


def _last_digit(token: str) -> float:
    return 10.0 ** -(len(token) - token.index(".") - 1) if "." in token else 1.0


def text_difference(shown: str, want: str) -> str | None:
    """None where the two texts read the same: equal words, and each number within one unit of its last shown digit
    (a value on a rounding boundary may round either way on another machine); else what differs."""
    if shown == want:
        return None
    shown_words, want_words = _NUMBER.split(shown), _NUMBER.split(want)
    if shown_words != want_words:
        return f"{shown!r} != {want!r}"
    for a, b in zip(_NUMBER.findall(shown), _NUMBER.findall(want)):
        if abs(_value(a) - _value(b)) > max(_last_digit(a), _last_digit(b)) * 1.0001:
            return f"{a} != {b} in {want!r}"
    return None


def _texts_difference(shown: list, want: list, where: str) -> str | None:
    if len(shown) != len(want):
        return f"{where}: {len(shown)} shown, {len(want)} recorded: {shown!r}"
    for i, (a, b) in enumerate(zip(shown, want)):
        if isinstance(b, list):
            problem = _texts_difference(a, b, f"{where}[{i}]")
        else:
            problem = text_difference(str(a), str(b)) if (a is None) == (b is None) else f"{a!r} != {b!r}"
            problem = problem and f"{where}[{i}]: {problem}"
        if problem:
            return problem
    return None


def _series_difference(shown: list, want: list) -> str | None:
    if len(shown) != len(want):
        return f"{len(shown)} numbers, {len(want)} recorded"
    if [v is None for v in shown] != [v is None for v in want]:
        return "missing values (NaN) at other places"
    pairs = [(a, b) for a, b in zip(shown, want) if b is not None]
    scale = max([abs(b) for _, b in pairs], default=0.0)
    for a, b in pairs:
        if abs(a - b) > PLOT_TOLERANCE * scale:
            return f"{a} != {b} (series size {scale:g})"
    return None


def chart_difference(shown: dict, want: dict) -> str | None:
    if shown["form"] != want["form"]:
        return "its form changed (keys, words or series lengths)"
    if sorted(shown["texts"]) != sorted(want["texts"]) or sorted(shown["numbers"]) != sorted(want["numbers"]):
        return "its numbers or texts sit at other places"
    for path, text in want["texts"].items():
        problem = text_difference(shown["texts"][path], text)
        if problem:
            return f"{path}: {problem}"
    for path, series in want["numbers"].items():
        problem = _series_difference(shown["numbers"][path], series)
        if problem:
            return f"{path}: {problem}"
    return None


def image_difference(shown: dict, want: dict) -> str | None:
    if {k: v for k, v in shown.items() if k != "thumbnail"} != {k: v for k, v in want.items() if k != "thumbnail"}:
        return f"{shown.get('type')} {shown.get('size')} != recorded {want.get('type')} {want.get('size')}"
    if "thumbnail" not in want:
        return None
    gap = np.abs(_pixels(shown) - _pixels(want))
    if gap.max() > IMAGE_MAX_LEVELS or gap.mean() > IMAGE_MEAN_LEVELS:
        return f"pixels differ by up to {gap.max()} levels ({gap.mean():.2f} on average)"
    return None


def differences(shown: dict, want: dict) -> list[str]:
    """What a reader would see differ between two records (empty when none), one line per element."""
    problems = []
    for part, recorded in want.items():
        now = shown.get(part, [])
        if part == "plotly_chart" or part == "images":
            if len(now) != len(recorded):
                problems.append(f"{part}: {len(now)} shown, {len(recorded)} recorded")
                continue
            compare = chart_difference if part == "plotly_chart" else image_difference
            problems += [f"{part}[{i}]: {p}" for i, (a, b) in enumerate(zip(now, recorded)) if (p := compare(a, b))]
        elif part == "exception":
            if now != recorded:
                problems.append(f"exception: {now!r}")
        else:
            problem = _texts_difference(now, recorded, part)
            if problem:
                problems.append(problem)
    return problems
