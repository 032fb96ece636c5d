"""The diversity table of docs/diversity.md, from the shipped generators (`python -m explorer.tools.diversity_report`).

For every generator: the sampling page's batches (64 samples, seed 0) under N(0,1), U(0,1) and N(-10,1), and the
mean sweep's rows (32 samples, seed 0) for means -6 to 6, each drawn with the functions the pages call. Each row
gets a strip of its first 8 samples (a small palette PNG under docs/diversity/), the old diversity figure (pooled
pixels) with the word it gave, and the new one (the dataset's feature network) with the word the page shows now.
Run it again after retraining a bundle and compare the words with what the strips show.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import torch

from training.bundle import paths as bundle_paths

REPO = bundle_paths.REPO_ROOT
GENERATORS = tuple(f"{dataset}/{family}" for dataset in ("toyfaces", "celeba", "anime") for family in
                   ("dcgan", "vae", "cgan")) + ("fashion-mnist/cgan", "fashion-mnist/vae")
PAGE_SAMPLES, SWEEP_SAMPLES, SEED = 64, 32, 0
SWEEP_MEANS = (-6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0)
SHOWN, TILE = 8, 32  # samples per strip, pixels per sample in it


def strip_png(images: torch.Tensor) -> bytes:
    """The first SHOWN images side by side at TILE pixels, as a 64-colour PNG (a few KB)."""
    from PIL import Image

    x = images[:SHOWN].float().clamp(-1, 1)
    if x.shape[-1] != TILE:
        x = torch.nn.functional.interpolate(x, size=(TILE, TILE), mode="area")
    x = ((x + 1) * 127.5).round().to(torch.uint8)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    row = torch.cat(list(x), dim=2).permute(1, 2, 0).numpy()  # (TILE, SHOWN * TILE, 3)
    picture = Image.fromarray(row).quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def harmless(images: torch.Tensor) -> torch.Tensor:
    """The same picture after a change nobody would call a new image: shifted by one pixel down and right, lightly
    blurred ([1, 2, 1] / 4 each way) and with 10% less contrast."""
    x = torch.nn.functional.pad(images, (1, 0, 1, 0), mode="replicate")[..., :-1, :-1]
    kernel = torch.tensor([1.0, 2.0, 1.0]) / 4
    kernel = (kernel[:, None] * kernel[None, :]).expand(x.shape[1], 1, 3, 3).contiguous()
    x = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), kernel,
                                   groups=x.shape[1])
    return (0.9 * x + 0.05).clamp(-1, 1)


def harmless_share(bundle, judge) -> float | None:
    """How far the harmless change moves a prior sample in the feature network, as a share of the median distance
    between two prior samples (the median over SWEEP_SAMPLES samples): what the same-image share is calibrated on."""
    from explorer.logic.diversity import judged_features
    from training.latent import sampling

    if judge is None:
        return None
    images = sampling.sample(bundle, bundle.prior, SWEEP_SAMPLES, SEED).images
    features = judged_features(judge, images)
    moved = (judged_features(judge, harmless(images)) - features).norm(dim=1).median()
    return float(moved / torch.pdist(features).median())


def both_measures(bundle, dist, n: int, prior_batch, reference, judge) -> tuple:
    """(old diagnostics in pixels, new diagnostics in the feature network, images) of one batch."""
    from explorer.logic.diagnostics import diagnose
    from training.latent import sampling

    drawn = sampling.sample(bundle, dist, n, SEED)
    args = (bundle.generator, dist, bundle.prior, drawn.codes, drawn.images, prior_batch.codes, prior_batch.images,
            reference)
    return diagnose(*args, judge=None), diagnose(*args, judge=judge), drawn.images


def generator_rows(path: Path, out: Path) -> list[dict]:
    """One dict per row of the table for one generator; writes its strips under `out`."""
    from explorer.logic.diagnostics import prior_norm_reference
    from explorer.logic.diversity import feature_judge
    from explorer.logic.sample import sample_and_diagnose
    from explorer.logic.sweep import mean_sweep
    from training.bundle import load_bundle
    from training.latent import sampling
    from training.latent.priors import LatentDistribution

    bundle = load_bundle(path)
    judge = feature_judge(bundle)
    reference = prior_norm_reference(bundle.prior, bundle.latent_dim)
    name = f"{path.parent.name}-{path.name}"
    rows = []
    page_prior = sampling.sample(bundle, bundle.prior, PAGE_SAMPLES, SEED)
    for label, dist in (("N(0,1)", LatentDistribution.normal(0, 1)), ("U(0,1)", LatentDistribution.uniform(0, 1)),
                        ("N(-10,1)", LatentDistribution.normal(-10, 1))):
        old, new, images = both_measures(bundle, dist, PAGE_SAMPLES, page_prior, reference, judge)
        # The page's own function must give the page's numbers: the table is what a class sees.
        page = sample_and_diagnose(bundle, dist, PAGE_SAMPLES, SEED).diagnostics
        assert page.diversity_ratio == new.diversity_ratio and page.verdict == new.verdict, (name, label)
        rows.append({"row": f"sampling page, {label}", "file": f"{name}_{label}", "old": old, "new": new,
                     "images": images})
    sweep = mean_sweep(bundle, list(SWEEP_MEANS), n=SWEEP_SAMPLES, seed=SEED)
    sweep_prior = sampling.sample(bundle, bundle.prior, SWEEP_SAMPLES, SEED)
    for swept in sweep.rows:
        old, new, images = both_measures(bundle, swept.dist, SWEEP_SAMPLES, sweep_prior, reference, judge)
        assert new.diversity_ratio == swept.diagnostics.diversity_ratio, (name, swept.mean)
        rows.append({"row": f"sweep, m = {swept.mean:g}", "file": f"{name}_m{swept.mean:+g}", "old": old,
                     "new": swept.diagnostics, "images": images})
    for row in rows:
        file = out / (row["file"].replace("(", "").replace(")", "").replace(",", "-") + ".png")
        file.write_bytes(strip_png(row["images"]))
        row["png"] = file
    return rows


def markdown(name: str, rows: list[dict], docs: Path, share: float | None) -> str:
    calibration = (f"A harmless change moves its prior samples by {share:.2f} of their median distance."
                   if share is not None else "No feature network: diversity in pixels.")
    lines = [f"### {name}", "", calibration, "",
             "| batch | first 8 samples | old figure (pixels) | old word | new figure | distinct images | new word |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        old, new = row["old"], row["new"]
        distinct = f"{new.distinct_images} of {new.judged_samples}" if new.distinct_images is not None else "n/a"
        lines.append(f"| {row['row']} | ![{row['row']}]({row['png'].relative_to(docs).as_posix()}) | "
                     f"{old.diversity_ratio:.0%} | {old.verdict} | **{new.diversity_ratio:.0%}** | {distinct} | "
                     f"**{new.verdict}** |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", default=str(REPO / "checkpoints"))
    parser.add_argument("--docs", default=str(REPO / "docs"), help="writes <docs>/diversity/*.png")
    parser.add_argument("--only", action="append", help="dataset/family, e.g. celeba/dcgan (repeatable)")
    args = parser.parse_args(argv)
    docs = Path(args.docs)
    out = docs / "diversity"
    out.mkdir(parents=True, exist_ok=True)
    for generator in args.only or GENERATORS:
        path = Path(args.checkpoints) / generator
        if not (path / "config.json").exists():
            print(f"### {generator}\n\nnot here\n")
            continue
        start = time.perf_counter()
        from explorer.logic.diversity import feature_judge
        from training.bundle import load_bundle

        bundle = load_bundle(path)
        print(markdown(generator, generator_rows(path, out), docs, harmless_share(bundle, feature_judge(bundle))))
        print(f"({time.perf_counter() - start:.0f} s)\n", flush=True)


if __name__ == "__main__":
    main()
