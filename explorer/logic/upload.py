"""Bring your own generator: a student's uploaded state dict imported into a private folder as a bundle, marked as
trained on one of the class's datasets (or none), and scored beside the class's model of that dataset. No
Streamlit here; the page adds the bundle to the session's models and runs the scoring on the torch thread."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from training.bundle import paths as bundle_paths
from training.bundle.trained_on import TRAINED_ON, UNKNOWN, record_trained_on, shipped_generator
from training.data.location import PROCEDURAL_DATASETS, find_dataset_folder
from training.errors import LatentExplorerError
from training.metrics import scoring, wording
from training.metrics.manifold import SCORES
from training.untrusted.importers import import_tutorial_dcgan

EXTENSIONS = ("pth", "pt", "pkl")  # many courses name their torch.save files .pkl
# The "trained on" choices, "something else" first: a file says nothing about its data, so none is assumed.
SOMETHING_ELSE = "something else"
TRAINED_ON_CHOICES = (SOMETHING_ELSE, *TRAINED_ON)
# Generated images per model when the page scores: `evaluate` takes 2,000; half keeps the k-NN figures at its set
# size of 250 (they do not move, their intervals widen by about 1.4x: 4 pairs of sets instead of 8) and halves the
# time, so a first scoring (both models) fits in a minute on 2 cores.
SCORING_SAMPLES = 1000
YOURS, OURS = "imported generator", "class's model"  # the two sides, as the sentence names them


def import_root() -> Path:
    """Where imports live: under the temporary folder, as it is when the upload arrives."""
    return Path(tempfile.gettempdir()) / "latent-explorer-imports"


@dataclass(frozen=True)
class ImportResult:
    """An import that worked (its bundle folder, and the name the app lists it under) or why it did not."""

    folder: str | None = None
    error: str | None = None
    name: str | None = None
    trained_on: str | None = None  # the dataset it is marked as trained on; None: something else


def import_upload(name: str, data: bytes, limit_mb: int, trained_on: str | None = None,
                  checkpoints: str | Path | None = None) -> ImportResult:
    """Write the upload to a private temp folder and import it there; nothing of a failed upload stays.
    `trained_on` marks its dataset (checked against the file) as recorded by the bundles under `checkpoints`."""
    if len(data) > limit_mb * 1024 * 1024:
        return ImportResult(error=f"{name} is {len(data) / 2**20:.0f} MB, over this server's {limit_mb} MB limit "
                                  "(server.maxUploadSize in .streamlit/config.toml)", trained_on=trained_on)
    root = import_root()
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="import-", dir=root))
    upload = folder / "upload.pth"
    try:
        upload.write_bytes(data)
        out = import_tutorial_dcgan(upload, folder / "bundle", display_filename=name, trained_on=trained_on,
                                    checkpoints=checkpoints)
    except LatentExplorerError as exc:
        return ImportResult(error=str(exc), trained_on=trained_on)
    except Exception as exc:  # torch's own errors on a file no check foresaw: one student's upload, not a crash
        return ImportResult(error=f"{name}: cannot be read as a PyTorch state dict ({type(exc).__name__})",
                            trained_on=trained_on)
    finally:
        upload.unlink(missing_ok=True)
        if not (folder / "bundle" / "config.json").exists():
            shutil.rmtree(folder, ignore_errors=True)  # nothing of a failed upload stays on the server
    return ImportResult(folder=str(out), trained_on=trained_on)


def dataset_chosen(choice: str) -> str | None:
    """The dataset a "trained on" choice names; None for something else."""
    return None if choice == SOMETHING_ELSE else choice


def mark_trained_on(result: ImportResult, trained_on: str | None,
                    checkpoints: str | Path | None = None) -> tuple[ImportResult, str | None]:
    """The imported model marked as trained on another dataset (its earlier scores go), or the result unchanged and
    the one sentence saying why it cannot be."""
    try:
        record_trained_on(result.folder, trained_on, checkpoints)
    except LatentExplorerError as exc:
        return result, str(exc)
    return ImportResult(folder=result.folder, name=result.name, trained_on=trained_on), None


def reference_model(dataset: str, checkpoints: str | Path) -> Path | None:
    """The class's model an imported generator of `dataset` is scored beside (its DCGAN, else another)."""
    return shipped_generator(dataset, checkpoints)


def scoring_problem(dataset: dict, checkpoints: str | Path, data_root: str | None, ask: str) -> str | None:
    """None when a generator of this dataset record can be scored on this server, else the one sentence why not:
    no dataset named, no feature network or class's model of it, or no local copy of its images (`ask` says how
    to give one; toyfaces is drawn from its seed and always there)."""
    name = str(dataset.get("name") or UNKNOWN)
    if name == UNKNOWN:
        return ("Choose the dataset it was trained on above to score it against the class's model of that dataset "
                "(a generator trained on something else has no real images here to be compared with).")
    net = bundle_paths.featurenet_path(name, checkpoints)
    if not (net / "config.json").is_file():
        return f"This server has no {name} feature network ({net}), so it cannot score {name} generators."
    if reference_model(name, checkpoints) is None:
        return f"This server has no {name} model of the class to score it beside."
    if name in PROCEDURAL_DATASETS:
        return None
    try:
        find_dataset_folder({**(dataset.get("source") or {}), "name": name}, data_root, ask)
    except LatentExplorerError as exc:
        return f"It cannot be scored here because {exc}."
    return None


def _cell(row: dict, name: str) -> str:
    low, high = ((row.get("intervals") or {}).get(name) or (None, None))
    return f"{row[name]:.3f}" + (f" [{low:.2f}, {high:.2f}]" if low is not None else "")


def score_table(rows: dict[str, dict]) -> list[dict]:
    """One row per model (display name -> metrics row of `evaluate`): FD, KID and the k-NN scores with their 95%
    intervals, as `python -m training evaluate` prints them."""
    return [{"model": name, "FD": round(row["fd"], 3), "KID (std)": f"{row['kid']:.4f} ({row['kid_std']:.4f})",
             **{score: _cell(row, score) for score in SCORES}} for name, row in rows.items()]


def versus_sentence(yours: dict, ours: dict, our_name: str) -> str | None:
    """Which of the two is ahead on realism and on coverage, and whether the intervals can tell them apart, in the
    VAE vs GAN page's words; None when a row lacks the intervals."""
    names = (scoring.LEAD["realism"], scoring.LEAD["coverage"])
    mine = {n: e for n in names if (e := scoring.estimate(yours, n)) is not None}
    theirs = {n: e for n in names if (e := scoring.estimate(ours, n)) is not None}
    if len(mine) < 2 or len(theirs) < 2:
        return None
    # verdicts(a, b): realism +1 when b is ahead, coverage +1 when a is.
    realism, coverage = wording.verdicts(theirs, mine)
    clauses = [wording._clause(realism, YOURS, OURS, "realism", names[0]),
               wording._clause(coverage, OURS, YOURS, "coverage", names[1])]
    figures = "; ".join(f"{n} {wording.shown(mine[n])} for yours, {wording.shown(theirs[n])} for {our_name}"
                        for n in names)
    return (f"Beside {our_name}: {clauses[0]}; {clauses[1]} ({figures}; 95% intervals in brackets; "
            f"FD {yours['fd']:.2f} against {ours['fd']:.2f}, lower is better).")
