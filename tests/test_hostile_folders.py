"""Folders and flags a careless or hostile user gives the app: a bundle folder this process may list but not enter,
a runs folder typed on the Train live page, an experiment record of the wrong shape, a --device torch cannot train
on, bundle file names without a bundle, and a snapshot that links to a picture elsewhere on the server. Each is
refused or left out with one sentence, on the page and in the CLI (one line, exit code 2), and the rest still works."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from latent_bundles import APP, use_checkpoints
from streamlit.testing.v1 import AppTest

from training.__main__ import main
from training.bundle import find_bundles, load_bundle, read_config
from training.errors import LatentExplorerError

REPO = Path(__file__).resolve().parent.parent
BOUND = 10.0  # seconds a refusal may take on a busy machine (it takes milliseconds; this only catches a hang)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.fixture
def root(tmp_path, tiny_bundle) -> Path:
    """A checkpoints folder with two copies of one tiny bundle: toyfaces/good and toyfaces/locked."""
    for name in ("good", "locked"):
        shutil.copytree(tiny_bundle, tmp_path / "checkpoints" / "toyfaces" / name)
    return tmp_path / "checkpoints"


def lock(monkeypatch, folder: Path) -> None:
    """Make `folder` behave as mode 644 does for a user other than root (tests run as root, which ignores
    permission bits): it can be listed, but no name inside it can be looked up."""
    inside = str(folder) + os.sep

    def refusing(real):
        def call(path, *args, **kwargs):
            if isinstance(path, (str, bytes, os.PathLike)) and os.fsdecode(path).startswith(inside):
                raise PermissionError(13, "Permission denied", os.fsdecode(path))
            return real(path, *args, **kwargs)
        return call

    monkeypatch.setattr(os, "stat", refusing(os.stat))
    monkeypatch.setattr(os, "lstat", refusing(os.lstat))


# --- 1. a bundle folder that can be listed but not entered -----------------------------------------------------

def test_a_folder_that_cannot_be_entered_is_refused_in_one_sentence(root, monkeypatch, capsys):
    locked = root / "toyfaces" / "locked"
    lock(monkeypatch, locked)
    started = time.perf_counter()
    assert find_bundles(root) == [root / "toyfaces" / "good", locked]  # listed: its config.json is in the listing
    with pytest.raises(LatentExplorerError, match=r"locked: cannot open the bundle folder \(Permission denied\)"):
        read_config(locked)  # was PermissionError from Path.exists()
    assert time.perf_counter() - started < BOUND
    assert load_bundle(root / "toyfaces" / "good").generator is not None
    assert main(["info", str(locked)]) == 2
    assert "cannot open the bundle folder" in one_line_error(capsys)
    assert main(["train", "--out", str(locked), "--overwrite"]) == 2  # was PermissionError from Path.is_dir()
    assert one_line_error(capsys) == (f"error: cannot look inside the output folder {locked}: Permission denied; "
                                      "fix its permissions or choose another --out")


def test_every_page_still_works_and_says_which_folder_it_cannot_open(root, monkeypatch):
    from explorer.core import bundles

    use_checkpoints(monkeypatch, root)
    lock(monkeypatch, root / "toyfaces" / "locked")
    assert list(bundles.shipped().values()) == [str(root / "toyfaces" / "good")]
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert len(at.sidebar.selectbox(key="bundle_select").options) == 1
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert "locked: cannot open the bundle folder (Permission denied)" in captions
    at.switch_page("views/experiments.py").run()
    assert not at.exception, at.exception


SETPRIV = shutil.which("setpriv")


def as_unprivileged(command: list[str]) -> list[str]:
    """`command` as a process that obeys permission bits: as it is for a normal user, without the two
    capabilities that let root ignore them otherwise."""
    if os.geteuid() != 0:
        return command
    return [SETPRIV, "--bounding-set", "-dac_override,-dac_read_search", *command]


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() == 0 and SETPRIV is None, reason="root without setpriv cannot obey permission bits")
def test_a_real_mode_644_folder(root):
    """The real thing: chmod 644 on a bundle folder, seen by a process that obeys permission bits."""
    locked = root / "toyfaces" / "locked"
    env = {**os.environ, "PYTHONPATH": str(REPO), "LATENT_EXPLORER_CHECKPOINTS": str(root)}
    probe = subprocess.run(as_unprivileged(["true"]), capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot drop the capabilities here: {probe.stderr.decode()[-200:]}")
    locked.chmod(0o644)
    try:
        if subprocess.run(as_unprivileged(["test", "-e", str(locked / "config.json")])).returncode == 0:
            pytest.skip("this process ignores permission bits even without the capabilities")
        info = subprocess.run(as_unprivileged([sys.executable, "-m", "training", "info", str(locked)]), env=env,
                              cwd=REPO, capture_output=True, text=True, timeout=300)
        assert info.returncode == 2 and "Traceback" not in info.stderr, info.stderr[-2000:]
        assert info.stderr.strip().splitlines() == [f"error: {locked}: cannot open the bundle folder (Permission "
                                                    "denied); fix its permissions"]
        train = subprocess.run(as_unprivileged([sys.executable, "-m", "training", "train", "--out", str(locked),
                                                "--device", "cpu"]), env=env, cwd=REPO, capture_output=True,
                               text=True, timeout=300)
        assert train.returncode == 2 and train.stderr.strip().splitlines() == [
            f"error: cannot look inside the output folder {locked}: Permission denied; fix its permissions or choose "
            "another --out"], train.stderr[-2000:]
        listing = subprocess.run(as_unprivileged([
            sys.executable, "-c", "import json; from explorer.core import bundles; "
            "print(json.dumps([list(bundles.shipped().values()), list(bundles.unreadable())]))"]),
            env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert listing.returncode == 0, listing.stderr[-2000:]
        assert json.loads(listing.stdout.strip().splitlines()[-1]) == [[str(root / "toyfaces" / "good")],
                                                                      [str(locked)]]
    finally:
        locked.chmod(0o755)


# --- 2. the Train live page saves only into the server's runs folder --------------------------------------------

@pytest.fixture
def live_runs(tmp_path, monkeypatch):
    """The page's live-run manager, whose runs are recorded instead of started (no process, no training)."""
    from training.live import manager as live_manager
    from training.live.manager import LiveRuns

    started = []
    monkeypatch.setattr(LiveRuns, "_start", lambda self, run: started.append(run))
    monkeypatch.setenv(live_manager.RUNS_VARIABLE, str(tmp_path / "server-runs"))
    runs = LiveRuns(limit=1, threads=1, time_limit=600, heartbeat_timeout=30, root=tmp_path / "live")
    monkeypatch.setattr(live_manager, "_MANAGER", runs)
    runs.started = started
    yield runs
    runs.shutdown()


