"""`pip install .` gives the same dependencies as requirements.txt and a `latent-explorer` command."""

from __future__ import annotations

from pathlib import Path

import tomllib

from explorer import launch

REPO = Path(__file__).resolve().parent.parent


def _requirements() -> list[str]:
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return sorted(line.split("#")[0].strip() for line in lines if line.split("#")[0].strip())


def test_pyproject_pins_what_requirements_txt_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["test"]
    assert sorted(declared) == _requirements()
    assert project["scripts"]["latent-explorer"] == "explorer.launch:main"


def test_the_command_runs_training_commands(capsys):
    assert launch.main(["info", str(REPO / "checkpoints" / "toyfaces" / "dcgan")]) == 0
    assert "dcgan" in capsys.readouterr().out


def test_the_command_says_what_it_does(capsys):
    assert launch.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "starts the app" in out and "train" in out
