"""The labs' experiments as shipped groups: one question per group, each run one option changed against the group's
baseline. `python -m training.recipes.experiments GROUP` trains a group the first
time; afterwards each run's config.json
holds its recipe and `python -m training build-checkpoints --only experiments/GROUP` rebuilds it.

Sizes fit a 2-core CPU: 32x32 images and narrow networks (width 16) wherever the lab's question is about how a
change moves training, not about fine detail, so a whole group trains in about 12 minutes on one thread.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from training.bundle import CONFIG_FILE, EXPERIMENT_KEY, atomic_write_json, read_config
from training.bundle.paths import REPO_CHECKPOINTS
from training.errors import LatentExplorerError
from training.models import registry

ROOT_NAME = "experiments"  # checkpoints/experiments/<group>/<run>
# How the divergence guard words a run it stopped (loops/divergence.py DivergenceGuard, loops/run.py Run.save).
_STOPPED = re.compile(r"^training (?:diverged|stopped) at step (\d+)")


@dataclass(frozen=True)
class Run:
    name: str  # folder name under the group
    label: str  # what a teacher reads: "classification weight 10"
    flags: tuple[str, ...] = ()  # the `python -m training train` flags that differ from the baseline


@dataclass(frozen=True)
class Group:
    name: str
    title: str
    question: str
    dataset: str  # the dataset's folder under a data root ("anime64"); "" for datasets with a default location
    base: tuple[str, ...]  # the baseline's `python -m training train` flags
    keep: tuple[str, ...]  # the networks each run ships (weights stored as float16)
    size_note: str
    runs: tuple[Run, ...] = field(default_factory=tuple)
    # Score every run against the baseline's images (the data-size group: a run trained on 1,000 faces must not
    # be judged against the same 1,000 faces it has learnt).
    score_on_baseline_data: bool = False

    @property
    def baseline(self) -> Run:
        return self.runs[0]

    def run(self, name: str) -> Run:
        for run in self.runs:
            if run.name == name:
                return run
        raise LatentExplorerError(f"group {self.name!r} has no run {name!r}; its runs: "
                                  f"{', '.join(r.name for r in self.runs)}")


_SMALL = "32x32 images and width-16 networks"


def _small(model: str, data: str, steps: int, batch: int, snapshots: str, every: int, *extra: str) -> tuple[str, ...]:
    """A baseline's flags: 32x32 images, width-16 networks."""
    return ("--model", model, "--data", data, "--image-size", "32", "--g-width", "16", "--d-width", "16",
            "--batch-size", str(batch), "--steps", str(steps), "--snapshot-steps", snapshots,
            "--checkpoint-every", str(every), *extra)


