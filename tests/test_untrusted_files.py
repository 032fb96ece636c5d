"""Files built to crash, hang or exhaust the server: each is refused with one sentence naming it, and the rest
of the app keeps working. Classes: opcode-level pickles, numeric extremes in every JSON file, latents.npz
contents, special files in place of bundle files, image bombs, impossible BatchNorm statistics."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch_files import as_torch_zip

from training.bundle import LATENTS_FILE, find_bundles, load_bundle, read_config
from training.errors import LatentExplorerError
from training.models.dcgan import DCGANConfig, Generator
from training.untrusted import pickle_scan
from training.untrusted.checks import read_image_rgb
from training.untrusted.importers import load_state_dict

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "explorer" / "app.py")
PAGES = ("views/sample.py", "views/sweep.py", "views/conditions.py", "views/codes.py", "views/directions.py",
         "views/vae_map.py", "views/compare.py", "views/interpolate.py", "views/replay.py", "views/upload.py")


@contextmanager
def no_hang(seconds: int = 20):
    """A special file must be refused at once; if the reader blocks on it, fail instead of hanging the suite."""
    def expired(*_):
        raise TimeoutError(f"still reading after {seconds} s: the reader hung on a special file")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path) -> Path:
    path = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, path)
    return path


# --- pickles that torch.load(weights_only=True) accepts but that crash the interpreter ---------------------------

def nested_key_pickle(depth: int) -> bytes:
    """{((...(0,)...),): 1}: only opcodes weights_only allows; at two million levels hashing the key overflows
    the C stack (SIGSEGV) inside torch.load."""
    return b"\x80\x02}" + b"K\x00" + b"\x85" * depth + b"K\x01s."


HOSTILE_PTH = {
    "zip": lambda: as_torch_zip(nested_key_pickle(2_000_000)),
    "legacy": lambda: nested_key_pickle(2_000_000),
}


@pytest.mark.slow
def test_the_nested_pickle_really_crashes_torch(tmp_path):
    # Without this, the refusals below could mean only that the file was harmless. In a child: it dies by signal.
    file = tmp_path / "bomb.pth"
    file.write_bytes(HOSTILE_PTH["zip"]())
    def usual_stack():  # the 8 MB default of Linux shells; an unlimited stack would only make the crash slower
        import resource
        hard = resource.getrlimit(resource.RLIMIT_STACK)[1]
        soft = 8 << 20 if hard == resource.RLIM_INFINITY else min(8 << 20, hard)
        resource.setrlimit(resource.RLIMIT_STACK, (soft, hard))

    child = subprocess.run([sys.executable, "-c", f"import torch; torch.load({str(file)!r}, weights_only=True)"],
                           capture_output=True, timeout=300, preexec_fn=usual_stack)
    assert child.returncode < 0 or child.returncode > 128, child.returncode


@pytest.mark.parametrize("kind", sorted(HOSTILE_PTH))
def test_nested_pickle_is_refused_before_torch_sees_it(tmp_path, kind):
    file = tmp_path / "netG.pth"
    file.write_bytes(HOSTILE_PTH[kind]())
    with pytest.raises(LatentExplorerError, match="netG.pth.*nests objects more than"):
        load_state_dict(file)


@pytest.mark.slow
def test_nested_pickle_cli_refuses_and_writes_nothing(tmp_path):
    file = tmp_path / "netG.pth"
    file.write_bytes(HOSTILE_PTH["zip"]())
    out = tmp_path / "out"
    child = subprocess.run([sys.executable, "-m", "training", "import-dcgan", str(file), "--out", str(out)],
                           capture_output=True, text=True, cwd=REPO, timeout=300)
    assert child.returncode == 2, (child.returncode, child.stderr[-500:])
    assert "Traceback" not in child.stderr and "nests objects" in child.stderr
    assert not out.exists()


@pytest.mark.parametrize("legacy", [False, True])
def test_real_state_dicts_pass_the_scan(tmp_path, legacy):
    file = tmp_path / "netG.pth"
    state = Generator(DCGANConfig(latent_dim=16, image_size=64, g_width=8, d_width=8)).state_dict()
    torch.save(state, file, _use_new_zipfile_serialization=not legacy)
    pickle_scan.scan_torch_file(file)
    assert set(load_state_dict(file)) == set(state)


def test_pickle_with_too_many_opcodes_is_refused(tmp_path, monkeypatch):
    file = tmp_path / "netG.pth"
    torch.save(Generator(DCGANConfig(latent_dim=16, image_size=64, g_width=8, d_width=8)).state_dict(), file)
    monkeypatch.setattr(pickle_scan, "MAX_OPCODES", 50)
    with pytest.raises(LatentExplorerError, match="more than 50 parts"):
        pickle_scan.scan_torch_file(file)


def test_nested_pickle_upload_leaves_the_server_and_no_file(tmp_path, tiny_bundle, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # the upload page puts its imports under it
    checkpoints = tmp_path / "checkpoints"
    shutil.copytree(tiny_bundle, checkpoints / "toyfaces" / "dcgan")
    monkeypatch.setenv("LATENT_EXPLORER_CHECKPOINTS", str(checkpoints))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("views/upload.py").run()
    at.file_uploader(key="upload_file").set_value(("netG.pth", HOSTILE_PTH["zip"](), "application/octet-stream"))
    at.run()
    assert not at.exception
    assert any("nests objects" in e.value and "netG.pth" in e.value for e in at.error)
    imports = tmp_path / "latent-explorer-imports"
    assert not imports.exists() or list(imports.iterdir()) == []


# --- numeric extremes in every JSON file ------------------------------------------------------------------------

EXTREMES = {
    "5000-digit integer": "1" * 5000,
    "1e400": "1e400",
    "NaN": "NaN",
    "-Infinity": "-Infinity",
    "nesting 200k deep": "[" * 200_000 + "]" * 200_000,
}


def _set_raw(file: Path, key: str, raw: str) -> None:
    """Put `raw` JSON text as the value of a top-level key (json.dumps cannot write most of these)."""
    data = json.loads(file.read_text()) if file.exists() else {}
    data[key] = "@@RAW@@"
    file.write_text(json.dumps(data).replace('"@@RAW@@"', raw))


@pytest.mark.parametrize("name", sorted(EXTREMES))
@pytest.mark.parametrize("file,key", [("config.json", "step"), ("config.json", "prior"),
                                      ("history.json", "loss_g"), ("metrics.json", "fd")])
def test_json_extremes_are_refused_with_the_file_named(bundle_copy, file, key, name):
    _set_raw(bundle_copy / file, key, EXTREMES[name])
    with pytest.raises(LatentExplorerError) as info:
        load_bundle(bundle_copy)
    message = str(info.value)
    assert file in message and len(message) < 400, message


@pytest.mark.slow
def test_json_extremes_in_the_cli_give_one_line(bundle_copy):
    _set_raw(bundle_copy / "history.json", "loss_g", "1" * 5000)
    for command in (["info", str(bundle_copy)], ["evaluate", str(bundle_copy), "--samples", "8", "--no-write"]):
        child = subprocess.run([sys.executable, "-m", "training", *command], capture_output=True, text=True,
                               cwd=REPO, timeout=300)
        assert child.returncode != 0 and "Traceback" not in child.stderr, child.stderr[-800:]
        assert "history.json" in child.stderr


# --- special files in place of bundle files ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["weights.safetensors", "history.json", "metrics.json", LATENTS_FILE])
@pytest.mark.parametrize("special", ["fifo", "dev-zero", "folder"])
def test_special_files_are_refused_without_hanging(bundle_copy, name, special):
    target = bundle_copy / name
    target.unlink(missing_ok=True)
    if special == "fifo":
        os.mkfifo(target)
    elif special == "dev-zero":
        target.symlink_to("/dev/zero")
    else:
        target.mkdir()
    with no_hang(), pytest.raises(LatentExplorerError, match="not a regular file|is a folder|device|FIFO"):
        load_bundle(bundle_copy).latents()


def test_fifo_config_is_not_listed_and_hangs_nothing(tmp_path, bundle_copy):
    root = tmp_path / "root"
    shutil.copytree(bundle_copy, root / "good")
    broken = root / "broken"
    broken.mkdir()
    os.mkfifo(broken / "config.json")
    with no_hang():
        assert find_bundles(root) == [root / "good"]
        with pytest.raises(LatentExplorerError, match="not a regular file|FIFO"):
            read_config(broken)


def as_nobody(work) -> str:
    """Run `work()` in a forked child that has dropped to the unprivileged user `nobody` (root reads every file,
    so a permission test as root proves nothing) and return what it returned, or its exception, as text."""
    import pwd

    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the interpreter and its imports stay root's; only the file accesses are nobody's
        try:
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            found = str(work())
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent as text
            found = f"{type(exc).__name__}: {exc}"
        os.write(write_end, found.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        reported = pipe.read()
    os.waitpid(pid, 0)
    return reported


@pytest.fixture
def open_folder():
    """A folder under /tmp that `nobody` may enter (pytest's own tmp folders are closed to other users)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    base = Path("/tmp") / f"le-perm-{os.getpid()}"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir()
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_unreadable_link_in_checkpoints_hides_nothing(open_folder, bundle_copy):
    """A link into a folder the server may not enter: the scan still lists the other bundles."""
    (open_folder / "root").mkdir(mode=0o755)
    shutil.copytree(bundle_copy, open_folder / "root" / "good")
    (open_folder / "secret" / "inner").mkdir(parents=True)
    (open_folder / "root" / "link").symlink_to(open_folder / "secret" / "inner")
    os.chmod(open_folder / "secret", 0o700)
    assert as_nobody(lambda: [p.name for p in find_bundles(open_folder / "root")]) == "['good']"


def test_unreadable_weights_are_called_unreadable(open_folder, bundle_copy):
    bundle = open_folder / "bundle"
    shutil.copytree(bundle_copy, bundle)
    for item in (bundle, *bundle.rglob("*")):
        item.chmod(0o755 if item.is_dir() else 0o644)
    (bundle / "weights.safetensors").chmod(0o600)

    def load():
        try:
            load_bundle(bundle)
        except LatentExplorerError as exc:
            return str(exc)
    reported = as_nobody(load)
    assert "weights.safetensors: cannot read the weights file (permission denied)" in reported, reported


# --- latents.npz contents ---------------------------------------------------------------------------------------

def _write_npz(bundle: Path, **arrays) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    (bundle / LATENTS_FILE).write_bytes(buffer.getvalue())


def _good_latents(dim: int, n: int = 6) -> dict[str, np.ndarray]:
    return {"codes": np.zeros((n, dim), np.float32), "labels": np.zeros((n, 1), np.int64),
            "attribute_names": np.array(["mystery"]), "indices": np.arange(n, dtype=np.int64)}


LATENT_CHANGES = {
    "label 10**12": ("labels", lambda a: np.full_like(a["labels"], 10**12)),
    "string codes": ("codes", lambda a: np.array([["x"] * a["codes"].shape[1]] * len(a["codes"]))),
    "NaN codes": ("codes", lambda a: np.full_like(a["codes"], np.nan)),
    "wrong width": ("codes", lambda a: np.zeros((len(a["codes"]), 3), np.float32)),
    "index out of range": ("indices", lambda a: np.full_like(a["indices"], 10**9)),
    "negative index": ("indices", lambda a: np.full_like(a["indices"], -1)),
    "labels of the wrong shape": ("labels", lambda a: np.zeros((2, 7), np.int64)),
}


def test_good_latents_load(bundle_copy):
    dim = load_bundle(bundle_copy).latent_dim
    _write_npz(bundle_copy, **_good_latents(dim))
    assert load_bundle(bundle_copy).latents()["codes"].shape == (6, dim)


@pytest.mark.parametrize("change", sorted(LATENT_CHANGES))
def test_hostile_latents_contents_are_refused(bundle_copy, change):
    arrays = _good_latents(load_bundle(bundle_copy).latent_dim)
    key, make = LATENT_CHANGES[change]
    arrays[key] = make(arrays)
    _write_npz(bundle_copy, **arrays)
    with pytest.raises(LatentExplorerError, match=LATENTS_FILE):
        load_bundle(bundle_copy).latents()


def _npy_header(shape: tuple, descr: str) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


@pytest.mark.parametrize("member", [
    ("codes.npy", _npy_header((2**20, 2**20), "|V0")),  # zero-byte items: 2**40 of them "fit" in no bytes
    ("codes.npy", _npy_header((2**20, 2**20), "<U0")),
    ("mystery.npy", _npy_header((2, 2), "<f4") + b"\0" * 16),
])
def test_hostile_npz_members_are_refused(bundle_copy, member):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(*member)
    (bundle_copy / LATENTS_FILE).write_bytes(buffer.getvalue())
    with no_hang(), pytest.raises(LatentExplorerError, match=LATENTS_FILE):
        load_bundle(bundle_copy).latents()


def test_unsupported_zip_method_is_refused(bundle_copy):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr("codes.npy", _npy_header((2, 2), "<f4") + b"\0" * 16)
    (bundle_copy / LATENTS_FILE).write_bytes(buffer.getvalue())
    with pytest.raises(LatentExplorerError, match="compression"):
        load_bundle(bundle_copy).latents()


# --- images and weights -----------------------------------------------------------------------------------------

def test_image_bomb_is_refused_before_decoding(tmp_path):
    from crafted_images import png_claiming

    file = tmp_path / "step_000001.png"
    file.write_bytes(png_claiming(13_000, 13_000))
    with pytest.raises(LatentExplorerError, match="13000x13000 pixels"):
        read_image_rgb(file, "snapshot grid")


def test_negative_batchnorm_variance_is_refused(bundle_copy):
    weights = bundle_copy / "weights.safetensors"
    tensors = load_file(str(weights))
    key = next(k for k in tensors if k.startswith("generator.") and k.endswith("running_var"))
    tensors[key] = -tensors[key].abs() - 1
    save_file(tensors, str(weights))
    with pytest.raises(LatentExplorerError, match="negative variances"):
        load_bundle(bundle_copy)


# --- the app: hostile bundles beside good ones ------------------------------------------------------------------

def test_hostile_bundles_beside_good_ones_leave_every_page_working(tmp_path, tiny_bundle, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from explorer.core import bundles

    root = tmp_path / "checkpoints"
    shutil.copytree(tiny_bundle, root / "toyfaces" / "dcgan")
    good = json.loads((root / "toyfaces/dcgan/config.json").read_text())
    good["name"] = "good dcgan"
    (root / "toyfaces/dcgan/config.json").write_text(json.dumps(good))
    for i, raw in enumerate(EXTREMES.values()):
        hostile = root / "hostile" / f"config{i}"
        shutil.copytree(tiny_bundle, hostile)
        _set_raw(hostile / "config.json", "step", raw)
    for i, raw in enumerate(EXTREMES.values()):  # listed (their config is fine), refused once picked
        hostile = root / "hostile" / f"history{i}"
        shutil.copytree(tiny_bundle, hostile)
        config = dict(good, name=f"hostile history {i}")
        (hostile / "config.json").write_text(json.dumps(config))
        _set_raw(hostile / "history.json", "loss_g", raw)
    monkeypatch.setattr(bundles, "CHECKPOINTS", root)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    names = at.sidebar.selectbox(key="bundle_select").options
    assert "good dcgan" in names and len(names) == 1 + len(EXTREMES)
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        if page in ("views/sample.py", "views/sweep.py", "views/interpolate.py", "views/replay.py"):
            at.sidebar.selectbox(key="bundle_select").set_value("good dcgan").run()
            assert not at.exception and len(at.get("image")) >= 1, page
    at.switch_page("views/sample.py").run()
    at.sidebar.selectbox(key="bundle_select").set_value("hostile history 0").run()
    assert not at.exception and any("history.json" in e.value for e in at.error)


def test_two_bundles_with_one_name_are_both_offered(tmp_path, tiny_bundle, monkeypatch):
    from explorer.core import bundles

    root = tmp_path / "checkpoints"
    for where in ("a/dcgan", "b/dcgan"):
        shutil.copytree(tiny_bundle, root / where)
    monkeypatch.setattr(bundles, "CHECKPOINTS", root)
    offered = bundles.shipped()
    assert len(offered) == 2 and sorted(offered.values()) == [str(root / "a/dcgan"), str(root / "b/dcgan")]
    assert all("dcgan" in name for name in offered)
