"""Every page shows the same thing on every shipped bundle as the recorded snapshot: the same words, tables and
charts, numbers within their last shown digit, and images within a few 8-bit levels (tests/page_record.py says
how two records compare), for the default controls. The tolerance lets a snapshot recorded on one machine hold on
another whose CPU kernels round the last bits differently; a change that alters what a page shows fails here.

Record again (only when a page is meant to change): `python tests/test_page_snapshots.py --record`.
"""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from page_record import REPO, chart_record, differences, image_record, record_page  # noqa: E402

GOLDEN = Path(__file__).resolve().parent / "golden" / "pages.json"
CHECKPOINTS = REPO / "checkpoints"
GENERATORS = ("toyfaces/dcgan", "toyfaces/vae", "toyfaces/cgan", "celeba/dcgan", "celeba/vae", "celeba/cgan",
              "anime/dcgan", "anime/vae", "anime/cgan", "fashion-mnist/cgan", "fashion-mnist/vae")
# "attributes" is the page of each family's attributes: conditions, codes or directions; "training" the replay.
PAGES = ("sample", "sweep", "attributes", "vae_map", "compare", "interpolate", "training")
PAGE_FILES = {"sample": "views/sample.py", "sweep": "views/sweep.py", "vae_map": "views/vae_map.py",
              "compare": "views/compare.py", "interpolate": "views/interpolate.py", "training": "views/replay.py",
              "upload": "views/upload.py"}
ATTRIBUTE_PAGES = {"cgan": "views/conditions.py", "infogan": "views/codes.py", "dcgan": "views/directions.py",
                   "vae": "views/directions.py"}
UPLOAD = "upload|netG.pth"
# Where the snapshots were recorded, for the reader of a failure (they hold on other machines too).
ENVIRONMENT_KEY = "environment"
# The one snapshot in the fast set (`./test`): the first page on the first model; `./test --all` checks every one.
FAST_KEY = "sample|toyfaces/dcgan"


def page_file(page: str, bundle: str) -> str:
    if page == "attributes":
        return ATTRIBUTE_PAGES[bundle.split("/")[1]]
    return PAGE_FILES[page]


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


def environment() -> dict:
    import torch

    return {"torch": torch.__version__, "cpu": torch.backends.cpu.get_cpu_capability()}


def golden_text(pages: dict) -> str:
    """The snapshots as JSON, one line per list of numbers (a plotted series) rather than one line per number."""
    text = json.dumps(pages, indent=1, ensure_ascii=False)
    return re.sub(r"\[\s*((?:-?[\d.eE+-]+|null)(?:,\s*(?:-?[\d.eE+-]+|null))*)\s*\]",
                  lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text) + "\n"


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(GOLDEN.read_text())


@pytest.mark.skipif(not (present and GOLDEN.is_file()), reason="needs the shipped bundles and snapshots")
@pytest.mark.parametrize("key", [pytest.param(k, marks=() if k == FAST_KEY else pytest.mark.slow) for k in KEYS])
def test_page_shows_what_it_showed(key, golden):
    shown = record(key)
    assert not shown["exception"], shown["exception"]
    problems = differences(shown, golden[key])
    assert not problems, (f"{key} differs from its snapshot (recorded with {golden.get(ENVIRONMENT_KEY)}, "
                          f"shown with {environment()}):\n" + "\n".join(problems))


def test_the_comparison_forgives_last_digits_and_levels_but_not_a_change():
    import numpy as np
    from PIL import Image

    def jpeg(pixels) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(pixels.astype(np.uint8)).save(buffer, "JPEG", quality=95)
        return buffer.getvalue()

    grid = np.random.default_rng(0).integers(0, 256, (8, 8, 3)).repeat(16, 0).repeat(16, 1)
    changed = grid.copy()
    changed[:16, :16] = 255 - changed[:16, :16]  # one sample of the grid
    chart = {"data": [{"y": [0.5, 0.25, 1e-9], "hovertemplate": "mean %{x:g}"}], "layout": {"height": 300}}
    recorded = {"markdown": ["cosine 0.245, 43% of 64 codes"], "metric": [["Norm", "10.0", None, "about 10"]],
                "plotly_chart": [chart_record(chart)], "images": [image_record(jpeg(grid), "image/jpeg")],
                "exception": []}

    def shown(**change) -> dict:
        return {**json.loads(json.dumps(recorded)), **change}

    assert differences(shown(), recorded) == []
    assert differences(shown(markdown=["cosine 0.246, 44% of 64 codes"]), recorded) == []  # one last digit
    assert differences(shown(images=[image_record(jpeg(np.clip(grid + 1, 0, 255)), "image/jpeg")]), recorded) == []
    near = {"data": [{"y": [0.5001, 0.25, 2e-9], "hovertemplate": "mean %{x:g}"}], "layout": {"height": 300}}
    assert differences(shown(plotly_chart=[chart_record(near)]), recorded) == []
    assert differences(shown(markdown=["cosine 0.247, 43% of 64 codes"]), recorded)  # two last digits
    assert differences(shown(markdown=["cosine 0.245, 43% of 64 images"]), recorded)
    assert differences(shown(metric=[["Norm", "11.0", None, "about 10"]]), recorded)
    assert differences(shown(images=[image_record(jpeg(changed), "image/jpeg")]), recorded)
    far = {"data": [{"y": [0.51, 0.25, 1e-9], "hovertemplate": "mean %{x:g}"}], "layout": {"height": 300}}
    assert differences(shown(plotly_chart=[chart_record(far)]), recorded)
    longer = {"data": [{"y": [0.5, 0.25, 1e-9, 0.0], "hovertemplate": "mean %{x:g}"}], "layout": {"height": 300}}
    assert differences(shown(plotly_chart=[chart_record(longer)]), recorded)
    assert differences(shown(exception=["ValueError: boom"]), recorded)


if __name__ == "__main__":
    if "--record" in sys.argv:
        import os
        import tempfile

        import torch

        # As in the tests (conftest): one thread, a private dataset cache, and the user's dataset copies hidden.
        torch.set_num_threads(1)
        os.environ["LATENT_EXPLORER_CACHE"] = tempfile.mkdtemp(prefix="latent-explorer-record-")
        for name in [n for n in os.environ if n.startswith("LATENT_EXPLORER_") and n.endswith("_ROOT")]:
            del os.environ[name]
        GOLDEN.parent.mkdir(exist_ok=True)
        pages = {ENVIRONMENT_KEY: environment(), **{key: record(key) for key in KEYS}}
        GOLDEN.write_text(golden_text(pages))
