"""Bring your own generator: a student's uploaded state dict imported into a private folder as a bundle. No
Streamlit here; the page adds the bundle to the session's models."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from training.errors import LatentExplorerError
from training.importers import import_tutorial_dcgan

EXTENSIONS = ("pth", "pt", "pkl")  # many courses name their torch.save files .pkl


def import_root() -> Path:
    """Where imports live: under the temporary folder, as it is when the upload arrives."""
    return Path(tempfile.gettempdir()) / "latent-explorer-imports"


@dataclass(frozen=True)
class ImportResult:
    """An import that worked (its bundle folder, and the name the app lists it under) or why it did not."""

    folder: str | None = None
    error: str | None = None
    name: str | None = None


def import_upload(name: str, data: bytes, limit_mb: int) -> ImportResult:
    """Write the upload to a private temp folder and import it there; nothing of a failed upload stays."""
    if len(data) > limit_mb * 1024 * 1024:
        return ImportResult(error=f"{name} is {len(data) / 2**20:.0f} MB, over this server's {limit_mb} MB limit "
                                  "(server.maxUploadSize in .streamlit/config.toml)")
    root = import_root()
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="import-", dir=root))
    upload = folder / "upload.pth"
    try:
        upload.write_bytes(data)
        out = import_tutorial_dcgan(upload, folder / "bundle", display_filename=name)
    except LatentExplorerError as exc:
        return ImportResult(error=str(exc))
    except Exception as exc:  # torch's own errors on a file no check foresaw: one student's upload, not a crash
        return ImportResult(error=f"{name}: cannot be read as a PyTorch state dict ({type(exc).__name__})")
    finally:
        upload.unlink(missing_ok=True)
        if not (folder / "bundle" / "config.json").exists():
            shutil.rmtree(folder, ignore_errors=True)  # nothing of a failed upload stays on the server
    return ImportResult(folder=str(out))