def test_a_visitor_names_the_run_but_never_its_folder(live_runs, tmp_path):
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("views/train_live.py").run()
    at.radio(key="live_keep").set_value("in the server's runs folder").run()
    assert not at.exception
    assert not [t for t in at.text_input if t.key == "live_runs_folder"]  # no path box any more
    at.text_input(key="live_run_name").set_value("../../etc/**bold**<script>`x`\x1b[31m").run()
    at.button(key="live_start").click().run()
    assert not at.exception and not at.error
    deadline = time.time() + BOUND
    while not live_runs.started and time.time() < deadline:
        time.sleep(0.05)
    run = live_runs.started[0]
    assert run.keep and run.out.parent == tmp_path / "server-runs"
    assert re.fullmatch(r"toyfaces-dcgan-\d{6}", run.out.name), run.out.name
    assert re.fullmatch(r"live · \.\. \.\. etc bold script x 31m · \d{6}", run.name), run.name
    assert not (tmp_path / "etc").exists()


def test_the_manager_cleans_any_name_and_keeps_the_folder_its_own(live_runs, tmp_path):
    from training.live.manager import NAME_LENGTH, display_name, runs_folder
    from training.live.settings import LiveSettings

    assert runs_folder() == tmp_path / "server-runs"
    assert display_name("  ../x/\u202e\u200dy\n[link](http://a)  ") == ".. x y link (http a)"
    assert display_name("*" * 50) == "" and len(display_name("a" * 10_000)) == NAME_LENGTH
    run = live_runs.submit("tab", LiveSettings(), alive=lambda: True, runs_folder=runs_folder(),
                           name="/tmp/elsewhere", wait=0)
    assert run.out.parent == runs_folder() and run.name.startswith("live · tmp elsewhere · ")
    temporary = live_runs.submit("other tab", LiveSettings(dataset="toyfaces", family="vae"), alive=lambda: True,
                                 wait=0)
    assert temporary.out.parent == tmp_path / "live" / "bundles" and temporary.name.startswith("live · toyfaces VAE")


