"""Rankings the paper may state: a method, schedule or strategy is called better than another only where a
paired comparison over seeds supports it (docs/methods.md, section 8).

Runs of the same seed share their data order and initialisation, so two candidates are compared through their
per-seed differences: the Student-t interval of the mean difference over seeds. An interval that excludes 0
resolves the order; one that contains 0 leaves the difference within the spread over seeds; a single seed gives
no interval and no ranking is tested.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import t as t_distribution

CONFIDENCE = 0.95  # of every interval the paper states


def t_interval(values: np.ndarray) -> tuple[float, float] | None:
    """The 95 % Student-t interval of the mean of independent replicates (per-seed values, or paired
    differences); None with fewer than 2."""
    values = np.asarray(values, np.float64)
    if len(values) < 2:
        return None
    mean, sem = values.mean(), values.std(ddof=1) / np.sqrt(len(values))
    half = t_distribution.ppf((1 + CONFIDENCE) / 2, len(values) - 1) * sem
    return float(mean - half), float(mean + half)


def order(first: np.ndarray, second: np.ndarray) -> str:
    """'higher' or 'lower' when the paired interval of first - second excludes 0, 'within the spread' when it
    contains it, 'not tested' with one seed; ``first`` and ``second`` hold one value per seed, seed by seed."""
    interval = t_interval(np.asarray(first, np.float64) - np.asarray(second, np.float64))
    if interval is None:
        return "not tested"
    return "higher" if interval[0] > 0 else "lower" if interval[1] < 0 else "within the spread"


@dataclass(frozen=True)
class Leader:
    """The candidate with the best mean over seeds, and the candidates a paired comparison does not separate
    from it (every other one with a single seed)."""

    name: str
    mean: float
    unresolved: tuple[str, ...]
    seeds: int


def leader(values: pd.DataFrame, higher_is_better: bool = True) -> Leader:
    """The best candidate of ``values`` (index: seed, columns: candidates; all-NaN columns are not candidates)."""
    values = values.dropna(axis=1, how="all")
    means = values.mean()
    best = means.idxmax() if higher_is_better else means.idxmin()
    wanted = "higher" if higher_is_better else "lower"
    unresolved = tuple(c for c in values if c != best and order(values[best], values[c]) != wanted)
    return Leader(str(best), float(means[best]), unresolved, len(values))
