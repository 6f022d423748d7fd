"""The promotion gate: which deployable candidate serves next.

Every candidate (the champion, each challenger recipe, the recalibrated champion and the null
model) is scored on the same holdout: the newest labelled rows none of them learned. The one with
the lowest log loss replaces the champion only if its paired gain (champion's per-row loss minus
its own, on the same rows) exceeds :data:`GAIN_STANDARD_ERRORS` standard errors of that gain: the
minimum gain is the holdout's own noise, large on a 12-row season, small on a 500-row one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kobe_mlops.monitoring.calculators import row_log_loss
from kobe_mlops.tracking import names

CHAMPION = "champion"
# One standard error: the replay (Docs/Model/Retraining.md) shows two let a champion worse than
# the null model serve for seasons, while every promotion at one still beat the null over the replay.
GAIN_STANDARD_ERRORS = 1.0
RULE = (
    f"the candidate with the lowest holdout log loss replaces the champion when its paired gain "
    f"exceeds {GAIN_STANDARD_ERRORS:g} standard error(s) of that gain"
)


@dataclass(frozen=True)
class GateDecision:
    winner: str  # CHAMPION or a candidate's name
    figures: dict[str, float]  # holdout_log_loss_<candidate>, the winner's gain and its standard error
    reason: str

    @property
    def promote(self) -> bool:
        return self.winner != CHAMPION


def decide(outcome, probabilities: dict[str, np.ndarray]) -> GateDecision:
    """``probabilities``: each candidate's on the holdout rows, the champion's under :data:`CHAMPION`."""
    outcome = np.asarray(outcome, dtype=float)
    losses = {name: row_log_loss(outcome, p) for name, p in probabilities.items()}
    figures = {names.holdout_metric(name): float(loss.mean()) for name, loss in losses.items()}
    figures["holdout_rows"] = float(len(outcome))
    best = min((name for name in losses if name != CHAMPION), key=lambda name: losses[name].mean(), default=None)
    champion_text = f"champion {figures[names.holdout_metric(CHAMPION)]:.4f}"
    if best is None or len(outcome) < 2:
        return GateDecision(CHAMPION, figures, f"Keep the champion: no candidate to compare on {len(outcome)} rows.")
    difference = losses[CHAMPION] - losses[best]
    gain, error = float(difference.mean()), float(difference.std(ddof=1) / np.sqrt(len(difference)))
    figures.update({"holdout_gain": gain, "holdout_gain_se": error})
    text = (
        f"on {len(outcome)} holdout rows, best candidate {best} {figures[names.holdout_metric(best)]:.4f} vs "
        f"{champion_text}: gain {gain:+.4f}, "
        f"{GAIN_STANDARD_ERRORS:g} standard error(s) = {GAIN_STANDARD_ERRORS * error:.4f}"
    )
    if gain > GAIN_STANDARD_ERRORS * error:
        return GateDecision(best, figures, f"Promote {best}: {text}.")
    return GateDecision(CHAMPION, figures, f"Keep the champion: {text}.")
