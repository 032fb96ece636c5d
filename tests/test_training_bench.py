"""python -m training.bench end to end on tiny sizes: every figure and ratio is printed as one parseable JSON line on
stdout, the temporary JPEG folder is gone afterwards, and a bad --data-root is a clear error (speeds never asserted)."""

import json
import math
import tempfile
from pathlib import Path

import pytest

from training.bench import train_speed as bench

TINY = ["--num-images", "40", "--steps-per-round", "1", "--rounds", "2", "--warmup-steps", "1", "--batch-size", "8",
        "--g-width", "8", "--d-width", "8", "--workers", "1", "--threads", "1"]


def scratch_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("latent-explorer-bench-*"))


@pytest.mark.slow
def test_bench_prints_every_figure_as_json(capsys):
    before = scratch_folders()
    assert bench.main(TINY) == 0
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines()]  # stdout holds nothing but JSON lines
    machine = [line for line in lines if line["figure"] == "machine"]
    assert len(machine) == 1 and machine[0]["cores"] >= 1 and machine[0]["torch_threads"] == 1
    assert machine[0]["torch"] and machine[0]["cpu"]
    speeds = {line["way"]: line for line in lines if line["figure"] == "train_images_per_s"}
    assert sorted(speeds) == sorted(bench.WAYS)
    for way, line in speeds.items():
        assert line["unit"] == "images/s" and line["rounds"] == 2 and len(line["per_round"]) == 2
        assert math.isfinite(line["value"]) and line["value"] > 0 and line["what"]
        assert line["precision"] == ("bf16" if way.endswith("fast") else "fp32")
        assert line["spread"] >= 0
    ratio_lines = [line for line in lines if line["figure"] == "ratio"]
    assert all(len(line["per_round"]) == 2 and line["spread"] >= 0 for line in ratio_lines)
    ratios = {line["name"]: line["value"] for line in ratio_lines}
    assert sorted(ratios) == sorted(["a_fp32/b", "a_fast/b", "a_fp32/c_fp32", "a_fast/c_fast"])
    assert all(math.isfinite(v) and v > 0 for v in ratios.values())
    assert scratch_folders() == before  # the JPEGs and runs written for the bench are removed


def test_bad_data_root_is_a_clear_error(tmp_path, capsys):
    assert bench.main([*TINY, "--data", "anime", "--data-root", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder; pass the anime64 folder" in capsys.readouterr().err
    assert bench.main([*TINY, "--data", "anime"]) == 2
    assert "--data anime needs --data-root PATH" in capsys.readouterr().err
    assert bench.main([*TINY, "--data", "anime", "--data-root", str(tmp_path)]) == 2
    assert "anime: no tags.csv in" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_on_an_anime_folder(tiny_faces, tmp_path, capsys):
    from PIL import Image

    (tmp_path / "images").mkdir()
    for i, image in enumerate(tiny_faces.images[:24]):
        Image.fromarray(image).save(tmp_path / "images" / f"{i}.jpg")
    (tmp_path / "tags.csv").write_text("".join(f"{i},{('blue', 'red')[i % 2]} hair green eyes\n" for i in range(24)))
    args = [*TINY, "--rounds", "1", "--data", "anime", "--data-root", str(tmp_path)]
    assert bench.main(args) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {line["data"] for line in lines if line["figure"] == "train_images_per_s"} == {"anime"}
    assert len([line for line in lines if line["figure"] == "ratio"]) == 4
    assert sorted(p.name for p in (tmp_path / "images").iterdir())[:2] == ["0.jpg", "1.jpg"]  # the data untouched


class _WarmingWay:
    """A way whose steps start slow (kernel creation) and settle at 5 ms; `settle=False` never settles."""

    def __init__(self, settle: bool = True):
        self.steps, self.settle = 0, settle

    def step(self) -> int:
        import time

        self.steps += 1
        time.sleep(0.005 + (0.2 / self.steps ** 2 if self.settle else 0.05 * (self.steps % 2)))
        return 8


def test_warm_up_runs_until_two_chunks_agree():
    args = bench.parse_args([*TINY, "--steps-per-round", "2", "--warmup-steps", "0", "--steady", "0.3"])
    way = _WarmingWay()
    chunks = bench.warm_up("slow-start", way, args)
    assert len(chunks) >= 3 and bench.steady(chunks, 0.3) and chunks[0] < chunks[-1] / 3
    assert not bench.steady(chunks[:2], 0.3)  # the old fixed warm-up would have timed these
    never = bench.warm_up("busy", _WarmingWay(settle=False), bench.parse_args([*TINY, "--max-warmup-chunks", "3"]))
    assert len(never) == 3


def test_spread_and_steadiness():
    assert bench.steady([100.0, 95.0], 0.1) and not bench.steady([100.0, 80.0], 0.1) and not bench.steady([1.0], 0.1)
    assert bench.relative_spread([90.0, 100.0, 110.0]) == 0.2
