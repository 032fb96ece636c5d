"""No command overwrites or deletes a user's files, and a plain mistake on the command line is one line on stderr.

Before: `train --out` into a folder of one's own files replaced its config.json and history.json and deleted its
hidden *.tmp files; `train` onto a finished bundle replaced it silently and kept the old run's snapshots;
`import-dcgan` onto a bundle kept the old history, metrics and snapshots; `sample --nrow 0`, `evaluate --batch-size
0`, an --out under a file and a damaged training state ended in Python tracebacks, and `evaluate --k 0` printed a
precision of 0.000."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO
from training.__main__ import main
from training.bundle import load_bundle, load_training_state, save_training_state

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ["--num-images", "40", "--image-size", "32", "--batch-size", "8", "--g-width", "8", "--d-width", "8",
        "--latent-dim", "8"]
TRAIN = ["train", *TINY, "--steps", "2", "--snapshot-steps", "0,1"]
FEATURENET = ["train-featurenet", "--num-images", "40", "--heldout", "8", "--image-size", "32", "--steps", "2",
              "--batch-size", "8", "--width", "4"]
# What a user may keep in a folder: none of it may change or disappear, whatever the command and its flags.
USER_FILES = {"notes.txt": b"my notes\n", ".draft.tmp": b"half a thought", "snapshots/favourite.png": b"mine"}
NOT_A_BUNDLE = {"config.json": b'{"learning_rate": 0.1}\n'}
# What an old run leaves that a replaced bundle must not keep (the names our writers use, contents faked).
OLD_RUN = {"metrics.json": b"{}", "latents.npz": b"old codes", "training_state.safetensors": b"old state",
           ".history.json.abc123.tmp": b"a write killed half-way"}


def put(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def state_dict_file(tmp_path_factory) -> Path:
    from training.models.dcgan import DCGANConfig, Generator

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("pth") / "netG.pth"
    torch.save(Generator(DCGANConfig(g_width=8)).state_dict(), path)
    return path


@pytest.fixture
def no_work(monkeypatch):
    """Any data loading or importing fails the test: a refused --out must be refused before any work."""
    def refuse(*args, **kwargs):
        raise AssertionError("work started although --out should have been refused")

    for target in ("training.data.registry.load_dataset", "training.metrics.real.load_real",
                   "training.untrusted.importers.import_tutorial_dcgan"):
        monkeypatch.setattr(target, refuse)


def shipped(root: Path, bundle: Path) -> Path:
    """A checkpoints/ tree holding one tiny bundle, as build-checkpoints expects."""
    shutil.copytree(bundle, root / "toyfaces" / "tiny")
    return root


COMMANDS = {  # each writes into `out`; build-checkpoints writes into out/toyfaces/tiny
    "train": lambda out, tmp, pth, bundle: [*TRAIN, "--out", str(out)],
    "train --resume": lambda out, tmp, pth, bundle: [*TRAIN, "--out", str(out), "--resume"],
    "train --overwrite": lambda out, tmp, pth, bundle: [*TRAIN, "--out", str(out), "--overwrite"],
    "train-featurenet --overwrite": lambda out, tmp, pth, bundle: [*FEATURENET, "--out", str(out), "--overwrite"],
    "import-dcgan --overwrite": lambda out, tmp, pth, bundle: ["import-dcgan", str(pth), "--out", str(out),
                                                               "--overwrite"],
    "build-checkpoints --out --overwrite": lambda out, tmp, pth, bundle: [
        "build-checkpoints", "--checkpoints", str(shipped(tmp / "checkpoints", bundle)),
        "--out", str(out.parent.parent), "--overwrite"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_no_command_writes_into_a_folder_of_the_users_own_files(command, tmp_path, state_dict_file, tiny_bundle,
                                                                 no_work, capsys):
    out = tmp_path / "mine" / "toyfaces" / "tiny"
    put(out, {**USER_FILES, **NOT_A_BUNDLE})
    before = tree(out)
    assert main(COMMANDS[command](out, tmp_path, state_dict_file, tiny_bundle)) == 2
    err = one_line_error(capsys)
    assert f"{out} already holds files that are not a Latent Explorer bundle (.draft.tmp, config.json" in err
    assert "choose another --out" in err
    assert tree(out) == before


def test_sample_never_replaces_a_file_unasked(tiny_bundle, tmp_path, capsys):
    put(tmp_path, USER_FILES)
    picture = tmp_path / "picture.png"
    picture.write_bytes(b"the user's picture")
    before = tree(tmp_path)
    for out, message in ((tmp_path, "is a folder; name the file to write"), (picture, "already exists; pass "
                         "--overwrite to replace it"), (tmp_path / "notes.txt", "--out must name a .png file")):
        assert main(["sample", str(tiny_bundle), "--out", str(out)]) == 2
        assert message in one_line_error(capsys)
    assert tree(tmp_path) == before
    assert main(["sample", str(tiny_bundle), "--out", str(tmp_path / "grid.png"), "--n", "4"]) == 0
    assert main(["sample", str(tiny_bundle), "--out", str(picture), "--n", "4", "--overwrite"]) == 0
    assert picture.read_bytes().startswith(b"\x89PNG")
    assert {k: v for k, v in tree(tmp_path).items() if k not in ("grid.png", "picture.png")} == {
        k: v for k, v in before.items() if k != "picture.png"}


REPLACING = {  # (command, what the refusal asks for, files the new bundle must have)
    "train": ([*TRAIN, "--steps", "1", "--snapshot-steps", "0"],
              "pass --resume to continue it or --overwrite to replace it",
              {"config.json", "weights.safetensors", "history.json", "snapshots/step_000000.png",
               "snapshots/step_000001.png"}),
    "import-dcgan": (["import-dcgan", "PTH"], "pass --overwrite to replace it", {"config.json", "weights.safetensors"}),
    "train-featurenet": (FEATURENET, "pass --overwrite to replace it",
                         {"config.json", "weights.safetensors", "history.json", "metrics.json"}),
}


@pytest.mark.parametrize("command", list(REPLACING))
def test_a_bundle_is_replaced_only_when_asked_and_only_its_own_files_go(command, tiny_bundle, state_dict_file,
                                                                        tmp_path, capsys):
    flags, hint, written = REPLACING[command]
    flags = [str(state_dict_file) if f == "PTH" else f for f in flags]
    out = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, out)  # a finished 4-step run with snapshots at steps 0, 2 and 4
    put(out, {**USER_FILES, **OLD_RUN})
    before = tree(out)
    assert main([*flags, "--out", str(out)]) == 2
    assert one_line_error(capsys) == f"error: {out} already holds a dcgan bundle (step 4); {hint}, or choose another " \
                                     "--out"
    assert tree(out) == before
    assert main([*flags, "--out", str(out), "--overwrite"]) == 0
    after = tree(out)
    assert {name: after.get(name) for name in USER_FILES} == USER_FILES
    assert set(after) - set(USER_FILES) == written  # nothing of the old run is left to describe the new one
    bundle = load_bundle(out)
    assert all(step <= (bundle.config.get("step") or 0) for step in bundle.snapshot_paths())


def test_build_checkpoints_replaces_shipped_bundles_in_place_and_keeps_other_files(tiny_bundle, tmp_path, capsys):
    root = shipped(tmp_path / "checkpoints", tiny_bundle)
    out = root / "toyfaces" / "tiny"
    put(out, {**USER_FILES, **OLD_RUN})
    assert main(["build-checkpoints", "--checkpoints", str(root)]) == 0  # replacing is what it is for: no flag
    assert "metrics.json described the old weights and was removed" in capsys.readouterr().out
    after = tree(out)
    assert {name: after.get(name) for name in USER_FILES} == USER_FILES
    assert not set(OLD_RUN) & set(after) and load_bundle(out).config["step"] == 4
    rebuilt = tmp_path / "rebuilt"
    assert main(["build-checkpoints", "--checkpoints", str(root), "--out", str(rebuilt)]) == 0
    capsys.readouterr()
    assert main(["build-checkpoints", "--checkpoints", str(root), "--out", str(rebuilt)]) == 2  # twice: asks first
    assert "already holds a dcgan bundle (step 4); pass --overwrite" in one_line_error(capsys)


def test_resume_keeps_the_users_files_and_refuses_a_damaged_state(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*TRAIN, "--out", str(out), "--keep-training-state"]) == 0
    capsys.readouterr()
    put(out, {**USER_FILES, ".config.json.x1y2z3.tmp": b"killed", "snapshots/.step_000003.png.abc.tmp": b"killed"})
    tensors, state = load_training_state(out)
    damaged = {k: v for k, v in state.items() if k != "config"}
    save_training_state(out, tensors, damaged)
    assert main([*TRAIN, "--steps", "3", "--out", str(out), "--resume"]) == 2
    assert "the training state has no config, so it is damaged" in one_line_error(capsys)  # was a KeyError
    save_training_state(out, tensors, state)
    assert main([*TRAIN, "--steps", "3", "--out", str(out), "--resume"]) == 0
    after = tree(out)
    assert {name: after.get(name) for name in USER_FILES} == USER_FILES  # a user's .draft.tmp is not ours to delete
    assert ".config.json.x1y2z3.tmp" not in after and "snapshots/.step_000003.png.abc.tmp" not in after


@pytest.fixture(scope="module")
def paths(tmp_path_factory, tiny_bundle, state_dict_file) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("mistakes")
    (folder / "a-file").write_text("a regular file")
    return {"BUNDLE": str(tiny_bundle), "FILE": str(folder / "a-file"), "DIR": str(folder), "PTH": str(state_dict_file),
            "PNG": str(folder / "grid.png"), "OUT": str(folder / "new"),
            "FEATURENET": str(REPO / "checkpoints" / "toyfaces" / "featurenet")}


PLAIN_MISTAKES = [  # (command, what the message says); argparse's own messages are fine, tracebacks are not
    ("sample BUNDLE --out DIR", "is a folder"),
    ("sample BUNDLE --out PNG --nrow 0", "--nrow must be at least 1 (got 0)"),
    ("sample BUNDLE --out PNG --nrow -3", "--nrow must be at least 1 (got -3)"),
    ("sample BUNDLE --out PNG --seed 1e23", "argument --seed: invalid int value: '1e23'"),
    ("sample BUNDLE --out PNG --seed 100000000000000000000000", "--seed must be a whole number from 0 to"),
    ("sample BUNDLE --out FILE/grid.png", "a file is in the way"),
    ("sample FEATURENET --out PNG", "which makes no images"),
    ("evaluate BUNDLE --batch-size 0", "--batch-size must be at least 1 (got 0)"),
    ("evaluate BUNDLE --k 0", "--k must be at least 1 (got 0)"),
    ("evaluate BUNDLE --samples -5", "--samples must be at least 1 (got -5)"),
    ("evaluate BUNDLE --seed -1", "--seed must be a whole number"),
    ("import-dcgan PTH --out FILE", "a file is in the way"),
    ("train --out OUT --num-images 0", "--num-images must be at least 1 (got 0)"),
    ("train --out OUT --image-size -32", "--image-size must be at least 1 (got -32)"),
    ("train --out OUT --threads 0", "--threads must be at least 1 (got 0)"),
    ("train --out OUT --data-seed -1", "--data-seed must be a whole number"),
    ("train --out OUT --snapshot-steps 0,-200", "argument --snapshot-steps: expected comma-separated step numbers"),
    ("train --out OUT --resume --overwrite", "pass only one"),
    ("train --out OUT --lr-g 0 --num-images 40", "lr_g must be between 0 and 1, got 0.0"),
    ("train-featurenet --out OUT --heldout 0", "--heldout must be at least 1 (got 0)"),
    ("train-featurenet --out OUT --width -4", "--width must be at least 1 (got -4)"),
    ("build-checkpoints --checkpoints OUT --dry-run --threads 0", "--threads must be at least 1 (got 0)"),
]


def command_line(paths: dict[str, str], command: str) -> list[str]:
    return ["".join((paths.get(head, head), slash, rest)) for head, slash, rest in
            (word.partition("/") for word in command.split())]


def said_once(returncode: int, stderr: str, message: str) -> None:
    assert returncode == 2 and "Traceback" not in stderr, stderr[-2000:]
    lines = stderr.strip().splitlines()
    assert message in lines[-1]
    if "argument" not in message:  # argparse prints its usage first; every other mistake is exactly one line
        assert len(lines) == 1 and lines[0].startswith("error: "), stderr


@pytest.mark.parametrize("command,message", PLAIN_MISTAKES)
def test_plain_mistakes_are_one_line_never_a_traceback(paths, capsys, command, message):
    # In this process (any exception but argparse's exit fails the test); the next test runs each as a real command.
    try:
        returncode = main(command_line(paths, command))
    except SystemExit as exc:
        returncode = exc.code
    said_once(returncode, capsys.readouterr().err, message)
    assert not Path(paths["OUT"]).exists() and not Path(paths["PNG"]).exists()


@pytest.mark.slow
@pytest.mark.parametrize("command,message", PLAIN_MISTAKES)
def test_plain_mistakes_from_the_real_command(paths, command, message):
    done = subprocess.run([sys.executable, "-m", "training", *command_line(paths, command)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    said_once(done.returncode, done.stderr, message)
    assert not Path(paths["OUT"]).exists() and not Path(paths["PNG"]).exists()
