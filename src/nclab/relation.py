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
from scipy.stats import rankdata, spearmanr

from nclab.plan import TRAJECTORY_MEASURES
from nclab.ranking import CONFIDENCE, t_interval

MEASURES = (*TRAJECTORY_MEASURES, "nc5")  # the NC measures related to the AUROC
# The fewest points (checkpoints of a run, runs) a rank correlation is computed over: with 4, even a perfect
# rho = +-1 has an exact two-sided permutation p-value of 2/4! = 0.083; with 5, 2/5! = 0.017.
MIN_POINTS = 5
BOOTSTRAP_SAMPLES = 2000
VERDICTS = ("supported", "contradicted", "not resolved", "no claim can be tested")


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation of the finite pairs; NaN with fewer than :data:`MIN_POINTS` of them or a
    constant side."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    if len(x) < MIN_POINTS or np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan
    return float(spearmanr(x, y)[0])


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's correlation of the finite pairs; NaN with fewer than :data:`MIN_POINTS` of them or a constant
    side."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite] - x[finite].mean(), y[finite] - y[finite].mean()
    if len(x) < MIN_POINTS or not (np.any(x) and np.any(y)):
        return np.nan
    return float(np.sum(x * y) / np.sqrt(np.sum(x * x) * np.sum(y * y)))


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
    """A mean correlation with its interval (NaN bounds where none can be formed), over ``seeds`` seeds (the
    within-run evidence) or runs (the across-run evidence)."""

    mean: float
    low: float
    high: float
    seeds: int

    @property
    def testable(self) -> bool:
        """An interval of non-zero width: a zero-width one (every seed, or every resample, giving the same
        correlation) measures no spread and is no evidence."""
        return bool(np.isfinite(self.low) and np.isfinite(self.high) and self.high > self.low)

    def untested_reason(self) -> str:
        """Why no claim can be tested from this within-run evidence."""
        if self.seeds == 0:
            return f"runs with fewer than {MIN_POINTS} checkpoints give no correlation"
        if self.seeds == 1:
            return "with one seed no interval can be formed"
        return "every seed gives the same correlation, an interval of zero width, which is no evidence"


def across_seeds(rhos: pd.DataFrame) -> Evidence:
    """The mean of the within-run correlations of each seed (over its runs), then the mean over seeds with a
    t-interval over seeds; a seed's runs are not independent of each other, its seeds are."""
    per_seed = rhos.groupby("seed")["rho"].mean().dropna()
    low, high = t_interval(per_seed) or (np.nan, np.nan)
    return Evidence(float(per_seed.mean()) if len(per_seed) else np.nan, low, high, len(per_seed))


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rank correlation of each row of ``x`` with the same row of ``y`` (finite (B, n) arrays): Pearson's
    correlation of their average ranks, as :func:`spearman` computes it; NaN for a row constant on either side."""
    ranks = [rankdata(a, axis=1) for a in (x, y)]
    rx, ry = (r - r.mean(axis=1, keepdims=True) for r in ranks)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(axis=1) / np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))


def bootstrap_over_runs(x: Sequence[float], y: Sequence[float], seed: int = 0) -> Evidence:
    """Spearman across runs with a percentile bootstrap interval (the runs with both values finite, resampled
    with replacement)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    if len(x) < MIN_POINTS:
        return Evidence(np.nan, np.nan, np.nan, len(x))
    draws = np.random.default_rng(seed).integers(0, len(x), size=(BOOTSTRAP_SAMPLES, len(x)))
    rhos = spearman_rows(x[draws], y[draws])
    rhos = rhos[np.isfinite(rhos)]
    if len(rhos) < BOOTSTRAP_SAMPLES / 2:
        return Evidence(spearman(x, y), np.nan, np.nan, len(x))
    low, high = np.quantile(rhos, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return Evidence(spearman(x, y), float(low), float(high), len(x))


def verdict(evidence: Evidence) -> str:
    """The stated rule: supported when the interval lies above 0, contradicted when below, not resolved when it
    contains 0, and no claim can be tested without an interval of non-zero width (a single seed, too few
    checkpoints or runs, every seed or resample giving the same correlation)."""
    if not evidence.testable:
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


CORRELATIONS = {"pearson": pearson, "spearman": spearman}
DEPTH_METRICS = ("auroc", "fpr95")


def across_depth(layers: pd.DataFrame, keys: Sequence[str], ood: str) -> pd.DataFrame:
    """Per run (``keys`` and seed), checkpoint and detector of a ``layers.csv`` table: the correlation over its
    layers between stronger collapse (-log NC1) and each detection metric against ``ood`` (FPR@95 negated, so
    that a positive correlation means better detection everywhere), Pearson's (Harun et al.'s R) and
    Spearman's. The multi-layer detector's rows, which have no layer of their own, are left out."""
    rows = layers[(layers["ood"] == ood) & layers["nc1"].notna()]
    records = []
    for group, run in rows.groupby([*keys, "seed", "epoch", "method"], sort=False):
        collapse = -np.log(run["nc1"].to_numpy(np.float64))
        for metric in DEPTH_METRICS:
            detection = run[metric].to_numpy(np.float64) * (-1 if metric == "fpr95" else 1)
            for name, correlation in CORRELATIONS.items():
                records.append(
                    {
                        **dict(zip([*keys, "seed", "epoch", "method"], group)),
                        "metric": metric,
                        "correlation": name,
                        "rho": correlation(collapse, detection),
                        "layers": len(run),
                    }
                )
    return pd.DataFrame(records)


def depth_relation(correlations: pd.DataFrame) -> pd.DataFrame:
    """The relation across depth over the rows of :func:`across_depth` given (one checkpoint per run, such as
    :func:`nclab.runs.final_epochs`'): per detector, metric and correlation, the mean over seeds of each seed's mean
    over its runs, with a t-interval over seeds cut to [-1, 1], the range of a correlation (which moves no bound
    across 0), and the stated verdict rule (:func:`verdict`)."""
    rows = []
    for (method, metric, name), group in correlations.groupby(["method", "metric", "correlation"], sort=False):
        found = across_seeds(group)
        evidence = Evidence(found.mean, max(found.low, -1.0), min(found.high, 1.0), found.seeds)
        rows.append({"method": method, "metric": metric, "correlation": name, **vars(evidence)})
        rows[-1]["verdict"] = verdict(evidence)
    return pd.DataFrame(rows)
