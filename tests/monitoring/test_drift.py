import numpy as np
import pandas as pd
import pytest

from kobe_mlops import config
from kobe_mlops.monitoring.drift import (
    PSI_MAJOR,
    PSI_MODERATE,
    compare_features,
    population_stability_index,
    psi_verdict,
)


def test_psi_is_zero_for_the_same_distribution_and_grows_with_shift():
    rng = np.random.default_rng(0)
    reference = rng.normal(10, 3, 5000)
    assert population_stability_index(reference, reference) == pytest.approx(0, abs=1e-9)
    small = population_stability_index(reference, rng.normal(10.3, 3, 5000))
    large = population_stability_index(reference, rng.normal(25, 3, 5000))
    assert small < PSI_MODERATE < PSI_MAJOR < large


def test_psi_on_discrete_values_uses_the_values_as_bins():
    reference = np.array([0] * 80 + [1] * 20)
    current = np.array([0] * 50 + [1] * 50)
    expected = (0.5 - 0.8) * np.log(0.5 / 0.8) + (0.5 - 0.2) * np.log(0.5 / 0.2)
    assert population_stability_index(reference, current) == pytest.approx(expected)


def test_verdicts():
    assert psi_verdict(0.05) == "stable"
    assert psi_verdict(0.15) == "moderate shift"
    assert psi_verdict(0.3) == "major shift"


def test_compare_features_flags_only_the_shifted_feature():
    rng = np.random.default_rng(1)

    def frame(distance_mean):
        return pd.DataFrame(
            {
                "lat": rng.normal(33.9, 0.05, 3000),
                "lon": rng.normal(-118.3, 0.05, 3000),
                "minutes_remaining": rng.integers(0, 12, 3000),
                "period": rng.integers(1, 5, 3000),
                "playoffs": rng.integers(0, 2, 3000),
                "shot_distance": rng.normal(distance_mean, 3, 3000),
            }
        )

    table = compare_features(frame(10), frame(25)).set_index("feature")
    assert list(table.index) == config.FEATURES
    assert table.loc["shot_distance", "verdict"] == "major shift"
    assert table.loc["shot_distance", "ks_pvalue"] < 1e-10
    assert (table.drop(index="shot_distance")["verdict"] == "stable").all()