def test_without_a_setting_runs_are_kept_in_the_repositorys_runs_folder(monkeypatch):
    from training.live import manager as live_manager

    monkeypatch.delenv(live_manager.RUNS_VARIABLE, raising=False)
    assert live_manager.runs_folder() == REPO / "runs" / "live"


# --- 3. an experiment record of the wrong shape -----------------------------------------------------------------

EXPERIMENT = {"group": "g", "title": "A tiny group", "question": "Does it render?", "baseline": "base",
              "changed": [], "stopped": None, "score_on_baseline_data": False}
BAD_EXPERIMENTS = [  # config.json's "experiment", and what the refusal says
    ("vae-kl", "'experiment' must be an object, not str"),
    (["vae-kl"], "'experiment' must be an object, not list"),
    ({**EXPERIMENT, "group": ["g"]}, "'experiment.group' must be a str, not list"),
    ({**EXPERIMENT, "run": {"a": 1}}, "'experiment.run' must be a str, not dict"),
    ({**EXPERIMENT, "changed": "--lr 1"}, "'experiment.changed' must be a list, not str"),
    ({**EXPERIMENT, "changed": [1]}, "'experiment.changed' must be a list of option strings"),
    ({**EXPERIMENT, "stopped": {"step": "3"}}, "'experiment.stopped' must hold a whole 'step'"),
    ({**EXPERIMENT, "stopped": [3]}, "'experiment.stopped' must be a dict, not list"),
    ({**EXPERIMENT, "score_on_baseline_data": "yes"}, "'experiment.score_on_baseline_data' must be a bool"),
]


def set_config(path: Path, **entries) -> None:
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, **entries}))


@pytest.mark.parametrize("experiment,message", BAD_EXPERIMENTS, ids=[m for _, m in BAD_EXPERIMENTS])
def test_a_wrong_experiment_record_is_refused_like_any_config_field(experiment, message, tiny_bundle, tmp_path,
                                                                    capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_bundle, run)
    set_config(run, experiment=experiment)
    with pytest.raises(LatentExplorerError, match=re.escape(message)):
        read_config(run)
    assert main(["info", str(run)]) == 2 and message in one_line_error(capsys)


def test_networks_shipped_must_name_networks(tiny_bundle, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_bundle, run)
    set_config(run, networks_shipped=[1])
    with pytest.raises(LatentExplorerError, match="'networks_shipped' must be a list of network names"):
        read_config(run)


def test_the_experiments_page_refuses_the_bad_run_and_shows_the_others(tiny_bundle, tmp_path, monkeypatch):
    group = tmp_path / "checkpoints" / "experiments" / "g"
    for name, experiment in (("base", {**EXPERIMENT, "run": "base", "label": "the baseline"}),
                             ("other", {**EXPERIMENT, "run": "other", "label": "another run"}),
                             ("bad-string", "vae-kl"), ("bad-list", {**EXPERIMENT, "group": ["g"]})):
        shutil.copytree(tiny_bundle, group / name)
        set_config(group / name, experiment=experiment)
    use_checkpoints(monkeypatch, tmp_path / "checkpoints")
    at = AppTest.from_file(APP, default_timeout=120)
    started = time.perf_counter()
    at.switch_page("views/experiments.py").run()
    assert time.perf_counter() - started < 60  # the page with its figures; the refusal itself is milliseconds
    assert not at.exception, at.exception
    warnings = [w.value for w in at.warning if w.value.startswith("Not shown: ")]
    assert len(warnings) == 2
    assert any("bad-string/config.json: 'experiment' must be an object, not str" in w for w in warnings)
    assert any("bad-list/config.json: 'experiment.group' must be a str, not list" in w for w in warnings)
    assert at.selectbox(key="experiments_group").value == "g"
    verdicts = " ".join(m.value for m in at.markdown)
    assert "**the baseline**" in verdicts and "**another run**" in verdicts


# --- 4. a --device torch cannot train on ------------------------------------------------------------------------

