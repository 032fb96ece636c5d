"""Every page under extreme and invalid input (AppTest): a clear message on the page, never a traceback, and the
app stays usable afterwards. Bundles are tiny copies in a temporary checkpoints folder."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from crafted_images import png_claiming
from streamlit.testing.v1 import AppTest

from explorer.core import bundles
from training.models.dcgan import DCGANConfig, Generator

APP = str(Path(__file__).resolve().parent.parent / "explorer" / "app.py")
PAGES = ("views/sample.py", "views/sweep.py", "views/interpolate.py", "views/replay.py", "views/upload.py")


@pytest.fixture
def root(tmp_path, tiny_bundle, monkeypatch) -> Path:
    """checkpoints/toyfaces/dcgan (named "tiny dcgan") and the app pointed at it."""
    root = tmp_path / "checkpoints"
    add_bundle(root, tiny_bundle, "toyfaces/dcgan", "tiny dcgan")
    monkeypatch.setattr(bundles, "CHECKPOINTS", root)
    return root


def add_bundle(root: Path, original: Path, where: str, display: str, **dataset) -> Path:
    path = root / where
    shutil.copytree(original, path)
    config = json.loads((path / "config.json").read_text())
    config["name"] = display
    config["dataset"].update(dataset)
    (path / "config.json").write_text(json.dumps(config))
    return path


def start(page: str = "views/sample.py") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    if page != "views/sample.py":
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def messages(at, kind: str) -> str:
    return "\n".join(str(e.value) for e in getattr(at, kind))


def assert_usable(at, images: int = 1) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("image")) >= images


def test_sampling_page_extremes(root):
    at = start()
    for kind, key, value in (("slider", "mean", 20.0), ("slider", "mean", -20.0), ("slider", "std", 5.0),
                             ("slider", "n", 128), ("slider", "n", 1), ("number_input", "seed", 2**31 - 1)):
        getattr(at, kind)(key=key).set_value(value).run()
        assert_usable(at)
    assert "at least 2 samples" in messages(at, "warning")  # n = 1 is explained, not an error
    at.slider(key="std").set_value(0.0).run()
    assert not at.exception and "std > 0" in messages(at, "error")
    at.slider(key="std").set_value(1.0).run()
    at.radio(key="kind").set_value("Uniform").run()
    for low, high in ((3.0, 3.0), (10.0, -10.0)):
        at.slider(key="low").set_value(low).run()
        at.slider(key="high").set_value(high).run()
        assert not at.exception and "low < high" in messages(at, "error")
        assert len(at.get("image")) == 0  # no picture from a distribution that does not exist
    at.slider(key="low").set_value(-10.0).run()
    at.slider(key="high").set_value(10.0).run()
    assert_usable(at)
    assert not at.error
    # Out-of-range seeds (only a forged message can send them) fall back to the last valid value.
    for seed in (-5, 2**40):
        at.number_input(key="seed").set_value(seed).run()
        assert_usable(at)
        assert 0 <= at.number_input(key="seed").value <= 2**31 - 1


@pytest.mark.xfail(strict=True, raises=(ValueError, OverflowError, AssertionError),
                   reason="Streamlit 1.67 turns an integer number_input's value into int before any page code runs "
                          "(NumberInputSerde.deserialize), so NaN/inf raise inside Streamlit. A browser sends int64 "
                          "for these inputs and cannot produce them; tests/test_loadtest.py shows that a forged NaN "
                          "breaks only the tab that sent it.")
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_in_integer_seed_inputs(root, value):
    at = start()
    at.number_input(key="seed").set_value(value).run()
    assert not at.exception


def test_sweep_page_extremes(root):
    at = start("views/sweep.py")
    at.slider(key="sweep_range").set_value((-20.0, 20.0)).run()
    assert_usable(at)
    assert len(at.dataframe[0].value) == 21
    at.select_slider(key="sweep_step").set_value(0.5).run()  # 81 rows
    assert not at.exception and "too many" in messages(at, "error")
    for means in ((5.0, 5.0), (20.0, 20.0), (-20.0, -20.0)):  # a single row
        at.slider(key="sweep_range").set_value(means).run()
        assert_usable(at)
        assert list(at.dataframe[0].value["mean"]) == [means[0]]
    for std, shown in ((0.1, 2), (3.0, 12)):
        at.slider(key="sweep_std").set_value(std).run()
        at.slider(key="sweep_shown").set_value(shown).run()
        assert_usable(at)
    assert not at.error


def test_interpolation_page_extremes(root):
    at = start("views/interpolate.py")
    at.number_input(key="interp_seed_b").set_value(0).run()  # both ends the same code
    assert_usable(at)
    assert "same seed" in messages(at, "warning")
    for seed, steps in ((2**31 - 1, 3), (2**31 - 1, 12)):
        at.number_input(key="interp_seed_b").set_value(seed).run()
        at.slider(key="interp_steps").set_value(steps).run()
        assert_usable(at)
    assert not at.error and not at.warning


def test_training_replay_extremes_and_dataset_paths(root, tmp_path, tiny_bundle):
    celeba = add_bundle(root, tiny_bundle, "celeba/dcgan", "celeba model", name="celeba",
                        source={"name": "celeba", "path": str(tmp_path / "gone")})
    (root / "toyfaces/dcgan/snapshots/step_000002.png").write_bytes(b"not a png")
    (root / "toyfaces/dcgan/snapshots/step_000000.png").write_bytes(png_claiming(40_000, 40_000))
    at = start("views/replay.py")
    at.sidebar.selectbox(key="bundle_select").set_value("tiny dcgan").run()
    for step in (2, 0):  # garbage, then a decompression bomb (1.6 gigapixels declared in 60 bytes)
        at.select_slider(key="replay_step").set_value(step).run()
        assert not at.exception and f"Cannot show the snapshot of step {step}" in messages(at, "warning")
    at.select_slider(key="replay_step").set_value(4).run()
    for window in (2, 500):
        at.slider(key="replay_window").set_value(window).run()
        assert_usable(at)
    at.checkbox(key="replay_smooth").uncheck().run()
    assert_usable(at)

    at.sidebar.selectbox(key="bundle_select").set_value("celeba model").run()
    assert_usable(at)  # the generated half still shows
    assert "not shipped with the app" in messages(at, "info")
    assert "LATENT_EXPLORER_CELEBA_ROOT" in messages(at, "info") and at.sidebar.text_input(key="data_root")
    a_file = tmp_path / "a-file.txt"
    a_file.write_text("x")
    empty = tmp_path / "empty"
    empty.mkdir()
    for typed, expected in ((str(tmp_path / "no" / "such" / "folder"), "no such folder"), (str(a_file), "not a folder"),
                            (str(empty), "list_attr_celeba"), ("   ", "not shipped with the app"),
                            ("\x00", "no such folder")):
        at.sidebar.text_input(key="data_root").set_value(typed).run()
        assert_usable(at)
        assert expected in messages(at, "info"), typed
    # One setting for every page: a page without the box (sampling) does not make the app forget it.
    at.sidebar.text_input(key="data_root").set_value(str(empty)).run()
    at.switch_page("views/sample.py").run()
    at.switch_page("views/replay.py").run()
    assert at.sidebar.text_input(key="data_root").value == str(empty) and "list_attr_celeba" in messages(at, "info")
    # The toyfaces model needs no folder: it neither asks for one nor reads the one typed for CelebA.
    at.sidebar.selectbox(key="bundle_select").set_value("tiny dcgan").run()
    assert_usable(at, images=2)  # real and generated
    assert "No real images" not in messages(at, "info") and len(at.sidebar.text_input) == 0
    assert celeba.exists()


def _saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def test_upload_page_bad_files_then_a_good_one(root):
    at = start("views/upload.py")
    torch.manual_seed(0)
    good = _saved(Generator(DCGANConfig(g_width=4)).state_dict())
    for name, content, expected in (
        ("empty.pth", b"", "empty"),
        ("noise.pth", bytes(range(256)) * 4, "not a file written by torch.save"),
        ("truncated.pth", good[: len(good) // 2], "truncated or damaged"),
        ("picture.pth", b"\x89PNG\r\n\x1a\n" + bytes(64), "image"),
        ("tensor.pth", _saved(torch.zeros(3)), "single tensor"),
        ("nan.pth", _saved({k: v.fill_(float("nan")) if v.is_floating_point() else v
                            for k, v in Generator(DCGANConfig(g_width=4)).state_dict().items()}), "NaN"),
    ):
        at.file_uploader(key="upload_file").set_value((name, content, "application/octet-stream")).run()
        assert not at.exception, name
        assert expected in messages(at, "error") and name in messages(at, "error"), (name, messages(at, "error"))
    at.file_uploader(key="upload_file").set_value(("netG.pth", good, "application/octet-stream")).run()
    assert_usable(at)
    assert not at.error and "nz = 100, ngf = 4" in messages(at, "success")


def test_bundle_deleted_while_the_app_runs(root, tiny_bundle):
    second = add_bundle(root, tiny_bundle, "toyfaces/second", "second model")
    parked = root.parent / "parked"
    at = start()
    at.sidebar.selectbox(key="bundle_select").set_value("second model").run()
    assert_usable(at)
    shutil.move(second, parked)  # deleted (or moved) by someone else while the page is open
    at.run()
    assert_usable(at)
    assert "is gone" in messages(at, "warning") and "tiny dcgan" in messages(at, "warning")
    assert at.sidebar.selectbox(key="bundle_select").value == "tiny dcgan"
    for page in PAGES[1:4]:  # every page keeps working on the model that is left
        at.switch_page(page).run()
        assert_usable(at)

    only = root / "toyfaces" / "dcgan"
    shutil.move(only, root.parent / "parked-too")  # now nothing is left
    at.switch_page("views/sample.py").run()
    assert not at.exception and "No model bundles found" in messages(at, "error")
    shutil.move(root.parent / "parked-too", only)
    shutil.move(parked, second)  # restored
    at.run()
    assert_usable(at)
    at.sidebar.selectbox(key="bundle_select").set_value("second model").run()
    assert_usable(at)
    assert not at.error and not at.warning


def test_corrupt_bundles_among_good_ones(root, tiny_bundle):
    broken_weights = add_bundle(root, tiny_bundle, "toyfaces/broken", "broken weights")
    (broken_weights / "weights.safetensors").write_bytes(b"\x00" * 100)
    broken_config = add_bundle(root, tiny_bundle, "toyfaces/unreadable", "unreadable")
    (broken_config / "config.json").write_text("{not json")
    at = start()
    picker = at.sidebar.selectbox(key="bundle_select")
    assert set(picker.options) == {"tiny dcgan", "broken weights"}  # a readable config is listed
    assert any("unreadable" in e.label for e in at.sidebar.expander)  # the other one is named, not hidden
    picker.set_value("broken weights").run()
    for page in PAGES[:4]:
        at.switch_page(page).run()
        assert not at.exception, page
        assert "Cannot open this model" in messages(at, "error") and "weights.safetensors" in messages(at, "error")
    at.sidebar.selectbox(key="bundle_select").set_value("tiny dcgan").run()
    assert_usable(at)
    assert not at.error


@pytest.mark.parametrize("state", ["empty", "missing"])
def test_no_bundles_at_all(tmp_path, monkeypatch, state):
    root = tmp_path / "checkpoints"
    if state == "empty":
        root.mkdir()
    monkeypatch.setattr(bundles, "CHECKPOINTS", root)
    at = start()
    for page in PAGES[:4]:
        at.switch_page(page).run()
        assert not at.exception, page
        assert "No model bundles found" in messages(at, "error") and str(root) in messages(at, "error")
    at.switch_page("views/upload.py").run()  # importing a generator is the way out, and it works
    assert not at.exception and not at.error
