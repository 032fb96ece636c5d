"""The experiment groups: recipes, the divergence record, rebuild selection, verdicts and the Experiments page."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from latent_bundles import APP, SOURCE, train_tiny, use_checkpoints
from streamlit.testing.v1 import AppTest

from explorer.logic.experiments import find_groups
from training.bundle import METRICS_FILE, load_bundle, read_config
from training.errors import LatentExplorerError
from training.recipes import experiments

GROUP = experiments.Group(
    name="tiny-balance", title="Tiny balance", question="Does a huge weight explode?", dataset="",
    base=("--model", "cgan", "--data", "toyfaces"), keep=("generator",), size_note="tiny",
    runs=(experiments.Run("baseline", "baseline"), experiments.Run("heavy", "weight 10", ("--class-weight", "10")),
          experiments.Run("wide", "latent 32", ("--latent-dim", "32"))),
)


def fake_metrics(fd: float, floor: float = 1.0, precision: float = 0.5, accuracy: float = 0.6) -> dict:
    return {"fd_precision_recall": {"model": {"fd": fd, "precision": precision, "recall": 0.2},
                                    "real_floor": {"fd": floor, "precision": 0.9, "recall": 0.9}},
            "attribute_accuracy": {"attributes": {"hair_colour": {"accuracy": accuracy}}}}


def write_metrics(path: Path, metrics: dict) -> None:
    (path / METRICS_FILE).write_text(json.dumps(metrics))


@pytest.fixture(scope="module")
def group_root(tmp_path_factory) -> Path:
    """checkpoints/experiments/tiny-balance/{baseline,heavy,wide}: tiny cGANs; 'heavy' is stopped by the guard."""
    from latent_bundles import tiny_faces

    faces = tiny_faces()
    root = tmp_path_factory.mktemp("experiments-root")
    for run in GROUP.runs:
        out = root / experiments.ROOT_NAME / GROUP.name / run.name

        def call(out=out, run=run):
            train_tiny("cgan", out, faces)
            if run.name == "heavy":
                raise LatentExplorerError("training diverged at step 3: loss_g became NaN or infinite (the run "
                                          "exploded; try a lower learning rate or loss weight). The last good ...")

        experiments.finish_run(out, experiments.record(GROUP, run), call, GROUP.keep, progress=lambda _: None)
        write_metrics(out, fake_metrics(10.0))
    return root


def test_every_group_is_a_valid_train_command_with_one_change_per_run(tmp_path):
    from training.__main__ import build_parser

    for group in experiments.GROUPS.values():
        assert group.baseline.flags == ()
        for run in group.runs:
            args = build_parser().parse_args(experiments.train_arguments(group, run, tmp_path / run.name, "/data", 1))
            assert args.threads == 1 and args.out == str(tmp_path / run.name)
            assert len(run.flags) in (0, 2), f"{group.name}/{run.name} changes more than one option"


def test_the_guard_stop_is_recorded_and_only_the_kept_networks_ship(group_root):
    heavy = read_config(group_root / "experiments" / "tiny-balance" / "heavy")
    assert heavy["experiment"]["stopped"]["step"] == 3
    assert "became NaN" in heavy["experiment"]["stopped"]["message"]
    base = read_config(group_root / "experiments" / "tiny-balance" / "baseline")
    assert base["experiment"]["stopped"] is None and base["experiment"]["baseline"] == "baseline"
    assert base["networks_shipped"] == ["generator"] and base["weights_stored_as"] == "float16"
    assert load_bundle(group_root / "experiments" / "tiny-balance" / "baseline").generator is not None


def test_an_error_that_is_not_a_guard_stop_still_raises(tmp_path):
    def call():
        raise LatentExplorerError("the dataset folder is missing")

    with pytest.raises(LatentExplorerError, match="folder is missing"):
        experiments.finish_run(tmp_path / "x", {}, call, ("generator",))


def test_rebuild_selects_only_the_group_and_keeps_its_record(group_root, tmp_path, faces_for_rebuild):
    from training.recipes.rebuild import select

    root = tmp_path / "checkpoints"
    shutil.copytree(group_root / "experiments", root / "experiments")
    shutil.copytree(root / "experiments" / "tiny-balance", root / "experiments" / "other")
    train_tiny("dcgan", root / "toyfaces" / "dcgan", faces_for_rebuild)
    chosen = select(root, ["experiments/tiny-balance"])
    assert [p.name for p in chosen] == ["baseline", "heavy", "wide"]
    assert len(select(root, None)) == 7

    out = chosen[0]
    config = read_config(out)
    experiments.rebuild_run(config, out, lambda: train_tiny("cgan", out, faces_for_rebuild))
    rebuilt = read_config(out)
    assert rebuilt["experiment"]["run"] == "baseline" and rebuilt["networks_shipped"] == ["generator"]


@pytest.fixture(scope="module")
def faces_for_rebuild():
    from latent_bundles import tiny_faces

    return tiny_faces()


def test_build_checkpoints_dry_run_lists_the_group(group_root, capsys):
    from training.__main__ import main

    assert main(["build-checkpoints", "--only", "experiments/tiny-balance", "--checkpoints", str(group_root),
                 "--dry-run"]) == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"experiments/tiny-balance/{r.name}" for r in GROUP.runs]
    assert all(f'"seed": {SOURCE["seed"]}' in line for line in lines)


def test_verdicts_follow_the_numbers(group_root, tmp_path):
    from explorer.logic.experiments import baseline_of, find_groups, verdict

    root = tmp_path / "experiments"
    shutil.copytree(group_root / "experiments", root)
    runs = find_groups(root)["tiny-balance"]
    base, heavy, wide = runs
    assert baseline_of(runs) is base and [r.name for r in runs] == ["baseline", "heavy", "wide"]
    assert verdict(heavy, base).startswith("Diverged at step 3")
    assert "diverged at step" not in verdict(base, base).lower() and "did not diverge" in verdict(base, base)
    assert verdict(wide, base).startswith("Cannot tell apart")

    write_metrics(wide.path, fake_metrics(14.0, precision=0.2, accuracy=0.9))
    wide = find_groups(root)["tiny-balance"][2]
    changed = verdict(wide, base)
    assert changed.startswith("Worse FD than the baseline by 4.00") and "Precision lower" in changed
    assert "attribute accuracy higher" in changed

    write_metrics(wide.path, fake_metrics(6.0))
    assert verdict(find_groups(root)["tiny-balance"][2], base).startswith("Better FD than the baseline by 4.00")


def test_the_divergence_column_shows_numbers_for_a_run_that_did_not_diverge(group_root):
    from explorer.logic.experiments import find_groups, numbers

    base, heavy, _ = find_groups(group_root / "experiments")["tiny-balance"]
    assert numbers(heavy)["diverged?"] == "diverged at step 3"
    assert numbers(base)["diverged?"].startswith("no: finite losses through step 3; D(G(z)) lowest")


def test_the_page_renders_a_group_with_its_divergence(group_root, monkeypatch):
    use_checkpoints(monkeypatch, group_root)
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("views/experiments.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Experiments"
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "weight 10" in errors[0] and "Diverged at step 3" in errors[0]
    verdicts = " ".join(m.value for m in at.markdown)
    assert "**baseline**: The baseline" in verdicts
    at.select_slider(key="experiments_step_tiny-balance").set_value(0).run()
    assert not at.exception, at.exception


def test_the_page_says_what_to_do_without_experiments(tmp_path, monkeypatch):
    use_checkpoints(monkeypatch, tmp_path)
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("views/experiments.py").run()
    assert not at.exception and "python -m training.recipes.experiments" in at.info[0].value


def test_every_run_changes_its_config_only_where_its_recipe_says(group_root):
    configs = {r.name: read_config(group_root / "experiments" / "tiny-balance" / r.name) for r in GROUP.runs}
    assert {c["experiment"]["group"] for c in configs.values()} == {"tiny-balance"}
    assert configs["heavy"]["experiment"]["changed"] == ["--class-weight", "10"]


SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints" / experiments.ROOT_NAME
SHIPPED_GROUPS = sorted(find_groups(SHIPPED))  # groups with at least one finished run


# The InfoGAN group's page takes several times as long as the others' (measured); ./test --all renders it too.
@pytest.mark.parametrize("group", [pytest.param(g, marks=pytest.mark.slow) if g == "infogan" else g
                                   for g in SHIPPED_GROUPS])
def test_every_shipped_group_renders(group):
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["group"] = group
    at.switch_page("views/experiments.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="experiments_group").value == group
    assert len(at.markdown) + len(at.error) >= len(at.dataframe) > 0


@pytest.mark.skipif("data-size" not in SHIPPED_GROUPS, reason="the shipped data-size group is not there")
def test_grids_show_faces_enlarged_without_blur_and_all_of_them_on_request(monkeypatch):
    import io

    from PIL import Image
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    sizes = []
    original = MemoryMediaFileStorage.load_and_get_id

    def record(storage, data, mimetype, kind, filename=None):
        if isinstance(data, bytes):
            sizes.append(Image.open(io.BytesIO(data)).size)
        return original(storage, data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["group"] = "data-size"
    at.switch_page("views/experiments.py").run()
    assert not at.exception, at.exception
    # Two runs: each grid's top-left 4 x 4 faces of 32 px, 3 times enlarged here (96 px a face), two runs a row.
    assert sizes[:2] == [((4 * 34 + 2) * 3, (4 * 34 + 2) * 3)] * 2
    assert "The first 16 of its 64 faces." in " ".join(c.value for c in at.caption)
    sizes.clear()
    at.toggle(key="experiments_all_faces").set_value(True).run()
    assert not at.exception, at.exception
    assert sizes[:2] == [((8 * 34 + 2) * 3, (8 * 34 + 2) * 3)] * 2  # every face, one run a row


def test_a_vae_group_shows_reconstructions_and_code_spread(tmp_path, monkeypatch):
    from latent_bundles import tiny_faces

    from explorer.logic.experiments import find_groups, numbers

    group = experiments.Group(name="tiny-kl", title="Tiny KL", question="?", dataset="", base=(),
                              keep=("decoder", "encoder"), size_note="tiny",
                              runs=(experiments.Run("kl-a", "KL a"),
                                    experiments.Run("kl-b", "KL b", ("--kl-weight", "1"))))
    faces = tiny_faces()
    for run in group.runs:
        out = tmp_path / experiments.ROOT_NAME / group.name / run.name
        experiments.finish_run(out, experiments.record(group, run), lambda out=out: train_tiny("vae", out, faces),
                               group.keep, progress=lambda _: None)
    row = numbers(find_groups(tmp_path / experiments.ROOT_NAME)["tiny-kl"][1])
    assert {"mu std per dim", "final KL", "diverged?"} <= set(row) and row["FD"] == "not evaluated"
    use_checkpoints(monkeypatch, tmp_path)
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("views/experiments.py").run()
    assert not at.exception, at.exception
    assert "Reconstructions of the same held-out faces" in [h.value for h in at.header]
    assert not [i.value for i in at.info if "No reconstructions" in i.value]


def test_infogan_code_sentences_follow_the_classes_seen():
    import numpy as np
    import torch

    from explorer.logic.infogan_codes import _categorical, _continuous

    names = [f"class {i}" for i in range(4)]
    columns = [torch.zeros(8, 1, 4, 4)] * 4
    sorted_by_value = [np.full(8, v) for v in range(4)]
    found = _categorical("category_1", columns, sorted_by_value, names, change=0.1)
    assert found.purity == 1.0 and found.sentence.startswith("category_1 picks the class: 4 of its 4 values")
    assert "images of one value are nearly alike" in found.sentence  # every z gives the same image here
    varied = [torch.rand(8, 1, 4, 4) * 2 - 1 for _ in range(4)]  # z matter: 0.33 apart against 0.1 per value
    assert "nearly alike" not in _categorical("category_1", varied, sorted_by_value, names, change=0.1).sentence
    mixed = [np.arange(8) % 4 for _ in range(4)]
    assert "does not pick a class" in _categorical("category_1", columns, mixed, names, change=0.1).sentence
    assert "nothing visible" in _categorical("category_1", columns, sorted_by_value, names, change=0.001).sentence
    assert "style within a class" in _continuous("continuous_1", [np.zeros(8), np.zeros(8)], 0.05, 0.2).sentence
    assert "mixes style and class" in _continuous("continuous_1", [np.zeros(8), np.ones(8)], 0.05, 0.2).sentence


def test_an_infogan_group_says_what_its_codes_found(tmp_path, monkeypatch):
    from latent_bundles import tiny_faces, tiny_featurenet

    group = experiments.Group(name="tiny-info", title="Tiny InfoGAN", question="?", dataset="", base=(),
                              keep=("generator",), size_note="tiny", runs=(experiments.Run("infogan", "InfoGAN"),))
    faces = tiny_faces()
    out = tmp_path / experiments.ROOT_NAME / group.name / "infogan"
    experiments.finish_run(out, experiments.record(group, group.runs[0]), lambda: train_tiny("infogan", out, faces),
                           group.keep, progress=lambda _: None)
    tiny_featurenet(tmp_path / "toyfaces" / "featurenet", faces)
    monkeypatch.setenv("LATENT_EXPLORER_CHECKPOINTS", str(tmp_path))
    use_checkpoints(monkeypatch, tmp_path)
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("views/experiments.py").run()
    assert not at.exception, at.exception
    assert "What the codes found: InfoGAN" in [h.value for h in at.header]
    sentences = [m.value for m in at.markdown if m.value.startswith(("* category_1", "* continuous_"))]
    assert len(sentences) == 3 and all(s.endswith(".") for s in sentences)


def test_a_generator_that_fools_only_d_is_called_out():
    from explorer.logic.experiments import hidden_attributes

    said = hidden_attributes({"D's classifier on fakes": 0.98, "attribute accuracy": 0.12})
    assert said and "98% of the fakes" in said[0] and "12%" in said[0] and "the other 86%" in said[0]
    assert hidden_attributes({"D's classifier on fakes": 0.4, "attribute accuracy": 0.3}) == []
    assert hidden_attributes({"attribute accuracy": 0.3}) == []
