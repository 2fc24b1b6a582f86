"""OOD metrics (written with numpy, as scikit-learn computes them) against brute-force loops over pairs and
thresholds, scikit-learn's own functions, its ROC curve for the FPR@95 conventions, and known answers."""

import numpy as np
import pytest
from conftest import data_seed
from precision import float64_tolerance, half_pairs
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from nclab import ood_metrics as om


@pytest.fixture
def scores():
    rng = np.random.default_rng(data_seed(0))
    # rounded so that ties occur, within and across the two sets
    return np.round(rng.normal(1.0, 1.0, 300), 1), np.round(rng.normal(0.0, 1.0, 200), 1)


def brute_force_average_precision(positive: np.ndarray, negative: np.ndarray) -> float:
    """sum over distinct thresholds t, from the highest, of (recall gained at t) x (precision at t)."""
    total, previous_recall = 0.0, 0.0
    for t in np.unique(np.r_[positive, negative])[::-1]:
        true_pos, flagged = np.sum(positive >= t), np.sum(positive >= t) + np.sum(negative >= t)
        recall = true_pos / len(positive)
        total += (recall - previous_recall) * true_pos / flagged
        previous_recall = recall
    return total


def test_auroc_and_aupr_against_brute_force_loops(scores):
    id_s, ood_s = scores
    pairs = [2 if i > o else 1 if i == o else 0 for i in id_s for o in ood_s]
    assert half_pairs(om.auroc(id_s, ood_s), len(id_s), len(ood_s)) == sum(pairs)  # a count of pairs: exact
    # float64 both: sums over the distinct thresholds (at most n + m) of products of two count ratios in [0, 1]
    tolerance = float64_tolerance(1, sums=(len(id_s) + len(ood_s),))
    assert om.aupr_in(id_s, ood_s) == tolerance.approx(brute_force_average_precision(id_s, ood_s))
    assert om.aupr_out(id_s, ood_s) == tolerance.approx(brute_force_average_precision(-ood_s, -id_s))


def test_auroc_aupr_and_roc_curve_equal_scikit_learns(scores):
    """The same sorted counts as scikit-learn's: the ROC points exactly (ratios of counts), the areas to float64
    rounding (sums over the distinct thresholds)."""
    id_s, ood_s = scores
    s, is_id = np.r_[id_s, ood_s], np.r_[np.ones(len(id_s)), np.zeros(len(ood_s))]
    tolerance = float64_tolerance(1, sums=(len(s),))
    assert om.auroc(id_s, ood_s) == tolerance.approx(roc_auc_score(is_id, s))
    assert om.aupr_in(id_s, ood_s) == tolerance.approx(average_precision_score(is_id, s))
    assert om.aupr_out(id_s, ood_s) == tolerance.approx(average_precision_score(1 - is_id, -s))
    fpr, tpr, _ = roc_curve(is_id, s, drop_intermediate=False)
    ours = om.roc_curve(id_s, ood_s)
    assert np.array_equal(ours[0], fpr) and np.array_equal(ours[1], tpr)


def test_flipped_sign_gives_one_minus_auroc(scores):
    id_s, ood_s = scores
    a = om.auroc(id_s, ood_s)
    assert a > 0.5  # the ID scores are drawn one standard deviation above the OOD ones: a is about 0.76
    # exact: negating both sets reverses every pair's order and keeps the ties
    n, m = len(id_s), len(ood_s)
    assert half_pairs(om.auroc(-id_s, -ood_s), n, m) == 2 * n * m - half_pairs(a, n, m)
    assert om.auroc(-id_s, -ood_s) < 0.5


def test_perfect_and_useless_scores():
    assert om.auroc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    assert om.auroc(np.ones(5), np.ones(7)) == 0.5
    assert om.fpr_at_tpr(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 0.0


def test_fpr_at_95_tpr_against_threshold_sweep(scores):
    id_s, ood_s = scores
    best = None
    for t in np.unique(id_s):  # the largest threshold keeping at least 95 % of ID samples
        if np.mean(id_s >= t) >= 0.95:
            best = t
    assert om.fpr_at_tpr(id_s, ood_s) == np.mean(ood_s >= best)  # count / m, one rounding on both sides: exact


def test_both_fpr_at_95_conventions_against_scikit_learn_roc_curves(scores):
    """Each convention as its benchmark computes it from scikit-learn's ROC curve: the first point whose TPR
    reaches 95 %, with ID positive (Energy/ViM papers) or OOD positive on the negated score (OpenOOD v1.5)."""
    id_s, ood_s = scores
    s, is_id = np.r_[id_s, ood_s], np.r_[np.ones(len(id_s)), np.zeros(len(ood_s))]
    for positive, score, ours in ((is_id, s, om.fpr_at_tpr), (1 - is_id, -s, om.fpr_at_ood_tpr)):
        fpr, tpr, _ = roc_curve(positive, score)
        assert ours(id_s, ood_s) == fpr[np.argmax(tpr >= 0.95)]  # count / total, one rounding on both sides: exact
    # they differ: one counts OOD samples accepted, the other ID samples flagged
    assert om.fpr_at_tpr(id_s, ood_s) != om.fpr_at_ood_tpr(id_s, ood_s)


def test_fpr_at_95_conventions_mirror_each_other(scores):
    """Swapping the roles of the two sets (and the score's sign) turns one convention into the other."""
    id_s, ood_s = scores
    # fractions of counts, each one correctly rounded division: compared exactly
    assert om.fpr_at_ood_tpr(id_s, ood_s) == om.fpr_at_tpr(-ood_s, -id_s)
    # a known answer: OOD scores 0..19, ID scores 10..29; flagging 19 of 20 OOD samples needs threshold 18,
    # which flags the ID scores 10..18: 9 of 20
    assert om.fpr_at_ood_tpr(np.arange(10.0, 30.0), np.arange(20.0)) == 9 / 20
    # keeping 19 of 20 ID samples needs threshold 11, which accepts the OOD scores 11..19: 9 of 20
    assert om.fpr_at_tpr(np.arange(10.0, 30.0), np.arange(20.0)) == 9 / 20


def test_roc_curve_area_is_auroc(scores):
    fpr, tpr = om.roc_curve(*scores)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    # float64 both: the trapezoid rule sums at most n + m areas in [0, 1]
    assert np.trapezoid(tpr, fpr) == float64_tolerance(1, sums=(len(fpr),)).approx(om.auroc(*scores))


@pytest.mark.parametrize("metric", list(om.METRICS.values()))
def test_nan_is_an_error(metric):
    with pytest.raises(ValueError, match="NaN"):
        metric(np.array([1.0, np.nan]), np.array([0.0]))
