"""Face arithmetic on latent codes, as in Radford, Metz and Chintala (2016, Fig. 7): average the codes of three
samples per concept, then  A - B + C  (smiling woman - neutral woman + neutral man) should decode to the concept
A and C share with nothing in B (a smiling man).

The concepts are found by the dataset's feature network in generated samples (the paper picked its exemplars by
hand). Every function here is pure: codes, probabilities and images in, codes, numbers and words out. No Streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.logic.recognition import FeatureNetwork
from training.attributes import Attribute
from training.bundle import Bundle
from training.errors import LatentExplorerError
from training.latent import sampling
from training.latent.priors import sample_latents

EXEMPLARS = 3  # codes averaged per concept, as in the paper
POOL_SEED = 20160107  # the generated samples the feature network labels (the paper's arXiv date)
NOISE = 0.25  # the paper's 3x3: the result plus uniform noise in [-NOISE, NOISE] on every coordinate
CONFIDENT_POOL = 24  # exemplars are drawn from the most confident candidates of a concept
SUCCESS_DRAWS = 50  # random draws of exemplars for the success rate


@dataclass(frozen=True)
class Analogy:
    """A - B + C = D over two attributes: `change` goes from `change_from` (B, C) to `change_to` (A, D), and `keep`
    goes from `keep_from` (A, B) to `keep_to` (C, D). Smiling woman - neutral woman + neutral man = smiling man is
    change Smiling no -> yes, keep Male no -> yes."""

    change: str
    change_to: str
    change_from: str
    keep: str
    keep_from: str
    keep_to: str

    def concept(self, which: str) -> dict[str, str]:
        """Attribute values of concept A, B, C or D (the expected result)."""
        change = self.change_to if which in "AD" else self.change_from
        keep = self.keep_from if which in "AB" else self.keep_to
        return {self.change: change, self.keep: keep}

    def describe(self, which: str) -> str:
        return ", ".join(f"{name} = {value}" for name, value in self.concept(which).items())

    @property
    def equation(self) -> str:
        return f"({self.describe('A')}) - ({self.describe('B')}) + ({self.describe('C')})"


@dataclass(frozen=True)
class PaperFigure:
    title: str
    analogy: Analogy


# The paper's two face figures, in the attributes CelebA labels.
PAPER_FIGURES = (
    PaperFigure("smiling woman - neutral woman + neutral man = smiling man",
                Analogy("Smiling", "yes", "no", "Male", "no", "yes")),
    PaperFigure("man with glasses - man without glasses + woman without glasses = woman with glasses",
                Analogy("Eyeglasses", "yes", "no", "Male", "yes", "no")),
)


def paper_figures(attributes: tuple[Attribute, ...]) -> list[PaperFigure]:
    """The paper's figures whose attributes (binary, yes/no) this feature network predicts."""
    known = {a.name for a in attributes if a.values == ("no", "yes")}
    return [f for f in PAPER_FIGURES if {f.analogy.change, f.analogy.keep} <= known]


@dataclass(frozen=True)
class LabelledPool:
    """Generated samples with the feature network's probability of every value of every attribute."""

    codes: np.ndarray  # (N, d) float32
    probabilities: dict[str, np.ndarray]  # attribute name -> (N, values)
    attributes: tuple[Attribute, ...]

    def __len__(self) -> int:
        return len(self.codes)

    def probability(self, concept: dict[str, str]) -> np.ndarray:
        """(N,) the product over the concept's attributes of the probability of its value."""
        out = np.ones(len(self), dtype=np.float64)
        for name, value in concept.items():
            attribute = self.attribute(name)
            out *= self.probabilities[name][:, attribute.values.index(value)]
        return out

    def attribute(self, name: str) -> Attribute:
        for a in self.attributes:
            if a.name == name:
                return a
        raise LatentExplorerError(f"the feature network has no attribute {name!r}")

    def members(self, concept: dict[str, str]) -> np.ndarray:
        """Indices of the samples the network gives every value of the concept (its most likely value), most
        confident first."""
        p = self.probability(concept)
        has = np.ones(len(self), dtype=bool)
        for name, value in concept.items():
            attribute = self.attribute(name)
            has &= self.probabilities[name].argmax(axis=1) == attribute.values.index(value)
        index = np.flatnonzero(has)
        return index[np.argsort(-p[index], kind="stable")]


