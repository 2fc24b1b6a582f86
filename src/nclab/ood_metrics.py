"""OOD detection metrics (docs/methods.md, section 3). Higher score = more ID; ID is the positive class, except
in :func:`fpr_at_ood_tpr`, FPR@95 the way OpenOOD v1.5's evaluator computes it (OOD positive)."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from nclab.ood import NonFiniteScoresError, score_dump


def _check(id_scores: np.ndarray, ood_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    id_scores, ood_scores = np.asarray(id_scores, np.float64), np.asarray(ood_scores, np.float64)
    for name, s in (("ID", id_scores), ("OOD", ood_scores)):
        if s.ndim != 1 or len(s) == 0:
            raise ValueError(f"{name} scores must be a non-empty vector")
        if not np.all(np.isfinite(s)):
            raise ValueError(f"{name} scores contain {np.sum(~np.isfinite(s))} NaN or infinite values")
    return id_scores, ood_scores


def _counts(positive: np.ndarray, negative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(true positives, false positives) at each distinct threshold of the pooled scores, from the highest down:
    the samples scoring at least the threshold are flagged positive (scikit-learn's binary curve, as it sorts and
    sums)."""
    is_positive = np.r_[np.ones(len(positive)), np.zeros(len(negative))]
    scores = np.r_[positive, negative]
    order = np.argsort(scores, kind="mergesort")[::-1]
    scores, is_positive = scores[order], is_positive[order]
    last_of_each = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_positives = np.cumsum(is_positive, dtype=np.float64)[last_of_each]
    return true_positives, 1 + last_of_each - true_positives


def _roc(positive: np.ndarray, negative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    true_positives, false_positives = _counts(positive, negative)
    return np.r_[0, false_positives] / false_positives[-1], np.r_[0, true_positives] / true_positives[-1]


def _average_precision(positive: np.ndarray, negative: np.ndarray) -> float:
    """sum_k (R_k - R_{k-1}) P_k over the distinct thresholds from the highest, R_0 = 0."""
    true_positives, false_positives = _counts(positive, negative)
    recall = np.r_[0, true_positives / true_positives[-1]]
    return float(np.sum(np.diff(recall) * true_positives / (true_positives + false_positives)))


def auroc(id_scores: np.ndarray, ood_scores: np.ndarray) -> float:
    """P(score_ID > score_OOD) + P(tie)/2: the trapezoidal area under the ROC curve (ID positive), as
    scikit-learn's roc_auc_score computes it."""
    fpr, tpr = _roc(*_check(id_scores, ood_scores))
    return float(np.trapezoid(tpr, fpr))


def aupr_in(id_scores: np.ndarray, ood_scores: np.ndarray) -> float:
    """Average precision with ID positive: sum_k (R_k - R_{k-1}) P_k over distinct thresholds (scikit-learn's
    average_precision_score; OpenOOD integrates the curve by the trapezoid rule instead)."""
    return _average_precision(*_check(id_scores, ood_scores))


def aupr_out(id_scores: np.ndarray, ood_scores: np.ndarray) -> float:
    """Average precision with OOD positive, on the negated score."""
    id_scores, ood_scores = _check(id_scores, ood_scores)
    return _average_precision(-ood_scores, -id_scores)


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


METRICS = {"auroc": auroc, "aupr_in": aupr_in, "aupr_out": aupr_out, "fpr95": fpr_at_tpr, "fpr95_ood": fpr_at_ood_tpr}


def roc_curve(id_scores: np.ndarray, ood_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) at every distinct threshold, from (0, 0) to (1, 1), ID positive (scikit-learn's roc_curve
    without dropping intermediate points)."""
    return _roc(*_check(id_scores, ood_scores))


def metric_row(id_scores: np.ndarray, ood_scores: np.ndarray) -> dict[str, float]:
    """Every metric of :data:`METRICS`; NaN for each when the score was not computed for the run (all-NaN
    arrays: :func:`nclab.ood.score_dump`), an error for any other non-finite score."""
    if np.isnan(id_scores).all() and np.isnan(ood_scores).all():
        return dict.fromkeys(METRICS, np.nan)
    return {name: fn(id_scores, ood_scores) for name, fn in METRICS.items()}


def checkpoint_rows(
    dump: dict[str, np.ndarray], hyperparameters: Mapping[str, Mapping[str, object]], ood_sets: list[str]
) -> list[dict[str, object]]:
    """Every metric of every detector (``hyperparameters``: detector -> its hyperparameters) against every OOD
    set at one checkpoint, each detector fitted once on the dump's training split: as the final epoch's scores
    and metrics are computed. A detector whose scores are not finite at this checkpoint gets NaN metrics."""
    rows = []
    for method, hyper in hyperparameters.items():
        try:
            scores = score_dump(dump, method, ["test", *ood_sets], **hyper)
        except NonFiniteScoresError as err:
            print(f"{err}: its metrics at this checkpoint are left empty")
            scores = {split: np.full(len(dump[f"{split}_labels"]), np.nan) for split in ["test", *ood_sets]}
        rows += [{"method": method, "ood": ood, **metric_row(scores["test"], scores[ood])} for ood in ood_sets]
    return rows