@pytest.fixture
def no_work(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("work started although --device should have been refused")

    for target in ("training.data.registry.load_dataset", "training.metrics.real.load_real"):
        monkeypatch.setattr(target, refuse)


@pytest.mark.parametrize("command", ["train", "train-featurenet"])
@pytest.mark.parametrize("device", ["bogus", "meta", "cpu:-1", "CPU", "cuda:x", "cpu:99999999999999999999"])
def test_a_device_torch_cannot_train_on_is_one_line(command, device, tmp_path, no_work, capsys):
    started = time.perf_counter()
    assert main([command, "--device", device, "--out", str(tmp_path / "out")]) == 2
    assert time.perf_counter() - started < BOUND
    assert one_line_error(capsys) == f"error: --device must be auto, cpu, cuda, cuda:N or mps (got {device!r})"
    assert not (tmp_path / "out").exists()


def test_a_gpu_that_is_not_there_is_named(tmp_path, no_work, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert main(["train", "--device", "cuda:2", "--out", str(tmp_path / "out")]) == 2
    assert one_line_error(capsys) == ("error: --device cuda:2 names a GPU this machine does not have (it has 2: "
                                      "cuda:0 to cuda:1)")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["train-featurenet", "--device", "cuda", "--out", str(tmp_path / "out")]) == 2
    assert "no CUDA GPU is available; use --device cpu" in one_line_error(capsys)


# --- 5. bundle file names without a bundle; snapshots that link elsewhere ------------------------------------------

USERS_FILES = {"weights.safetensors": b"the user's own model", "history.json": b"{\"mine\": []}",
               "metrics.json": b"{}"}


@pytest.mark.parametrize("flags", [[], ["--overwrite"], ["--resume"]], ids=["plain", "overwrite", "resume"])
def test_our_file_names_without_our_config_are_the_users(flags, tmp_path, no_work, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    for name, data in USERS_FILES.items():
        (out / name).write_bytes(data)
    assert main(["train", "--out", str(out), *flags]) == 2
    assert one_line_error(capsys) == (f"error: {out} already holds files that are not a Latent Explorer bundle "
                                      "(history.json, metrics.json, weights.safetensors); choose another --out (a "
                                      "new or empty folder) so that none of them is overwritten")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == USERS_FILES
    if flags == ["--overwrite"]:
        assert main(["train-featurenet", "--out", str(out), "--overwrite"]) == 2
        assert "not a Latent Explorer bundle" in one_line_error(capsys)


def test_a_run_killed_before_its_first_save_may_still_be_replaced(tmp_path):
    from training.bundle.output_folder import check_folder

    out = tmp_path / "killed"
    (out / "snapshots").mkdir(parents=True)
    (out / "snapshots" / "step_000000.png").write_bytes(b"png")
    (out / ".weights.safetensors.k3j2.tmp").write_bytes(b"half")
    with pytest.raises(LatentExplorerError, match=r"already holds an unfinished run \(nothing saved yet\)"):
        check_folder(out)
    check_folder(out, overwrite=True)
    check_folder(out, resume=True, can_resume=True)


@pytest.fixture
def linked(tiny_bundle, tmp_path) -> Path:
    """A copy of the tiny bundle whose step-2 snapshot is a link to a picture outside it."""
    bundle = tmp_path / "checkpoints" / "toyfaces" / "linked"
    shutil.copytree(tiny_bundle, bundle)
    secret = tmp_path / "private.png"
    shutil.copy(bundle / "snapshots" / "step_000002.png", secret)
    (bundle / "snapshots" / "step_000002.png").unlink()
    (bundle / "snapshots" / "step_000002.png").symlink_to(secret)
    return bundle


def test_a_snapshot_that_links_elsewhere_is_left_out_with_one_sentence(linked, tmp_path, capsys):
    bundle = load_bundle(linked)
    assert list(bundle.snapshot_paths()) == [0, 4]
    assert bundle.snapshot_problem() == (f"{linked / 'snapshots'}: 1 snapshot left out (step_000002.png): a "
                                         "snapshot must be a file inside the bundle, not a symbolic link")
    assert main(["info", str(linked)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert "snapshots at [0, 4]" in out[0] and out[1] == f"note: {bundle.snapshot_problem()}"
    # A snapshots folder that is itself a link: all of it is left out.
    moved = tmp_path / "elsewhere"
    (linked / "snapshots").rename(moved)
    (linked / "snapshots").symlink_to(moved, target_is_directory=True)
    bundle = load_bundle(linked)
    assert bundle.snapshot_paths() == {} and "(snapshots/ itself)" in bundle.snapshot_problem()


def test_the_replay_page_shows_the_rest_and_says_what_it_left_out(linked, monkeypatch):
    use_checkpoints(monkeypatch, linked.parent.parent)
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("views/replay.py").run()
    assert not at.exception, at.exception
    assert at.select_slider(key="replay_step").options == ["0", "4"]
    assert [w.value for w in at.sidebar.warning] == [load_bundle(linked).snapshot_problem()]
