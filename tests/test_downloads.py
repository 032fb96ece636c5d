"""Pictures and numbers for the slides: PNGs at native size and x4 (nearest neighbour), CSV, safe file names."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.core import downloads
from explorer.logic.sample import diagnostics_rows


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_file_names_say_model_distribution_seed_and_stay_safe():
    assert downloads.file_stem("celeba", "dcgan", "N(-10, 1)", "seed7") == "celeba_dcgan_N-10-1_seed7"
    assert downloads.file_stem("../../etc", "a/b", "") == "etc_a-b"
    assert downloads.file_stem() == "latent-explorer"


def test_the_enlarged_png_is_the_native_one_with_every_pixel_a_4x4_block():
    images = torch.rand(6, 3, 8, 8) * 2 - 1
    native = decoded(downloads.grid_png(images, nrow=3, scale=1))
    big = decoded(downloads.grid_png(images, nrow=3, scale=4))
    assert native.shape == (2 * 10 + 2, 3 * 10 + 2, 3)  # 8 px tiles, 2 px borders, as make_grid lays them out
    assert big.shape == (native.shape[0] * 4, native.shape[1] * 4, 3)
    assert np.array_equal(big[::4, ::4], native) and np.array_equal(big[3::4, 3::4], native)  # no blur
    first = ((images[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
    assert np.abs(native[2:10, 2:10].astype(int) - first.astype(int)).max() <= 1


def test_csv_from_rows_or_columns():
    assert downloads.csv_text([{"a": 1, "b": 2}, {"a": 3}]) == "a,b\n1,2\n3,\n"
    assert downloads.csv_text({"mean": [-10, 0], "verdict": ["collapsed", "healthy"]}) == \
        "mean,verdict\n-10,collapsed\n0,healthy\n"


def test_buttons_make_their_files_only_when_clicked(monkeypatch):
    made = []

    class Column:
        def download_button(self, label, data, file_name, mime, **kwargs):
            assert callable(data) and kwargs["on_click"] == "ignore"
            made.append((label, file_name, data))

    monkeypatch.setattr(downloads.st, "columns", lambda n, gap: [Column() for _ in range(n)])
    calls = []
    monkeypatch.setattr(downloads, "grid_png", lambda images, nrow, scale: calls.append(scale) or b"png")
    downloads.grid_downloads(torch.zeros(2, 3, 4, 4), "stem", "k", numbers=[{"x": 1}])
    assert [m[1] for m in made] == ["stem.png", "stem_x4.png", "stem.csv"] and calls == []
    assert made[1][2]() == b"png" and calls == [4] and made[2][2]() == "x\n1\n"
    built = []
    downloads.grid_downloads(torch.zeros(2, 3, 4, 4), "lazy", "l",
                             numbers=lambda: built.append(1) or {"step": [0, 1]})
    assert built == [] and made[-1][2]() == "step\n0\n1\n" and built == [1]  # a long table: built on a click
    picture = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    downloads.picture_downloads(lambda scale: picture.repeat(scale, 0).repeat(scale, 1), "pic", "p")
    assert decoded(made[-2][2]()).shape == (2, 3, 3) and decoded(made[-1][2]()).shape == (8, 12, 3)


@pytest.mark.parametrize("field", ["cosine", "verdict", "seed"])
def test_the_sampling_numbers_as_rows(field):
    from dataclasses import dataclass

    @dataclass
    class Fake:
        cosine: float = 0.99
        flag: bool = True
        name: str = "x"

        @property
        def verdict(self) -> str:
            return "collapsed"

    rows = {r["figure"]: r["value"] for r in diagnostics_rows("celeba · DCGAN", "N(-10, 1)", 7, Fake())}
    assert field in rows and rows["verdict"] == "collapsed" and rows["cosine"] == 0.99 and "flag" not in rows


def test_the_sampling_page_offers_its_grid_and_numbers(tmp_path_factory, monkeypatch):
    from latent_bundles import open_page, shared_root, use_checkpoints

    use_checkpoints(monkeypatch, shared_root(tmp_path_factory))
    at = open_page("sample", "dcgan")
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["PNG, native size", "PNG, enlarged x4", "numbers (CSV)"]
