"""Does Neural Collapse predict OOD detection? Rank correlations between each NC measure and each detector's
AUROC over the checkpoints of a run, summarised over seeds, and across runs at the final epoch
(docs/methods.md, section 7).

Every NC measure of :data:`nclab.plan.TRAJECTORY_MEASURES` (and NC5) decreases as collapse strengthens, so the
claim "stronger collapse, better detection" predicts a positive Spearman correlation between the negated
measure and the AUROC. Within a run both change with training, so a within-run correlation is evidence of a
shared trend, kept apart from the across-run correlation at the final epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from nclab.plan import TRAJECTORY_MEASURES
from nclab.ranking import CONFIDENCE, t_interval

MEASURES = (*TRAJECTORY_MEASURES, "nc5")  # the NC measures related to the AUROC
BOOTSTRAP_SAMPLES = 2000
VERDICTS = ("supported", "contradicted", "not resolved", "no claim can be tested")


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation of the finite pairs; NaN with fewer than 3 of them or a constant side."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan
    return float(spearmanr(x, y)[0])


def measure_column(measure: str, ood: str) -> str:
    """The trajectory column of ``measure``: NC5 is measured per OOD set."""
    return f"nc5_{ood}" if measure == "nc5" else measure


def within_run(trajectory: pd.DataFrame, keys: Sequence[str], measure: str, ood: str) -> pd.DataFrame:
    """Per run (``keys`` and seed) and detector: Spearman over the checkpoints between the negated NC measure
    (stronger collapse) and the AUROC against ``ood``."""
    rows = trajectory[trajectory["ood"] == ood]
    column = measure_column(measure, ood)
    return (
        rows.groupby([*keys, "seed", "method"], sort=False)
        .apply(lambda run: spearman(-run[column], run["auroc"]), include_groups=False)
        .rename("rho")
        .reset_index()
    )


@dataclass(frozen=True)
class Evidence:
    """A mean correlation with its interval over seeds (NaN bounds with a single seed)."""

    mean: float
    low: float
    high: float
    seeds: int


def across_seeds(rhos: pd.DataFrame) -> Evidence:
    """The mean of the within-run correlations of each seed (over its runs), then the mean over seeds with a
    t-interval over seeds; a seed's runs are not independent of each other, its seeds are."""
    per_seed = rhos.groupby("seed")["rho"].mean().dropna()
    low, high = t_interval(per_seed) or (np.nan, np.nan)
    return Evidence(float(per_seed.mean()) if len(per_seed) else np.nan, low, high, len(per_seed))


def bootstrap_over_runs(x: Sequence[float], y: Sequence[float], seed: int = 0) -> Evidence:
    """Spearman across runs with a percentile bootstrap interval (runs resampled with replacement)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    rng = np.random.default_rng(seed)
    draws = [spearman(x[i], y[i]) for i in rng.integers(0, len(x), size=(BOOTSTRAP_SAMPLES, len(x)))]
    draws = np.asarray(draws)[np.isfinite(draws)]
    if len(x) < 3 or len(draws) < BOOTSTRAP_SAMPLES / 2:
        return Evidence(spearman(x, y), np.nan, np.nan, len(x))
    low, high = np.quantile(draws, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return Evidence(spearman(x, y), float(low), float(high), len(x))


def verdict(evidence: Evidence) -> str:
    """The stated rule: supported when the interval lies above 0, contradicted when below, not resolved when it
    contains 0, and no claim can be tested without an interval (a single seed, too few runs)."""
    if not (np.isfinite(evidence.low) and np.isfinite(evidence.high)):
        return "no claim can be tested"
    return "supported" if evidence.low > 0 else "contradicted" if evidence.high < 0 else "not resolved"


def overall(verdicts: Sequence[str]) -> str:
    """The claim over the detectors: supported when a majority of them support it and none contradicts it,
    contradicted when a majority contradicts it, no claim when none can be tested, not resolved otherwise."""
    counts = {v: list(verdicts).count(v) for v in VERDICTS}
    if counts["no claim can be tested"] == len(verdicts):
        return "no claim can be tested"
    if counts["supported"] > len(verdicts) / 2 and not counts["contradicted"]:
        return "supported"
    if counts["contradicted"] > len(verdicts) / 2:
        return "contradicted"
    return "not resolved"


def relation(trajectory: pd.DataFrame, keys: Sequence[str], measures: Sequence[str], ood: str) -> pd.DataFrame:
    """One row per (measure, detector): the within-run evidence over seeds and its verdict."""
    rows = []
    for measure in measures:
        rhos = within_run(trajectory, keys, measure, ood)
        for method, group in rhos.groupby("method", sort=False):
            evidence = across_seeds(group)
            rows.append({"measure": measure, "method": method, **vars(evidence), "verdict": verdict(evidence)})
    return pd.DataFrame(rows)
