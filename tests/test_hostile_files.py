"""Files from outside never run code: a pickle that would create a marker file is refused everywhere we read files."""

from __future__ import annotations

import io
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from training.bundle import LATENTS_FILE, load_bundle, read_config
from training.errors import LatentExplorerError
from training.untrusted.importers import import_tutorial_dcgan, load_state_dict


class Payload:
    """Unpickling this runs `exec`, which creates the marker file: what a hostile file would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "PWNED"


def hostile_pickle(marker: Path, protocol: int = pickle.HIGHEST_PROTOCOL) -> bytes:
    return pickle.dumps({"main.0.weight": Payload(marker)}, protocol=protocol)


def hostile_torch_save(marker: Path) -> bytes:
    buffer = io.BytesIO()
    torch.save({"main.0.weight": Payload(marker)}, buffer)  # zip format, data.pkl holds the payload
    return buffer.getvalue()


def test_the_payload_really_is_hostile(tmp_path):
    # Without this, a refusal below could mean only that the payload was broken.
    control = tmp_path / "control"
    pickle.loads(hostile_pickle(control))
    assert control.read_text() == "pwned"
    control.unlink()
    torch.load(io.BytesIO(hostile_torch_save(control)), weights_only=False)
    assert control.exists()


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path) -> Path:
    path = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, path)
    return path


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_pickle_as_weights_is_refused(bundle_copy, marker, protocol):
    (bundle_copy / "weights.safetensors").write_bytes(hostile_pickle(marker, protocol))
    with pytest.raises(LatentExplorerError, match="weights.safetensors") as info:
        load_bundle(bundle_copy)
    assert "truncated or corrupt" in str(info.value)
    assert not marker.exists()


def test_torch_zip_as_weights_is_refused(bundle_copy, marker):
    (bundle_copy / "weights.safetensors").write_bytes(hostile_torch_save(marker))
    with pytest.raises(LatentExplorerError, match="weights.safetensors"):
        load_bundle(bundle_copy, with_training_networks=True)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["config.json", "history.json", "metrics.json"])
@pytest.mark.parametrize("protocol", [0, pickle.HIGHEST_PROTOCOL])
def test_pickle_as_json_is_refused(bundle_copy, marker, name, protocol):
    (bundle_copy / name).write_bytes(hostile_pickle(marker, protocol))
    with pytest.raises(LatentExplorerError, match=name) as info:
        load_bundle(bundle_copy)
    assert "not valid JSON" in str(info.value)
    if name == "config.json":
        with pytest.raises(LatentExplorerError, match=name):
            read_config(bundle_copy)
    assert not marker.exists()


@pytest.mark.parametrize("make", [hostile_torch_save, hostile_pickle,
                                  lambda m: hostile_pickle(m, protocol=0)],
                         ids=["torch-zip", "legacy-pickle", "pickle-protocol-0"])
def test_pickle_as_pth_upload_is_refused(tmp_path, marker, make):
    upload = tmp_path / "upload.pth"
    upload.write_bytes(make(marker))
    with pytest.raises(LatentExplorerError) as info:
        import_tutorial_dcgan(upload, tmp_path / "out", display_filename="netG.pth")
    assert "netG.pth" in str(info.value)
    assert not marker.exists()
    with pytest.raises(LatentExplorerError):
        load_state_dict(upload)
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_pickle_in_upload_page_is_refused(tmp_path, marker, tiny_bundle, monkeypatch):
    from streamlit.testing.v1 import AppTest

    checkpoints = tmp_path / "checkpoints"
    shutil.copytree(tiny_bundle, checkpoints / "toyfaces" / "dcgan")
    monkeypatch.setenv("LATENT_EXPLORER_CHECKPOINTS", str(checkpoints))
    app = Path(__file__).resolve().parent.parent / "explorer" / "app.py"
    at = AppTest.from_file(str(app), default_timeout=120)
    at.run()
    at.switch_page("views/upload.py").run()
    at.file_uploader(key="upload_file").set_value(("netG.pth", hostile_torch_save(marker),
                                                   "application/octet-stream")).run()
    assert not at.exception
    assert any("never unpickles" in e.value and "netG.pth" in e.value for e in at.error)
    assert not marker.exists()


def _npz_with_object_array(marker: Path) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, codes=np.zeros((2, 3), np.float32), labels=np.array([Payload(marker)], dtype=object))
    return buffer.getvalue()


def _npz_member_is_pickle(marker: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("codes.npy", hostile_pickle(marker))
    return buffer.getvalue()


@pytest.mark.parametrize("make", [
    _npz_with_object_array,
    _npz_member_is_pickle,
    hostile_pickle,  # latents.npz that is a bare pickle
    lambda m: _npz_with_object_array(m)[:200],  # truncated zip
], ids=["object-array", "member-is-pickle", "bare-pickle", "truncated"])
def test_hostile_latents_are_refused(bundle_copy, marker, make):
    (bundle_copy / LATENTS_FILE).write_bytes(make(marker))
    bundle = load_bundle(bundle_copy)  # latents are read on demand, by the pages that need them
    with pytest.raises(LatentExplorerError, match=LATENTS_FILE):
        bundle.latents()
    assert not marker.exists()


def test_latents_zip_bomb_is_refused_before_decompressing(bundle_copy, monkeypatch):
    # Zeros compress about 1000:1, so a small npz can hold gigabytes; the limit is checked on the sizes the archive
    # declares, before anything is decompressed. A 1 MiB limit stands in for the real one to keep the test fast.
    monkeypatch.setattr("training.bundle.loaded.MAX_LATENTS_BYTES", 2**20)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, codes=np.zeros(2**20, np.float32))
    assert len(buffer.getvalue()) < 2**15
    (bundle_copy / LATENTS_FILE).write_bytes(buffer.getvalue())
    with pytest.raises(LatentExplorerError, match="too large"):
        load_bundle(bundle_copy).latents()


@pytest.mark.parametrize("shape", [(2**33,), (2**40, 2**20)])
def test_latents_header_claiming_more_than_the_file_holds_is_refused(bundle_copy, shape):
    # numpy would try to allocate the declared shape first (MemoryError, or gigabytes of address space).
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
        archive.writestr("codes.npy", header.getvalue() + bytes(64))
    (bundle_copy / LATENTS_FILE).write_bytes(buffer.getvalue())
    with pytest.raises(LatentExplorerError, match=LATENTS_FILE):
        load_bundle(bundle_copy).latents()


def test_valid_latents_still_load(bundle_copy):
    dim = load_bundle(bundle_copy).latent_dim
    codes = np.arange(2 * dim, dtype=np.float32).reshape(2, dim)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, codes=codes, attribute_names=np.array(["hair", "eyes"]))
    (bundle_copy / LATENTS_FILE).write_bytes(buffer.getvalue())
    latents = load_bundle(bundle_copy).latents()
    assert np.array_equal(latents["codes"], codes) and list(latents["attribute_names"]) == ["hair", "eyes"]


@pytest.mark.parametrize("name", ["config.json", "history.json"])
def test_huge_json_is_refused_before_reading(bundle_copy, name):
    # A sparse file: 200 MB on paper, nothing written, so the test costs nothing.
    with (bundle_copy / name).open("r+b") as handle:
        handle.truncate(200 * 2**20)
    with pytest.raises(LatentExplorerError, match=f"{name}.*too large"):
        load_bundle(bundle_copy)
