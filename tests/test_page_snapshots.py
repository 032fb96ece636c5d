"""Every page shows the same thing on every shipped bundle as the recorded snapshot: the same texts, numbers, tables,
plots and (by hash) images, for the default controls. The snapshots in tests/golden/pages.json were first recorded
before the explorer's code was reorganised (and proved it unchanged), then again when the CelebA VAE and
conditional GAN were shipped and the VAE vs GAN page gained its intervals, and again when the app's generators
moved to channels-last memory order (image hashes and the sweep's plotted numbers changed in the last bits: 4 of
842,700 grid bytes one level apart on the toyfaces DCGAN; every text, number and table stayed equal); a change
that alters what a page shows fails here.

Record again (only when a page is meant to change): `python tests/test_page_snapshots.py --record`.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from page_record import REPO, record_page  # noqa: E402

GOLDEN = Path(__file__).resolve().parent / "golden" / "pages.json"
CHECKPOINTS = REPO / "checkpoints"
GENERATORS = ("toyfaces/dcgan", "toyfaces/vae", "toyfaces/cgan", "celeba/dcgan", "celeba/vae", "celeba/cgan",
              "anime/dcgan", "anime/vae", "anime/cgan", "fashion-mnist/cgan", "fashion-mnist/vae")
# The pages as they were recorded (the training replay was then views/training.py, and one attributes page held
# what are now three: conditions, codes and directions).
PAGES = ("sample", "sweep", "attributes", "vae_map", "compare", "interpolate", "training")
PAGE_FILES = {"sample": "views/sample.py", "sweep": "views/sweep.py", "vae_map": "views/vae_map.py",
              "compare": "views/compare.py", "interpolate": "views/interpolate.py", "training": "views/replay.py",
              "upload": "views/upload.py"}
ATTRIBUTE_PAGES = {"cgan": "views/conditions.py", "infogan": "views/codes.py", "dcgan": "views/directions.py",
                   "vae": "views/directions.py"}
UPLOAD = "upload|netG.pth"
ENVIRONMENT_KEY = "environment"


def page_file(page: str, bundle: str) -> str:
    if page == "attributes":
        return ATTRIBUTE_PAGES[bundle.split("/")[1]]
    return PAGE_FILES[page]


def expected(key: str, recorded: dict) -> dict:
    """What the page must show now: the recording (made on the reorganised pages, one attributes page per kind)."""
    return recorded


def netg_bytes() -> bytes:
    """A tutorial DCGAN generator's state dict with fixed weights, as a student would upload it."""
    import torch

    from training.models.dcgan import DCGANConfig, Generator

    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.save(Generator(DCGANConfig(g_width=8)).state_dict(), buffer)
    return buffer.getvalue()


def record(key: str) -> dict:
    if key == UPLOAD:
        return record_page(PAGE_FILES["upload"], None, upload=("netG.pth", netg_bytes()))
    page, bundle = key.split("|")
    return record_page(page_file(page, bundle), str(CHECKPOINTS / bundle))


KEYS = [f"{page}|{bundle}" for bundle in GENERATORS for page in PAGES] + [UPLOAD]
present = all((CHECKPOINTS / b / "config.json").is_file() for b in GENERATORS)
pytestmark = pytest.mark.skipif(not (present and GOLDEN.is_file()), reason="needs the shipped bundles and snapshots")


def environment() -> dict:
    """What decides the last bits of a convolution: the recording's image hashes hold only where this matches."""
    import torch

    return {"torch": torch.__version__, "cpu": torch.backends.cpu.get_cpu_capability()}


@pytest.fixture(scope="module")
def golden() -> dict:
    recorded = json.loads(GOLDEN.read_text())
    if recorded.get(ENVIRONMENT_KEY) != environment():
        pytest.skip(f"snapshots were recorded with {recorded.get(ENVIRONMENT_KEY)}; this machine has {environment()}, "
                    "whose kernels may differ in the last bits (tests/test_behaviour_lock.py compares tolerantly)")
    return recorded


@pytest.mark.parametrize("key", KEYS)
def test_page_shows_what_it_showed(key, golden):
    shown = record(key)
    assert not shown["exception"], shown["exception"]
    want = expected(key, golden[key])
    for part in want:  # one part at a time, so a failure names what changed
        assert shown[part] == want[part], part


if __name__ == "__main__":
    if "--record" in sys.argv:
        import os

        import torch

        torch.set_num_threads(1)  # as in the tests (conftest), which also hide the user's dataset copies
        for name in [n for n in os.environ if n.startswith("LATENT_EXPLORER_") and n.endswith("_ROOT")]:
            del os.environ[name]
        GOLDEN.parent.mkdir(exist_ok=True)
        pages = {ENVIRONMENT_KEY: environment(), **{key: record(key) for key in KEYS}}
        GOLDEN.write_text(json.dumps(pages, indent=1, ensure_ascii=False) + "\n")
