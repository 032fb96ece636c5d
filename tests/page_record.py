"""What a page shows, as data: run one page of the app headless (AppTest) on one bundle with its default controls and
record its texts, metrics, tables, plots and hashes of the images it hands to st.image. Two records compare equal
exactly when the page shows the same thing; tests/test_page_snapshots.py keeps the records of every shipped bundle.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "explorer" / "app.py")
TEXT_KINDS = ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success")
# Folders that change from run to run (an upload's private temporary folder).
_TEMP = re.compile(r"/tmp/[^\s'\"`]*?latent-explorer-imports/import-[^/\s'\"`]+")


def _digest(data: bytes | str) -> str:
    return hashlib.sha256(data if isinstance(data, bytes) else data.encode()).hexdigest()[:16]


def _clean(text: str) -> str:
    return _TEMP.sub("<upload folder>", str(text)).replace(str(REPO), "<repo>")


class MediaRecorder:
    """Hashes of everything the app stores as media (st.image's bytes, after Streamlit encodes them), in order."""

    def __init__(self) -> None:
        self.images: list[str] = []
        self._original = MemoryMediaFileStorage.load_and_get_id

    def __enter__(self) -> MediaRecorder:
        recorder, original = self, self._original

        def load_and_get_id(storage, path_or_data, mimetype, kind, filename=None):
            data = path_or_data if isinstance(path_or_data, bytes) else Path(path_or_data).read_bytes()
            recorder.images.append(f"{mimetype}:{_digest(data)}")
            return original(storage, path_or_data, mimetype, kind, filename)

        MemoryMediaFileStorage.load_and_get_id = load_and_get_id
        return self

    def __exit__(self, *exc) -> None:
        MemoryMediaFileStorage.load_and_get_id = self._original


def _rounded(value):
    """A plot's numbers to 6 significant digits: what a chart shows, without the last bits a BLAS call's thread
    count decides (a PCA map's coordinates differed there between two runs of the same suite)."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict) and "bdata" in value and "dtype" in value:  # plotly's base64 typed array
        import base64

        import numpy as np

        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return _rounded(array.astype(float).tolist()) if array.dtype.kind == "f" else array.tolist()
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _frame(value) -> str:
    buffer = io.StringIO()
    value.to_csv(buffer, index=False)
    return _clean(buffer.getvalue())


def describe(at: AppTest, images: list[str]) -> dict:
    """The record of the last run: every element a reader sees, in the page's order within each kind."""
    record: dict = {kind: [_clean(e.value) for e in getattr(at, kind)] for kind in TEXT_KINDS}
    record["sidebar_caption"] = [_clean(e.value) for e in at.sidebar.caption]
    record["metric"] = [[m.label, m.value, m.delta, _clean(m.proto.help)] for m in at.metric]
    record["dataframe"] = [_frame(d.value) for d in at.dataframe]
    record["plotly_chart"] = [_digest(json.dumps(_rounded(json.loads(p.proto.spec)), sort_keys=True))
                              for p in at.get("plotly_chart")]
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
