"""Stopping a run that has blown up or whose discriminator has won, naming the last good bundle on disk."""

from __future__ import annotations

import math
from pathlib import Path

from training.errors import LatentExplorerError

# D(G(z)) below this means the discriminator rejects every fake with certainty: the generator's gradient is gone.
D_WON_THRESHOLD = 1e-3


class DivergenceGuard:
    """Stops a run that has blown up (a NaN or infinite loss) or whose discriminator has won completely
    (D(G(z)) < 1e-3 for `patience` consecutive steps: the generator gets no gradient), saying which bundle
    on disk is the last good one."""

    def __init__(self, out: Path, patience: int):
        self.out = out
        self.patience = patience
        self.won_for = 0

    def last_good(self, saved_step: int | None) -> str:
        if saved_step is None:
            return f"No bundle was written to {self.out} before this happened; lower --checkpoint-every to keep one."
        return f"The last good bundle is {self.out} (step {saved_step})."

    def check(self, step: int, values: dict[str, float], saved_step: int | None) -> None:
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            raise LatentExplorerError(
                f"training diverged at step {step}: {', '.join(bad)} became NaN or infinite (the run exploded; "
                f"try a lower learning rate or loss weight). {self.last_good(saved_step)}"
            )
        if "d_fake" not in values:
            return
        self.won_for = self.won_for + 1 if values["d_fake"] < D_WON_THRESHOLD else 0
        if self.won_for >= self.patience:
            raise LatentExplorerError(
                f"training stopped at step {step}: the discriminator has won completely (D(G(z)) stayed below "
                f"{D_WON_THRESHOLD:g} for {self.won_for} consecutive steps, now {values['d_fake']:.1e}), so the "
                "generator no longer gets a useful gradient. Try a lower --lr-d, --d-every 2, --label-smoothing 0.1 "
                f"or --label-flip 0.05. {self.last_good(saved_step)}"
            )
