"""Compare development and production feature distributions (no labels needed).

PSI (population stability index) is computed on the development deciles (or on the distinct
values of a discrete feature); the two-sample Kolmogorov-Smirnov test comes from scipy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from kobe_mlops import config

PSI_MODERATE = 0.10  # conventional thresholds: below 0.1 stable, above 0.25 a major shift
PSI_MAJOR = 0.25
KS_ALPHA = 0.01
PSI_BINS = 10
DISCRETE_MAX_VALUES = 15
_EPSILON = 1e-6  # keeps empty bins from making PSI infinite


def _bin_shares(reference: np.ndarray, current: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    distinct = np.unique(reference)
    if len(distinct) <= DISCRETE_MAX_VALUES:
        categories = np.union1d(distinct, np.unique(current))
        ref_counts = np.array([(reference == value).sum() for value in categories], dtype=float)
        cur_counts = np.array([(current == value).sum() for value in categories], dtype=float)
    else:
        edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
        edges[0], edges[-1] = -np.inf, np.inf
        ref_counts = np.histogram(reference, edges)[0].astype(float)
        cur_counts = np.histogram(current, edges)[0].astype(float)
    ref_share = np.clip(ref_counts / ref_counts.sum(), _EPSILON, None)
    cur_share = np.clip(cur_counts / cur_counts.sum(), _EPSILON, None)
    return ref_share, cur_share


def population_stability_index(reference, current, bins: int = PSI_BINS) -> float:
    """PSI of ``current`` against ``reference``: sum((cur - ref) * ln(cur / ref)) over bins."""
    reference = np.asarray(pd.Series(reference).dropna(), dtype=float)
    current = np.asarray(pd.Series(current).dropna(), dtype=float)
    ref_share, cur_share = _bin_shares(reference, current, bins)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def psi_verdict(psi: float) -> str:
    if psi >= PSI_MAJOR:
        return "major shift"
    if psi >= PSI_MODERATE:
        return "moderate shift"
    return "stable"


def compare_features(reference: pd.DataFrame, current: pd.DataFrame, features=config.FEATURES) -> pd.DataFrame:
    """One row per feature: summary statistics of both bases, PSI, KS test and a verdict."""
    rows = []
    for feature in features:
        ref, cur = reference[feature].dropna(), current[feature].dropna()
        ks = stats.ks_2samp(ref, cur)
        psi = population_stability_index(ref, cur)
        rows.append(
            {
                "feature": feature,
                "mean_dev": ref.mean(),
                "mean_prod": cur.mean(),
                "std_dev": ref.std(),
                "std_prod": cur.std(),
                "median_dev": ref.median(),
                "median_prod": cur.median(),
                "psi": psi,
                "ks_statistic": float(ks.statistic),
                "ks_pvalue": float(ks.pvalue),
                "verdict": psi_verdict(psi),
            }
        )
    return pd.DataFrame(rows)