def default_analogy(pool: LabelledPool) -> Analogy:
    """An analogy over the attributes this pool shows best: two attributes whose values split the samples most
    evenly (binary ones first), each going from its most common value to its second most common."""
    def ranked_values(a: Attribute) -> list[str]:
        counts = np.bincount(pool.probabilities[a.name].argmax(axis=1), minlength=len(a.values))
        return [a.values[i] for i in np.argsort(-counts, kind="stable")]

    def balance(a: Attribute) -> tuple[bool, float]:
        counts = np.bincount(pool.probabilities[a.name].argmax(axis=1), minlength=len(a.values))
        second = np.sort(counts)[-2] if len(counts) > 1 else 0
        return (a.values == ("no", "yes"), second / max(len(pool), 1))

    if len(pool.attributes) < 2:
        raise LatentExplorerError("face arithmetic needs two attributes")
    change, keep = sorted(pool.attributes, key=balance, reverse=True)[:2]
    if change.values == ("no", "yes"):
        change_to, change_from = "yes", "no"
    else:
        change_from, change_to = ranked_values(change)[:2]
    keep_from, keep_to = ("no", "yes") if keep.values == ("no", "yes") else tuple(ranked_values(keep)[:2])
    return Analogy(change.name, change_to, change_from, keep.name, keep_from, keep_to)


def feature_probabilities(net: FeatureNetwork, images: torch.Tensor, batch: int = 256) -> dict[str, np.ndarray]:
    """attribute name -> (B, values) probabilities the feature network gives images in [-1, 1]."""
    from training.models.featurenet import to_input

    network = net.network
    network.eval()
    heads: list[list[torch.Tensor]] = [[] for _ in net.attributes]
    with torch.no_grad():
        for i in range(0, images.shape[0], batch):
            for j, logits in enumerate(network(to_input(images[i:i + batch], network.config))):
                heads[j].append(logits)
    out = {}
    for attribute, parts in zip(net.attributes, heads):
        logits = torch.cat(parts).double()
        if logits.shape[1] == 1:  # a binary head's single logit: P(yes)
            yes = torch.sigmoid(logits[:, 0])
            out[attribute.name] = torch.stack([1 - yes, yes], dim=1).numpy()
        else:
            out[attribute.name] = torch.softmax(logits, dim=1).numpy()
    return out


def label_pool(bundle: Bundle, net: FeatureNetwork, n: int, seed: int = POOL_SEED) -> LabelledPool:
    """n codes from the bundle's prior, with what the feature network sees in their images."""
    z = sample_latents(bundle.prior, n, bundle.latent_dim, seed=seed)
    probabilities = feature_probabilities(net, sampling.decode(bundle, z))
    return LabelledPool(z.numpy().astype(np.float32), probabilities, net.attributes)


def draw_exemplars(candidates: np.ndarray, draw: int, count: int = EXEMPLARS,
                   confident: int = CONFIDENT_POOL) -> np.ndarray:
    """`count` distinct candidates among the `confident` most confident, chosen by the draw number (draw 0: the
    most confident ones)."""
    top = np.asarray(candidates)[:max(confident, count)]
    if len(top) < count:
        raise LatentExplorerError(f"only {len(top)} of the samples have this concept; {count} are needed")
    if draw == 0:
        return top[:count]
    return np.random.default_rng(draw).choice(top, size=count, replace=False)


