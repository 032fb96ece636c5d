import json

from training.__main__ import main
from training.bundle import load_bundle


def test_train_then_info(tmp_path, capsys):
    out = tmp_path / "bundle"
    code = main(["train", "--data", "toyfaces", "--num-images", "40", "--image-size", "32", "--steps", "3",
                 "--batch-size", "8", "--g-width", "8", "--d-width", "8", "--latent-dim", "12",
                 "--snapshot-steps", "0,1", "--noise", "U(-1,1)", "--out", str(out), "--name", "tiny"])
    assert code == 0
    bundle = load_bundle(out)
    assert bundle.name == "tiny" and bundle.prior.label == "U(-1, 1)"
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["steps"] == 3 and config["dataset"]["source"]["num_images"] == 40
    assert main(["info", str(out)]) == 0
    assert "dcgan on toyfaces" in capsys.readouterr().out


def test_user_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope")]) == 2
    assert "no such bundle folder" in capsys.readouterr().err
    assert main(["train", "--steps", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--steps must be at least 1" in capsys.readouterr().err
    assert main(["train", "--noise", "gauss", "--out", str(tmp_path / "x")]) == 2
    assert main(["train", "--data", "imagenet", "--steps", "1", "--out", str(tmp_path / "x")]) == 2
    assert "unknown dataset" in capsys.readouterr().err


def test_info_on_a_feature_network(capsys):
    from tests.conftest import REPO

    assert main(["info", str(REPO / "checkpoints" / "toyfaces" / "featurenet")]) == 0
    assert "feature network for toyfaces" in capsys.readouterr().out
