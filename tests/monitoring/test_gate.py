"""The promotion gate (monitoring/gate.py): the best deployable candidate, by a rule from the noise."""

from __future__ import annotations

import numpy as np

from kobe_mlops.monitoring import gate


def holdout(rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    chance = rng.uniform(0.1, 0.6, rows)
    return chance, (rng.random(rows) < chance).astype(float)


def test_a_clearly_better_candidate_replaces_the_champion():
    chance, outcome = holdout(500)
    decision = gate.decide(
        outcome, {"champion": np.full(500, 0.6), "recipe": chance, "null": np.full(500, outcome.mean())}
    )
    assert decision.promote and decision.winner == "recipe"
    assert {"holdout_log_loss_champion", "holdout_log_loss_recipe", "holdout_log_loss_null"} <= set(decision.figures)
    assert decision.figures["holdout_gain"] > decision.figures["holdout_gain_se"]


def test_a_gain_within_the_noise_keeps_the_champion():
    chance, outcome = holdout(30, seed=3)
    decision = gate.decide(outcome, {"champion": chance, "recipe": np.clip(chance + 0.01, 0, 1)})
    assert not decision.promote and decision.reason.startswith("Keep the champion")


def test_the_null_model_wins_when_the_champion_knows_less_than_the_make_rate():
    _, outcome = holdout(400, seed=5)
    rng = np.random.default_rng(1)
    decision = gate.decide(outcome, {"champion": rng.uniform(0.4, 0.9, 400), "null": np.full(400, outcome.mean())})
    assert decision.winner == "null"


def test_no_candidate_keeps_the_champion():
    _, outcome = holdout(50)
    assert gate.decide(outcome, {"champion": np.full(50, 0.3)}).winner == "champion"