def arithmetic_code(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """mean(a) - mean(b) + mean(c) for (k, d) groups of codes: the paper's vector arithmetic."""
    return np.mean(a, axis=0) - np.mean(b, axis=0) + np.mean(c, axis=0)


def noisy_neighbours(code: np.ndarray, count: int = 8, noise: float = NOISE, seed: int = 0) -> np.ndarray:
    """(1 + count, d): the code, then `count` copies with uniform noise in [-noise, noise] (the paper's 3x3)."""
    rng = np.random.default_rng(seed)
    jitter = rng.uniform(-noise, noise, size=(count, code.shape[-1]))
    return np.concatenate([code[None, :], code[None, :] + jitter]).astype(np.float32)


@dataclass(frozen=True)
class ArithmeticResult:
    """One worked example: the exemplars, the averages, the result and its neighbours, with their scores."""

    analogy: Analogy
    exemplars: dict[str, np.ndarray]  # "A", "B", "C" -> indices into the pool
    exemplar_images: dict[str, torch.Tensor]  # "A", "B", "C" -> (3, C, H, W)
    average_images: torch.Tensor  # (3, C, H, W): decoded means of A, B, C
    result_images: torch.Tensor  # (9, C, H, W): the result first, then 8 noisy neighbours
    expected_probability: dict[str, float]  # "A", "B", "C", "result", "neighbours" -> P(concept D)
    change_probability: dict[str, float]  # the same for the changed attribute alone
    keep_probability: dict[str, float]  # and for the kept attribute alone
    result_norm: float
    prior_norm: float


def work_example(bundle: Bundle, net: FeatureNetwork, pool: LabelledPool, analogy: Analogy,
                 draws: dict[str, int], noise_seed: int = 0) -> ArithmeticResult:
    """Draw exemplars of A, B and C (each by its own draw number), average them, add and subtract, decode."""
    exemplars = {}
    for which in "ABC":
        candidates = pool.members(analogy.concept(which))
        if len(candidates) < EXEMPLARS:
            raise LatentExplorerError(
                f"the feature network finds {len(candidates)} of {len(pool)} generated samples with "
                f"{analogy.describe(which)}; {EXEMPLARS} are needed (the model rarely draws that concept)")
        exemplars[which] = draw_exemplars(candidates, draws.get(which, 0))
    groups = {w: pool.codes[exemplars[w]] for w in "ABC"}
    result = arithmetic_code(groups["A"], groups["B"], groups["C"])
    averages = np.stack([groups[w].mean(axis=0) for w in "ABC"])
    # One forward pass: the three averages, the result and its 8 neighbours, then the 9 exemplars.
    codes = np.concatenate([averages, noisy_neighbours(result, seed=noise_seed), *(groups[w] for w in "ABC")])
    decoded = sampling.decode(bundle, torch.from_numpy(codes.astype(np.float32)))
    probabilities = feature_probabilities(net, decoded[:12])
    rows = {"A": [0], "B": [1], "C": [2], "result": [3], "neighbours": list(range(4, 12))}
    concepts = {"expected": analogy.concept("D"), "change": {analogy.change: analogy.change_to},
                "keep": {analogy.keep: analogy.keep_to}}
    summary = {}
    for name, concept in concepts.items():
        scores = LabelledPool(codes[:12], probabilities, net.attributes).probability(concept)
        summary[name] = {k: float(scores[r].mean()) for k, r in rows.items()}
    prior = sample_latents(bundle.prior, 512, bundle.latent_dim, seed=1).double().norm(dim=1).mean()
    return ArithmeticResult(
        analogy, exemplars, dict(zip("ABC", torch.split(decoded[12:], EXEMPLARS))), decoded[:3], decoded[3:12],
        summary["expected"], summary["change"], summary["keep"], float(np.linalg.norm(result)), float(prior))


@dataclass(frozen=True)
class SuccessRate:
    """How often the arithmetic gives the expected concept over random draws of exemplars."""

    draws: int
    successes: int  # draws whose result the feature network calls the expected concept
    base_rate: float  # share of all generated samples with the expected concept (what a random code gives)
    c_rate: float  # share of draws whose average of C alone already has the expected concept

    @property
    def rate(self) -> float:
        return self.successes / self.draws if self.draws else float("nan")


def success_rate(bundle: Bundle, net: FeatureNetwork, pool: LabelledPool, analogy: Analogy,
                 draws: int = SUCCESS_DRAWS) -> SuccessRate:
    """Draw exemplars `draws` times at random (draw numbers 1..draws for every concept), do the arithmetic, and
    count the results the feature network calls the expected concept; beside it, the same count for the average
    of C alone (does the subtraction and addition add anything?) and the base rate over all samples."""
    candidates = {w: pool.members(analogy.concept(w)) for w in "ABC"}
    short = [w for w in "ABC" if len(candidates[w]) < EXEMPLARS]
    if short:
        raise LatentExplorerError(f"too few samples with {analogy.describe(short[0])} to draw exemplars")
    results, c_means = [], []
    for k in range(1, draws + 1):
        groups = {w: pool.codes[draw_exemplars(candidates[w], k * 3 + "ABC".index(w))] for w in "ABC"}
        results.append(arithmetic_code(groups["A"], groups["B"], groups["C"]))
        c_means.append(groups["C"].mean(axis=0))
    codes = torch.from_numpy(np.stack(results + c_means).astype(np.float32))
    probabilities = feature_probabilities(net, sampling.decode(bundle, codes))
    target = analogy.concept("D")
    has = np.ones(len(codes), dtype=bool)
    for name, value in target.items():
        attribute = pool.attribute(name)
        has &= probabilities[name].argmax(axis=1) == attribute.values.index(value)
    base = len(pool.members(target)) / len(pool)
    return SuccessRate(draws, int(has[:draws].sum()), base, float(has[draws:].mean()))


def verdict(rate: SuccessRate) -> str:
    """"works", "partly" or "fails": how much more often the arithmetic gives the expected concept than C's own
    average or a random sample does."""
    lift = rate.rate - max(rate.c_rate, rate.base_rate)
    if rate.rate >= 0.6 and lift >= 0.3:
        return "works"
    return "partly" if lift >= 0.15 else "fails"


def explain(result: ArithmeticResult, rate: SuccessRate | None) -> str:
    """Plain words from the numbers: did the arithmetic give the expected concept, and how reliably."""
    a = result.analogy
    p = result.expected_probability
    parts = [f"The feature network gives the result a {p['result']:.0%} chance of being {a.describe('D')} "
             f"(its eight noisy neighbours {p['neighbours']:.0%} on average), against {p['C']:.0%} for the average "
             f"of C alone and {p['A']:.0%} for the average of A."]
    if rate is not None:
        parts.append(f"Over {rate.draws} random draws of exemplars the result is {a.describe('D')} in "
                     f"{rate.successes} ({rate.rate:.0%}); the average of C alone is in {rate.c_rate:.0%} of them, "
                     f"and {rate.base_rate:.0%} of all generated samples are.")
        said = verdict(rate)
        if said == "works":
            parts.append("The arithmetic works on this model: subtracting B and adding C turns A's "
                         f"{a.keep} into C's while keeping its {a.change}, as in the DCGAN paper.")
        elif said == "partly":
            parts.append("The arithmetic works only part of the time on this model: the result leans towards the "
                         "expected concept, but many draws miss it.")
        else:
            parts.append("The arithmetic does not work on this model: the result is no more often the expected "
                         "concept than C's own average or a random sample. Its latent space does not line the two "
                         "attributes up along directions that add.")
    ratio = result.result_norm / result.prior_norm if result.prior_norm else float("nan")
    if abs(ratio - 1) > 0.2:
        parts.append(f"The result's code has norm {result.result_norm:.1f} against {result.prior_norm:.1f} for "
                     "codes the model was trained on, so part of what it draws comes from leaving the prior.")
    return " ".join(parts)
