"""Test helper: hand-written torch.save files (no test module imports another; they share this)."""

from __future__ import annotations

import io
import zipfile


def as_torch_zip(data_pkl: bytes) -> bytes:
    """A zip laid out as torch.save writes one, around a hand-written data.pkl."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()