GROUPS: dict[str, Group] = {g.name: g for g in (
    Group(
        name="cgan-balance", title="Conditional GAN: balance and capacity",
        question="The anime lab changed one thing at a time in its conditional GAN and compared FID: how often D "
                 "learns, how much the classification loss weighs, the latent size, the learning rate and G's "
                 "activation. Which changes help, which hurt, and does classification weight 10 explode?",
        dataset="anime64",
        base=_small("cgan", "anime", 2000, 32, "0,100,250,500,1000,1500,2000", 250, "--num-images", "8000",
                    "--diverge-patience", "100"),
        keep=("generator",),
        size_note=f"{_SMALL} (the lab used 64x64), 8,000 of the 36,736 anime faces and 2,000 steps of 32 (8 passes): "
                  "long enough for faces with the asked-for colours, and for balance problems to show.",
        runs=(Run("baseline", "baseline (D every step, class weight 1, nz 100, lr 2e-4, ReLU)"),
              Run("d-every-2", "D updated every 2nd step", ("--d-every", "2")),
              Run("class-weight-2", "classification weight 2", ("--class-weight", "2")),
              Run("class-weight-10", "classification weight 10", ("--class-weight", "10")),
              Run("latent-200", "latent size 200", ("--latent-dim", "200")),
              Run("lr-5e-5", "learning rate 5e-5", ("--lr", "5e-5")),
              Run("leaky-relu-g", "LeakyReLU in G", ("--g-activation", "leaky_relu"))),
    ),
    Group(
        name="vae-kl", title="VAE: the KL weight",
        question="The VAE lab chose KL weight 1e-4 over 1e-5. What does the weight trade: sharp reconstructions "
                 "against codes that look like the N(0,1) prior the samples are drawn from?",
        dataset="celeba64",
        base=_small("vae", "celeba", 1000, 64, "0,100,250,500,1000", 250, "--kl-weight", "1e-4"),
        keep=("decoder", "encoder"),
        size_note=f"{_SMALL} (the lab used 64x64) and 1,000 steps: enough for the KL weight's trade-off to show.",
        runs=(Run("kl-1e-4", "KL weight 1e-4 (the lab's choice)"),
              Run("kl-1e-5", "KL weight 1e-5", ("--kl-weight", "1e-5")),
              Run("kl-1e-3", "KL weight 1e-3", ("--kl-weight", "1e-3"))),
    ),
    Group(
        name="noise-and-labels", title="GAN training noise and label tricks",
        question="The VAE lab's GAN trained more steadily on U(0,1) noise than on U(-1,1). Do we see that? And do "
                 "one-sided label smoothing and label flipping calm the discriminator?",
        dataset="celeba64",
        base=_small("dcgan", "celeba", 600, 64, "0,100,200,400,600", 100),
        keep=("generator",),
        size_note=f"{_SMALL} and 600 steps on the 10,000 CelebA faces: steadiness shows in the loss curves early.",
        runs=(Run("normal", "training noise N(0,1)"),
              Run("uniform-0-1", "training noise U(0,1)", ("--noise", "U(0,1)")),
              Run("uniform-pm1", "training noise U(-1,1)", ("--noise", "U(-1,1)")),
              Run("label-smoothing", "label smoothing 0.1", ("--label-smoothing", "0.1")),
              Run("label-flip", "label flipping 5%", ("--label-flip", "0.05"))),
    ),
    Group(
        name="data-size", title="How much data: 1,000 against 10,000 faces",
        question="The DCGAN homework's run on only 1,000 images looked bad. Same model, same steps: what do ten "
                 "times fewer faces cost?",
        dataset="celeba64",
        base=_small("dcgan", "celeba", 1500, 64, "0,100,500,1000,1500", 250),
        keep=("generator",),
        size_note=f"{_SMALL} and 1,500 steps (96 passes over 1,000 faces, 10 over 10,000); both runs are scored "
                  "against the same 10,000 faces.",
        runs=(Run("images-10000", "10,000 images"),
              Run("images-1000", "1,000 images", ("--num-images", "1000"))),
        score_on_baseline_data=True,
    ),
    Group(
        name="infogan", title="InfoGAN: codes nobody labelled",
        question="The anime lab's bonus: an InfoGAN gets a 10-valued categorical code and 2 continuous codes and "
                 "no labels. Which codes end up meaning something a class can see, and what does the size of the "
                 "unstructured noise z (16, the InfoGAN paper's 62, the DCGAN's 100) do to that?",
        dataset="",
        # The InfoGAN paper's learning rates (G 1e-3, D 2e-4). With z of 100 and both at 2e-4 the categorical code
        # changed the images but picked no class (23% purity in 3,000 steps); a 1,500-step trial with z of 16 at
        # these rates gave 88%, with z of 62 55%.
        base=_small("infogan", "fashion-mnist", 3000, 64, "0,250,500,1000,2000,3000", 500, "--latent-dim", "16",
                    "--lr-g", "1e-3", "--lr-d", "2e-4"),
        keep=("generator",),
        size_note="Fashion-MNIST (32x32 grey, width-16 networks, 3,000 steps, the InfoGAN paper's learning rates "
                  "G 1e-3 / D 2e-4) rather than faces: its ten classes give the categorical code something a class "
                  "can check by eye.",
        runs=(Run("infogan", "InfoGAN, z of 16 + 10 categories + 2 continuous codes"),
              Run("noise-62", "z of 62 (the InfoGAN paper's size for digits)", ("--latent-dim", "62")),
              Run("noise-100", "z of 100 (the DCGAN's size)", ("--latent-dim", "100")),
              Run("info-weight-2", "code loss weight 2", ("--info-weight", "2"))),
    ),
)}


def train_arguments(group: Group, run: Run, out: Path, data_root: str | None = None,
                    threads: int | None = None) -> list[str]:
    """The `python -m training train` command line of one run (flags repeated later win, as argparse does)."""
    args = ["train", *group.base, *run.flags, "--out", str(out), "--overwrite", "--name",
            f"{group.title}: {run.label}"]
    if data_root and group.dataset:
        args += ["--data-root", str(Path(data_root) / group.dataset)]
    if threads:
        args += ["--threads", str(threads)]
    return args


def record(group: Group, run: Run) -> dict:
    """What config.json says about the run's place in its group."""
    return {"group": group.name, "run": run.name, "label": run.label, "baseline": group.baseline.name,
            "changed": list(run.flags), "title": group.title, "question": group.question,
            "size_note": group.size_note, "score_on_baseline_data": group.score_on_baseline_data}


