"""A generator that computes NaN or infinity (a broken BatchNorm, codes past float32) gets a plain "non-finite"
verdict: never "Healthy", never a "nan" printed as a number, never a NaN image drawn as if it were a picture."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
from latent_bundles import APP, make_root, open_page, use_checkpoints
from streamlit.testing.v1 import AppTest
from torch import nn
from wrapped import bundle_of

from explorer.logic.compare import ModelScores, comparison_rows, explain_comparison
from explorer.logic.diagnostics import diagnose, explain, nonfinite_count, prior_norm_reference, rounded, shown
from explorer.logic.figures import cross_out_nonfinite, crossed_out_note, image_grid
from explorer.logic.sweep import explain_sweep, mean_sweep, summarise
from training.errors import LatentExplorerError
from training.latent.priors import MAX_MAGNITUDE, STANDARD_NORMAL, LatentDistribution, sample_latents
from training.latent.sampling import decode
from training.models.dcgan import DCGANConfig, Generator

DIM = 16
# "nan" or "inf" printed as a number ("diversity nan%", "inf x"); the words NaN and infinite are fine.
PRINTED_NONFINITE = re.compile(r"(?<![A-Za-z])(nan|inf)(?![A-Za-z])")


class Poisoned(nn.Module):
    """Wraps a real generator and turns the images of the chosen codes into NaN (or +inf)."""

    def __init__(self, inner: nn.Module, broken, value: float = math.nan):
        super().__init__()
        self.inner, self.broken, self.value = inner, broken, value

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        images = self.inner(z).clone()
        images[self.broken(z)] = self.value
        return images


@pytest.fixture(scope="module")
def real_generator() -> Generator:
    torch.manual_seed(0)
    return Generator(DCGANConfig(latent_dim=DIM, image_size=32, g_width=4)).eval()


def generate(generator: nn.Module, z: torch.Tensor) -> torch.Tensor:
    return decode(bundle_of(generator, latent_dim=DIM), z)


def run(generator: nn.Module, dist: LatentDistribution, n: int = 8):
    z = sample_latents(dist, n, DIM, seed=0)
    prior_z = sample_latents(STANDARD_NORMAL, n, DIM, seed=0)
    return diagnose(generator, dist, STANDARD_NORMAL, z, generate(generator, z), prior_z, generate(generator, prior_z),
                    prior_norm_reference(STANDARD_NORMAL, DIM))


def assert_plain(text: str) -> None:
    assert "healthy" not in text.lower()
    assert not PRINTED_NONFINITE.search(text), text


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_every_image_broken_is_non_finite_not_healthy(real_generator, value):
    d = run(Poisoned(real_generator, lambda z: slice(None), value), STANDARD_NORMAL)
    assert d.verdict == "non-finite" and d.nonfinite_images == 8 and d.prior_nonfinite_images == 8
    text = explain(d)
    assert text.startswith("The generator produced NaN or infinite pixel values for 8 of 8 samples: its weights, or "
                           "the codes it was given, are outside what it can compute; none of them is a real image.")
    assert "fault is in the model's weights" in text  # the training prior's samples are broken too
    assert_plain(text)
    assert math.isnan(d.saturated)  # a NaN pixel is not counted as "not saturated"


def test_a_negative_running_variance_gives_the_verdict(real_generator):
    broken = Generator(real_generator.config).eval()
    broken.load_state_dict(real_generator.state_dict())
    with torch.no_grad():
        broken.first_batchnorm.running_var.fill_(-1.0)
    d = run(broken, LatentDistribution.normal(-10, 1))
    assert d.verdict == "non-finite" and d.nonfinite_images == 8
    assert_plain(explain(d))


def test_some_broken_samples_are_counted(real_generator):
    every_other = Poisoned(real_generator, lambda z: torch.arange(len(z)) % 2 == 0)
    assert nonfinite_count(generate(every_other, sample_latents(STANDARD_NORMAL, 8, DIM, seed=0))) == 4
    d = run(every_other, LatentDistribution.normal(-10, 1))
    assert d.verdict == "non-finite" and d.nonfinite_images == 4 and d.prior_nonfinite_images == 4
    text = explain(d)
    assert "for 4 of 8 samples" in text and "those are not real images" in text
    assert_plain(text)


def test_only_the_prior_batch_broken(real_generator):
    # NaN for short codes only: the prior's codes break, the far-away N(-10, 1) batch does not.
    d = run(Poisoned(real_generator, lambda z: z.norm(dim=1) < 20), LatentDistribution.normal(-10, 1))
    assert d.nonfinite_images == 0 and d.prior_nonfinite_images == 8 and d.verdict == "non-finite"
    text = explain(d)
    assert "These samples are finite" in text and "nothing to compare these samples with" in text
    assert_plain(text)


def test_nonfinite_codes_are_said_not_printed(real_generator):
    z = sample_latents(STANDARD_NORMAL, 8, DIM, seed=0)
    z[0, 0] = math.inf
    prior_z = sample_latents(STANDARD_NORMAL, 8, DIM, seed=0)
    d = diagnose(real_generator, STANDARD_NORMAL, STANDARD_NORMAL, z, generate(real_generator, z), prior_z,
                 generate(real_generator, prior_z), prior_norm_reference(STANDARD_NORMAL, DIM))
    assert d.nonfinite_codes == 1 and d.verdict == "non-finite"
    text = explain(d)
    assert "1 of 8 codes drawn from N(0, 1) hold NaN or infinite values" in text
    assert_plain(text)


@pytest.mark.parametrize("make", [lambda: LatentDistribution.normal(1e300, 1e300),
                                  lambda: LatentDistribution.normal(0, 2 * MAX_MAGNITUDE),
                                  lambda: LatentDistribution.uniform(-1e7, 0),
                                  lambda: LatentDistribution.from_json({"kind": "normal", "mean": 10**400, "std": 1}),
                                  lambda: LatentDistribution.parse("N(1e300,1e300)")])
def test_a_huge_distribution_is_refused_with_a_reason(make):
    with pytest.raises(LatentExplorerError, match=r"within ±1e\+06|finite numbers"):
        make()


def test_shipped_priors_are_within_the_bound():
    # The presets are built when training.latent.priors is imported, so they are checked by importing it.
    for config in Path(__file__).resolve().parent.parent.glob("checkpoints/*/*/config.json"):
        prior = json.loads(config.read_text()).get("prior")
        if prior is not None:
            LatentDistribution.from_json(prior)  # raises past the bound


def test_the_largest_allowed_distribution_gives_finite_words(real_generator):
    d = run(real_generator, LatentDistribution.normal(MAX_MAGNITUDE, MAX_MAGNITUDE))
    assert d.verdict != "healthy" and math.isfinite(d.norm_mean)
    assert_plain(explain(d))


def test_one_sample_prints_no_nan(real_generator):
    text = explain(run(real_generator, STANDARD_NORMAL, n=1))
    assert not PRINTED_NONFINITE.search(text), text
    assert "cosine" not in text and "the sample looks like one from the training prior" in text


def test_page_number_formatting():
    assert shown(math.nan, ".0%") == "n/a" and shown(None, ".1f") == "n/a" and shown(math.inf, ".2f", "x") == "n/a"
    assert shown(0.5, ".0%") == "50%" and shown(1.234, ".2f", "x") == "1.23x"
    assert rounded(math.nan, 3) is None and rounded(None, 3) is None and rounded(1.23456, 2) == 1.23


def test_broken_samples_are_crossed_out_not_drawn_black():
    images = torch.zeros(3, 3, 16, 16)
    images[1, 0, 4, 4] = math.nan
    crossed = cross_out_nonfinite(images)
    assert torch.equal(crossed[0], images[0]) and torch.equal(crossed[2], images[2])
    assert crossed[1, :, 0, 0].eq(-1).all() and crossed[1, :, 0, 15].eq(-1).all()  # both diagonals
    assert crossed[1, :, 0, 7].eq(0).all()  # grey elsewhere
    grid = image_grid(torch.full((2, 3, 16, 16), math.nan), scale=1)
    assert (grid == 128).any() and (grid == 0).any()  # grey tiles with black crosses, not plain black
    assert crossed_out_note(0, 8) is None
    assert crossed_out_note(3, 8) == ("3 of 8 samples are crossed out: they hold NaN or infinite pixel values, so "
                                      "they are not real images.")
    assert crossed_out_note(8, 8).startswith("No picture: all 8 samples hold NaN or infinite pixel values")


def test_sweep_of_a_broken_generator(real_generator):
    broken = bundle_of(Poisoned(real_generator, lambda z: slice(None)), latent_dim=DIM)
    sweep = mean_sweep(broken, [-4.0, 0.0, 4.0], n=4)
    assert [r.diagnostics.verdict for r in sweep.rows] == ["non-finite"] * 3
    text = explain_sweep(sweep)
    assert text.startswith("The generator produced NaN or infinite pixel values for 12 of 12 samples at every mean")
    assert "this sweep shows nothing about collapse" in text
    assert_plain(text)
    summarise(sweep)  # no error on all-NaN diversity


def test_sweep_with_some_broken_rows(real_generator):
    far = Poisoned(real_generator, lambda z: z.mean(dim=1).abs() > 3)
    sweep = mean_sweep(bundle_of(far, latent_dim=DIM), [-4.0, 0.0, 4.0], n=4)
    assert [r.mean for r in sweep.nonfinite_rows] == [-4.0, 4.0]
    text = explain_sweep(sweep)
    assert "for 8 of 8 samples at the means -4, 4" in text and "What follows speaks of the other rows" in text
    assert_plain(text)


def test_comparison_of_a_broken_gan(real_generator):
    healthy = run(real_generator, STANDARD_NORMAL)
    broken = run(Poisoned(real_generator, lambda z: slice(None)), STANDARD_NORMAL)
    vae = ModelScores("a vae", "vae", healthy, sharpness=50.0)
    gan = ModelScores("a gan", "dcgan", broken, sharpness=math.nan)
    text = explain_comparison(vae, gan, "N(0, 1)", real_sharpness=100.0)
    assert text.startswith("GAN (a gan): The generator produced NaN or infinite pixel values for 8 of 8 samples")
    assert "no sharpness or diversity to compare" in text
    assert_plain(text)
    gan_row = comparison_rows([vae, gan], real_sharpness=100.0)[1]
    assert gan_row["verdict"] == "non-finite"
    numbers = {k: v for k, v in gan_row.items() if isinstance(v, float)}
    assert all(math.isfinite(v) for v in numbers.values()), numbers
    assert gan_row["sharpness (Laplacian variance)"] is None and gan_row["output diversity"] is None


# --- the pages, on a DCGAN whose first BatchNorm has a negative running variance ---------------------------------


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_root(tmp_path_factory.mktemp("nonfinite"), ("vae", "dcgan"), featurenet=False)


@pytest.fixture
def broken_dcgan(root, monkeypatch):
    """The tiny DCGAN as loaded, then given a negative running variance. The loader may rightly refuse such a file,
    so the damage is done after loading: the pages must still speak plainly about whatever a model computes."""
    from explorer.core import bundles

    load = bundles.load_bundle

    def load_and_break(path, *args, **kwargs):
        bundle = load(path, *args, **kwargs)
        if bundle.family == "dcgan":
            with torch.no_grad():
                bundle.generator.first_batchnorm.running_var.fill_(-1.0)
        return bundle

    monkeypatch.setattr(bundles, "load_bundle", load_and_break)
    use_checkpoints(monkeypatch, root)


def page_text(at) -> str:
    parts = [e.value for kind in ("error", "warning", "success", "info", "markdown", "caption", "subheader")
             for e in getattr(at, kind)]
    parts += [f"{m.label}: {m.value} {m.delta or ''}" for m in at.metric]
    return "\n".join(str(p) for p in parts)


def assert_page_plain(at) -> str:
    assert not at.exception, at.exception
    text = page_text(at)
    assert "Healthy" not in text
    assert not PRINTED_NONFINITE.search(text), PRINTED_NONFINITE.search(text)
    return text  # tables show None (an empty cell) for what cannot be computed: pandas reads it back as NaN


def test_sample_page_says_non_finite(broken_dcgan):
    at = open_page("sample", "dcgan")
    text = assert_page_plain(at)
    verdict = at.error[0].value
    assert verdict.startswith("**Non-finite.** The generator produced NaN or infinite pixel values for 64 of 64 "
                              "samples: its weights, or the codes it was given, are outside what it can compute")
    assert "No picture: all 64 samples hold NaN or infinite pixel values" in text
    assert len(at.get("image")) == 0  # no grid of NaN drawn as black squares
    assert next(m.value for m in at.metric if m.label == "output diversity") == "n/a"


def test_sweep_and_interpolation_pages_say_non_finite(broken_dcgan):
    at = open_page("sweep", "dcgan")
    text = assert_page_plain(at)
    assert "at every mean: its weights, or the codes it was given, are outside what it can compute" in text
    assert set(at.dataframe[0].value["verdict"]) == {"non-finite"}
    at = open_page("interpolate", "dcgan")
    text = assert_page_plain(at)
    assert "The generator produced NaN or infinite pixel values for 18 of 18 images along the two paths" in text


def test_compare_page_names_the_broken_model(broken_dcgan):
    at = open_page("compare", "dcgan")
    text = assert_page_plain(at)
    assert "GAN (tiny dcgan): The generator produced NaN or infinite pixel values for 32 of 32 samples" in text
    table = at.dataframe[0].value.set_index("model")
    assert table.loc["tiny dcgan", "verdict"] == "non-finite"


def test_sample_page_with_one_sample_prints_no_nan():
    """One sample has no pairs: the pairwise numbers say "n/a", not "nan" (the page's own default model)."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.slider(key="n").set_value(1).run()
    assert not at.exception, at.exception
    assert not PRINTED_NONFINITE.search(page_text(at)), PRINTED_NONFINITE.search(page_text(at))
    assert next(m.value for m in at.metric if m.label == "cosine of codes") == "n/a"
