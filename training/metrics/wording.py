"""What a page may say about a VAE against a GAN from their evaluation, and nothing more: a difference is named
only when the 95% intervals do not overlap; overlapping intervals read "cannot be told apart".

The textbook story is "blurry but faithful" (the VAE covers more of the data) against "sharp but partial" (the
GAN's samples look more real). Which scores stand for realism and coverage is scoring.LEAD.
"""

from __future__ import annotations

from training.metrics.intervals import Estimate, compare
from training.metrics.scoring import LEAD

# (realism: +1 GAN ahead, -1 VAE ahead, 0 cannot tell; coverage: +1 VAE ahead, ...) -> what the pair shows.
_STORY = {
    (1, 1): "The classic story, blurry but faithful against sharp but partial",
    (0, 1): "Blurry but faithful, but the GAN's usual edge in realism does not show",
    (-1, 1): "The VAE is ahead on both, so this GAN is simply behind",
    (1, 0): "No sign that this GAN is partial",
    (0, 0): "These numbers do not separate the two models",
    (-1, 0): "Against the usual story, the VAE looks the more realistic",
    (1, -1): "The GAN is ahead on both: no sign that it is partial",
    (0, -1): "Against the usual story, the GAN covers more of the data",
    (-1, -1): "The reverse of the usual story",
}


def shown(e: Estimate) -> str:
    return f"{e.value:.2f} [{e.low:.2f}, {e.high:.2f}]"


def _clause(verdict: int, ahead: str, behind: str, what: str, name: str) -> str:
    named = f"{what} ({name})" if name != what else what
    if verdict == 0:
        return f"on {named} the two cannot be told apart, their intervals overlap"
    doing = "looks more realistic" if what == "realism" else "covers more of the real data"
    return f"the {ahead if verdict > 0 else behind} {doing}" + (f" ({name})" if name != what else "")


def _at_most_real(e: Estimate, name: str) -> Estimate:
    """Density above 1 (the level of real images) means samples crowd where real images are dense, not that they
    are more real than real: capped at 1, two such models cannot be told apart on realism."""
    return Estimate(min(e.value, 1.0), min(e.low, 1.0), min(e.high, 1.0)) if name == "density" else e


def verdicts(vae: dict[str, Estimate], gan: dict[str, Estimate], lead: dict[str, str] = LEAD) -> tuple[int, int]:
    """(realism: 1 when the GAN is ahead beyond doubt, -1 the VAE, 0 neither; coverage: 1 when the VAE is)."""
    realism, coverage = lead["realism"], lead["coverage"]
    return (compare(_at_most_real(gan[realism], realism), _at_most_real(vae[realism], realism)),
            compare(vae[coverage], gan[coverage]))


def comparison_sentence(vae: dict[str, Estimate], gan: dict[str, Estimate],
                        lead: dict[str, str] = LEAD) -> str | None:
    """One sentence on realism and coverage with the figures and intervals, or None without both estimates."""
    names = (lead["realism"], lead["coverage"])
    if not all(n in scores for scores in (vae, gan) for n in names):
        return None
    realism, coverage = verdicts(vae, gan, lead)
    figures = "; ".join(f"{n} {shown(vae[n])} for the VAE, {shown(gan[n])} for the GAN" for n in names)
    clauses = [_clause(realism, "GAN", "VAE", "realism", names[0]),
               _clause(coverage, "VAE", "GAN", "coverage", names[1])]
    return f"{_STORY[(realism, coverage)]}: {clauses[0]}; {clauses[1]} ({figures}; 95% intervals in brackets)."


def without_intervals(figures: str) -> str:
    """For figures stored before intervals were (an older metrics.json): no ranking at all."""
    return (f"These figures ({figures}) were stored without intervals, so this page does not say which model is "
            "ahead on them; `python -m training evaluate BUNDLE --write` stores figures with 95% intervals.")