def stopped_step(exc: LatentExplorerError) -> int | None:
    """The step at which the divergence guard stopped a run, or None for any other error."""
    found = _STOPPED.match(str(exc))
    return int(found.group(1)) if found else None


def finish_run(out: Path, experiment: dict, train_call: Callable[[], object], keep: tuple[str, ...] | list[str],
               progress: Callable[[str], None] = print) -> dict:
    """Train (train_call), note in config.json whether the divergence guard stopped the run and where, then ship
    only `keep` as float16. A stopped run keeps its last good bundle: that is the experiment's result."""
    from training.bundle.slim import keep_networks
    from training.recipes.rebuild import strip_dataset_images

    experiment = {**experiment, "stopped": None}
    try:
        train_call()
    except LatentExplorerError as exc:
        step = stopped_step(exc)
        if step is None or not (out / CONFIG_FILE).exists():
            raise
        experiment["stopped"] = {"step": step, "message": str(exc)}
        progress(f"{out}: stopped at step {step}: {exc}")
    config = read_config(out)
    atomic_write_json(out / CONFIG_FILE, {**config, EXPERIMENT_KEY: experiment})
    keep_networks(out, list(keep), half=True)
    strip_dataset_images(out, config)  # a real dataset's held-out images may not ship; their positions do
    return experiment


def rebuild_run(config: dict, out: Path, train_call: Callable[[], object]) -> None:
    """build-checkpoints' step for one bundle: experiment runs keep their record and their slimming."""
    experiment = config.get(EXPERIMENT_KEY)
    if not experiment:
        train_call()
        return
    finish_run(out, experiment, train_call, config.get("networks_shipped") or ["generator"])


def baseline_path(path: Path) -> Path:
    """The folder of the baseline of the run at path."""
    experiment = read_config(path).get(EXPERIMENT_KEY) or {}
    return path.parent / experiment.get("baseline", path.name)


def evaluate_run(path: str | Path, samples: int = 500, data_root: str | None = None) -> dict:
    """Score one run and write its metrics.json; the data-size group scores every run on the baseline's data."""
    from training.bundle import load_bundle
    from training.metrics.evaluate import evaluate_bundle, write_metrics

    path = Path(path)
    config = read_config(path)
    bundle = load_bundle(path, with_training_networks=registry.trains_as_vae(config["family"]))
    experiment = config.get(EXPERIMENT_KEY) or {}
    if experiment.get("score_on_baseline_data"):
        dataset = read_config(baseline_path(path))["dataset"]
        bundle = replace(bundle, config={**bundle.config, "dataset": dataset})
    result = evaluate_bundle(bundle, samples=samples, data_root=data_root)
    if experiment.get("score_on_baseline_data"):
        result["scored_on"] = f"the baseline's {dataset.get('num_images')} images"
    write_metrics(path, result)
    return result


def train_group(group: Group, root: Path, data_root: str | None, threads: int | None,
                only: list[str] | None = None, evaluate: bool = True, samples: int = 500, train: bool = True) -> None:
    from training.__main__ import build_parser
    from training.cli import train as train_cli

    for run in group.runs:
        if only and run.name not in only:
            continue
        out = root / group.name / run.name
        if train:
            args = build_parser().parse_args(train_arguments(group, run, out, data_root, threads))
            print(f"== {group.name}/{run.name}: train {' '.join(run.flags) or '(baseline)'}", flush=True)
            finish_run(out, record(group, run), lambda a=args: train_cli.run(a), group.keep)
        if evaluate:
            evaluate_run(out, samples=samples,
                         data_root=str(Path(data_root) / group.dataset) if data_root and group.dataset else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.recipes.experiments", description=__doc__)
    parser.add_argument("group", choices=sorted(GROUPS))
    parser.add_argument("--runs", default=None, help="comma-separated run names (default: every run)")
    parser.add_argument("--checkpoints", default=str(REPO_CHECKPOINTS / ROOT_NAME), help="where the groups are written")
    parser.add_argument("--data-root", default=None, metavar="PATH",
                        help="the folder holding the datasets' folders (anime64, celeba64)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--samples", type=int, default=500, help="generated images per metric")
    parser.add_argument("--no-evaluate", action="store_true", help="train only")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="score the runs already there (after build-checkpoints, which drops their metrics)")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        train_group(GROUPS[args.group], Path(args.checkpoints), args.data_root, args.threads,
                    args.runs.split(",") if args.runs else None, not args.no_evaluate, args.samples,
                    train=not args.evaluate_only)
    except LatentExplorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
