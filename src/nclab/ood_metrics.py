"""OOD detection metrics (docs/methods.md, section 3). Higher score = more ID; ID is the positive class, except
in :func:`fpr_at_ood_tpr`, FPR@95 the way OpenOOD v1.5's evaluator computes it (OOD positive)."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def _check(id_scores: np.ndarray, ood_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    id_scores, ood_scores = np.asarray(id_scores, np.float64), np.asarray(ood_scores, np.float64)
    for name, s in (("ID", id_scores), ("OOD", ood_scores)):
        if s.ndim != 1 or len(s) == 0:
            raise ValueError(f"{name} scores must be a non-empty vector")
        if not np.all(np.isfinite(s)):
            raise ValueError(f"{name} scores contain {np.sum(~np.isfinite(s))} NaN or infinite values")
    return id_scores, ood_scores


def auroc(id_scores: np.ndarray, ood_scores: np.ndarray) -> float:
    """P(score_ID > score_OOD) + P(tie)/2, by the Mann-Whitney rank-sum with average ranks for ties."""
    id_scores, ood_scores = _check(id_scores, ood_scores)
    ranks = rankdata(np.concatenate([id_scores, ood_scores]))
    n_id, n_ood = len(id_scores), len(ood_scores)
    return float((ranks[:n_id].sum() - n_id * (n_id + 1) / 2) / (n_id * n_ood))


def average_precision(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the precision-recall curve as the step sum sum_k (R_k - R_{k-1}) P_k over distinct thresholds."""
    scores = np.concatenate([positive, negative])
    is_positive = np.concatenate([np.ones(len(positive)), np.zeros(len(negative))])
    order = np.argsort(-scores, kind="stable")
    scores, is_positive = scores[order], is_positive[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_pos = np.cumsum(is_positive)[last_of_tie]
    precision = true_pos / (last_of_tie + 1)
    recall_step = np.diff(np.r_[0.0, true_pos]) / len(positive)
    return float(np.sum(recall_step * precision))


def aupr_in(id_scores: np.ndarray, ood_scores: np.ndarray) -> float:
    id_scores, ood_scores = _check(id_scores, ood_scores)
    return average_precision(id_scores, ood_scores)


def aupr_out(id_scores: np.ndarray, ood_scores: np.ndarray) -> float:
    id_scores, ood_scores = _check(id_scores, ood_scores)
    return average_precision(-ood_scores, -id_scores)


def fpr_at_tpr(id_scores: np.ndarray, ood_scores: np.ndarray, tpr: float = 0.95) -> float:
    """ID positive (the Energy, ViM and NECO papers): the fraction of OOD samples accepted (score >= the
    largest threshold that keeps ``tpr`` of the ID samples)."""
    id_scores, ood_scores = _check(id_scores, ood_scores)
    ordered = np.sort(id_scores)
    threshold = ordered[int(np.floor((1.0 - tpr) * len(ordered) + 1e-9))]
    return float(np.mean(ood_scores >= threshold))


def fpr_at_ood_tpr(id_scores: np.ndarray, ood_scores: np.ndarray, tpr: float = 0.95) -> float:
    """OOD positive (OpenOOD v1.5's evaluator, pytorch-ood's OODMetrics): the fraction of ID samples flagged
    (score <= the smallest threshold that flags ``tpr`` of the OOD samples)."""
    id_scores, ood_scores = _check(id_scores, ood_scores)
    ordered = np.sort(ood_scores)
    threshold = ordered[int(np.ceil(tpr * len(ordered) - 1e-9)) - 1]
    return float(np.mean(id_scores <= threshold))


METRICS = {"auroc": auroc, "aupr_in": aupr_in, "aupr_out": aupr_out, "fpr95": fpr_at_tpr,
           "fpr95_ood": fpr_at_ood_tpr}


def roc_curve(id_scores: np.ndarray, ood_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) at every distinct threshold, from (0, 0) to (1, 1), ID positive."""
    id_scores, ood_scores = _check(id_scores, ood_scores)
    thresholds = np.unique(np.concatenate([id_scores, ood_scores]))[::-1]
    tpr = np.searchsorted(np.sort(-id_scores), -thresholds, side="right") / len(id_scores)
    fpr = np.searchsorted(np.sort(-ood_scores), -thresholds, side="right") / len(ood_scores)
    return np.r_[0.0, fpr], np.r_[0.0, tpr]


def metric_row(id_scores: np.ndarray, ood_scores: np.ndarray) -> dict[str, float]:
    """Every metric of :data:`METRICS`; NaN for each when the score was not computed for the run (all-NaN
    arrays: :func:`nclab.ood.score_dump`), an error for any other non-finite score."""
    if np.isnan(id_scores).all() and np.isnan(ood_scores).all():
        return dict.fromkeys(METRICS, np.nan)
    return {name: fn(id_scores, ood_scores) for name, fn in METRICS.items()}
