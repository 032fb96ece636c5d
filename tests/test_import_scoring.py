"""An imported generator that says what it was trained on is scored like a shipped model: `evaluate`, the upload
page's side-by-side scoring with the class's model, and the pages that compare models of one dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from latent_bundles import APP, make_root, use_checkpoints
from streamlit.testing.v1 import AppTest

from training.__main__ import main
from training.bundle import load_bundle, read_config
from training.errors import LatentExplorerError
from training.models.dcgan import DCGANConfig, Generator

REPO = Path(__file__).resolve().parent.parent
SAMPLES = 40  # per model: set size 20, two pairs of sets, with the tiny root's 48 training faces


def netg_bytes(**config) -> bytes:
    """A tutorial-named netG state dict (torch.save bytes); default: the tiny root's 32 px colour faces."""
    import io

    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.save(Generator(DCGANConfig(**{"image_size": 32, "g_width": 8, **config})).state_dict(), buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A checkpoints folder with the class's tiny toyfaces VAE, DCGAN and feature network (32 px)."""
    return make_root(tmp_path_factory.mktemp("import-scoring") / "checkpoints", ("vae", "dcgan"))


@pytest.fixture
def netg(tmp_path) -> Path:
    path = tmp_path / "netG.pth"
    path.write_bytes(netg_bytes())
    return path


@pytest.mark.slow
def test_a_tiny_generator_imported_with_data_toyfaces_is_scored_end_to_end(root, netg, tmp_path, monkeypatch,
                                                                           capsys):
    monkeypatch.setenv("LATENT_EXPLORER_CHECKPOINTS", str(root))
    out = tmp_path / "mine"
    assert main(["import-dcgan", str(netg), "--out", str(out), "--data", "toyfaces"]) == 0
    assert "trained on toyfaces" in capsys.readouterr().out
    config = read_config(out)
    shipped = read_config(root / "toyfaces" / "dcgan")["dataset"]
    assert config["dataset"]["name"] == "toyfaces" and config["dataset"]["source"] == shipped["source"]
    assert "num_images" not in config["dataset"]  # how many images the student trained on is unknown
    assert config["imported_from"]["trained_on"] == "toyfaces" and config["imported_from"]["file"] == "netG.pth"

    assert main(["evaluate", str(out), "--samples", str(SAMPLES), "--quiet", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["feature_network"]["name"] == "tiny featurenet"
    assert result["real"]["test"]["name"] == "toyfaces"
    row = result["fd_precision_recall"]["model"]
    assert row["fd"] >= 0 and {"density", "coverage", "intervals", "kid"} <= set(row)  # an untrained network


def test_a_grey_generator_marked_celeba_is_refused_with_one_sentence(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LATENT_EXPLORER_CHECKPOINTS", str(REPO / "checkpoints"))
    if not (REPO / "checkpoints" / "celeba" / "dcgan" / "config.json").exists():
        pytest.skip("the shipped celeba bundles are not here")
    grey = tmp_path / "netG.pth"
    grey.write_bytes(netg_bytes(image_size=64, channels=1))
    out = tmp_path / "grey"
    assert main(["import-dcgan", str(grey), "--out", str(out), "--data", "celeba"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and error.endswith("to explore it without scores"), error
    assert "grey 64x64" in error and "celeba images are colour 64x64" in error
    assert not (out / "config.json").exists()
    assert main(["import-dcgan", str(grey), "--out", str(out), "--data", "mnist"]) == 2
    assert "--data must be one of celeba, anime, toyfaces, fashion-mnist" in capsys.readouterr().err


def test_evaluate_says_how_to_name_the_dataset_of_an_import_without_one(root, netg, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LATENT_EXPLORER_CHECKPOINTS", str(root))
    out = tmp_path / "unnamed"
    assert main(["import-dcgan", str(netg), "--out", str(out)]) == 0
    assert "explored, not scored" in capsys.readouterr().out
    assert main(["evaluate", str(out), "--samples", str(SAMPLES), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "imported without naming the dataset" in error and "--data celeba|anime|toyfaces|fashion-mnist" in error


def test_side_by_side_gives_the_figures_of_evaluate_and_keeps_known_rows(root, netg, tmp_path):
    from training.metrics.evaluate import evaluate_bundle
    from training.metrics.side_by_side import SideBySide
    from training.untrusted.importers import import_tutorial_dcgan

    mine = load_bundle(import_tutorial_dcgan(netg, tmp_path / "mine", trained_on="toyfaces", checkpoints=root))
    ours = load_bundle(root / "toyfaces" / "dcgan")
    net = root / "toyfaces" / "featurenet"
    scorer = SideBySide({"mine": mine, "ours": ours}, SAMPLES, featurenet=net)
    shares = []
    while not scorer.finished:
        shares.append(scorer.run(1))
    assert shares == sorted(shares) and shares[-1] == 1.0 and len(shares) > 4  # a bar that moves forward
    expected = evaluate_bundle(mine, featurenet=net, samples=SAMPLES)["fd_precision_recall"]
    got = scorer.result("mine")
    assert got["fd_precision_recall"]["model"] == expected["model"]
    assert got["fd_precision_recall"]["real_floor"] == expected["real_floor"]
    assert got["samples"] == SAMPLES and got["scored_beside"] == [ours.name]

    again = SideBySide({"mine": mine, "ours": ours}, SAMPLES, featurenet=net,
                       known={"ours": scorer.rows["ours"], "real_floor": scorer.rows["real_floor"]})
    while not again.finished:
        again.run(1)
    assert again.total < scorer.total  # neither the class's model nor the real training images again
    assert again.result("mine")["fd_precision_recall"] == got["fd_precision_recall"]


def test_a_new_dataset_choice_must_fit_and_drops_the_old_scores(root, netg, tmp_path):
    from training.bundle.trained_on import record_trained_on
    from training.untrusted.importers import import_tutorial_dcgan

    out = import_tutorial_dcgan(netg, tmp_path / "mine", checkpoints=root)
    assert read_config(out)["dataset"]["name"] == "imported"
    (out / "metrics.json").write_text("{}")
    assert record_trained_on(out, "toyfaces", root)["dataset"]["name"] == "toyfaces"
    assert not (out / "metrics.json").exists()
    with pytest.raises(LatentExplorerError, match="no bundle under .* says how anime was prepared"):
        record_trained_on(out, "anime", root)
    assert record_trained_on(out, None, root)["dataset"]["name"] == "imported"
    with pytest.raises(LatentExplorerError, match="only an imported generator"):
        record_trained_on(root / "toyfaces" / "dcgan", "toyfaces", root)


# --- the pages --------------------------------------------------------------------------------------------------

@pytest.fixture
def page(root, monkeypatch):
    from explorer.logic import upload

    use_checkpoints(monkeypatch, root)
    monkeypatch.setattr(upload, "SCORING_SAMPLES", SAMPLES)
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    at.switch_page("views/upload.py").run()
    assert not at.exception, at.exception
    return at


def table_with(at, column: str):
    """The first table on the page with this column (AppTest does not expose a table's key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def upload_file(at, content: bytes, trained_on: str) -> None:
    at.selectbox(key="upload_trained_on").set_value(trained_on).run()
    at.file_uploader(key="upload_file").set_value(("netG.pth", content, "application/octet-stream")).run()
    assert not at.exception, at.exception


def test_the_page_scores_an_import_beside_the_class_model_and_other_pages_include_it(page):
    upload_file(page, netg_bytes(), "something else")
    assert not page.error and not page.button  # trained on something else: nothing to score
    assert any("Choose the dataset it was trained on" in i.value for i in page.info)

    page.selectbox(key="upload_trained_on").set_value("toyfaces").run()  # chosen after the upload: marked now
    assert not page.exception and not page.error
    page.button(key="upload_score").click().run()
    assert not page.exception, page.exception
    table = table_with(page, "coverage")
    assert table["model"].tolist() == ["imported · netG.pth", "tiny dcgan", "real training images (the floor)"]
    assert table["coverage"].str.contains(r"\[").all()  # every figure with its interval
    words = " ".join(m.value for m in page.markdown)
    assert "Beside tiny dcgan:" in words and ("cannot be told apart" in words or "looks more realistic" in words)
    assert any(f"{SAMPLES} generated images of each model" in c.value for c in page.caption)

    page.switch_page("views/compare.py").run()
    assert not page.exception, page.exception
    page.selectbox(key="compare_vae").set_value("tiny vae").run()
    gans = page.selectbox(key="compare_gan").options
    assert "imported · netG.pth" in gans
    page.selectbox(key="compare_gan").set_value("imported · netG.pth").run()
    assert not page.exception, page.exception
    row = table_with(page, "sharpness vs real images").set_index("model").loc["imported · netG.pth"]
    assert row["coverage"] is not None and row["FD"] is not None  # the figures the upload page stored


def test_a_grey_generator_marked_as_a_colour_dataset_gets_one_sentence_on_the_page(page):
    upload_file(page, netg_bytes(channels=1), "toyfaces")
    assert len(page.error) == 1 and not page.success
    assert "grey 32x32 images and toyfaces images are colour 32x32" in page.error[0].value
    page.selectbox(key="upload_trained_on").set_value("something else").run()  # it imports
    assert not page.exception and not page.error and "trained on something else" in page.success[0].value
    page.selectbox(key="upload_trained_on").set_value("toyfaces").run()  # chosen afterwards: refused the same way
    assert not page.exception and len(page.error) == 1
    assert page.error[0].value.startswith("netG.pth makes grey 32x32 images and toyfaces images are colour 32x32")
    assert "trained on something else" in page.success[0].value  # the import stays as it was


def test_the_experiments_comparison_includes_a_scored_import_of_the_same_dataset(root, page, tmp_path, monkeypatch):
    from latent_bundles import tiny_faces, train_tiny

    from training.recipes import experiments

    group = experiments.Group(name="tiny-dcgan", title="Tiny DCGAN", question="Is a tiny DCGAN any good?",
                              dataset="", base=("--model", "dcgan", "--data", "toyfaces"), keep=("generator",),
                              size_note="tiny", runs=(experiments.Run("baseline", "baseline"),
                                                      experiments.Run("wide", "latent 32", ("--latent-dim", "32"))))
    groups = tmp_path / "with-experiments"
    faces = tiny_faces()
    for run in group.runs:
        out = groups / experiments.ROOT_NAME / group.name / run.name
        experiments.finish_run(out, experiments.record(group, run), lambda out=out: train_tiny("dcgan", out, faces),
                               group.keep, progress=lambda _: None)
        (out / "metrics.json").write_text(json.dumps({"fd_precision_recall": {
            "model": {"fd": 30.0, "precision": 0.5, "recall": 0.2}, "real_floor": {"fd": 1.0}}}))
    for folder in ("toyfaces",):
        (groups / folder).symlink_to(root / folder)
    use_checkpoints(monkeypatch, groups)
    upload_file(page, netg_bytes(), "toyfaces")
    page.button(key="upload_score").click().run()
    assert not page.exception, page.exception
    page.switch_page("views/experiments.py").run()
    assert not page.exception, page.exception
    against = page.selectbox(key="experiments_b_tiny-dcgan")
    assert "imported · netG.pth" in against.options
    against.set_value("imported · netG.pth").run()
    assert not page.exception, page.exception
    assert any("against **imported · netG.pth**" in m.value and "FD" in m.value for m in page.markdown)
