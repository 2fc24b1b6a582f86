"""The NC-detection relation: planted cases whose verdict is known, against the stated rule."""

import numpy as np
import pandas as pd
from precision import float64_tolerance

from nclab import relation, report


def trajectories(auroc_of, seeds=(0, 1, 2), epochs=range(1, 9)) -> pd.DataFrame:
    """Constructed ood/trajectory.csv rows of two schedules: NC1 (and every measure) falls with training;
    ``auroc_of(schedule, seed, epoch, nc1)`` gives the AUROC of the one detector."""
    rows = []
    for schedule in ("standard", "extended"):
        for seed in seeds:
            for epoch in epochs:
                nc1 = 2.0 / epoch
                measures = {m: nc1 for m in relation.MEASURES if m != "nc5"} | {"nc5_svhn": nc1}
                rows.append(
                    {
                        "schedule": schedule,
                        "seed": seed,
                        "epoch": epoch,
                        "method": "energy",
                        "ood": "svhn",
                        "auroc": auroc_of(schedule, seed, epoch, nc1),
                        **measures,
                    }
                )
    return pd.DataFrame(rows)


def the_verdict(table: pd.DataFrame, measure: str = "nc1") -> str:
    rows = relation.relation(table, ["schedule"], [measure], "svhn")
    (verdict,) = rows["verdict"]
    return verdict


# The planted cases' random draws keep their seeds (not conftest.data_seed): a verdict is a 95 % interval's, so a
# case planted as "not resolved" is resolved by about one draw in twenty; these seeds give the planted verdicts.


def test_auroc_rising_with_collapse_gives_a_positive_correlation_and_supported():
    rng = np.random.default_rng(0)
    table = trajectories(lambda s, seed, e, nc1: 0.6 + 0.3 * (1 - nc1 / 2) + rng.normal(0, 0.01))
    rows = relation.relation(table, ["schedule"], ["nc1", "nc5"], "svhn")
    assert (rows["mean"] > 0.8).all() and (rows["low"] > 0).all()
    assert list(rows["verdict"]) == ["supported", "supported"]
    assert report.relation_macros(rows)["RelationNCOneVerdict"] == "supported"


def test_auroc_falling_with_collapse_is_contradicted():
    table = trajectories(lambda s, seed, e, nc1: 0.5 + 0.2 * nc1 + 0.001 * seed)
    assert the_verdict(table) == "contradicted"


def test_shuffled_aurocs_are_not_resolved():
    rng = np.random.default_rng(3)
    table = trajectories(lambda s, seed, e, nc1: rng.uniform(0.5, 0.9))
    rows = relation.relation(table, ["schedule"], ["nc1"], "svhn")
    assert rows["low"].item() < 0 < rows["high"].item() and the_verdict(table) == "not resolved"


def test_a_single_seed_tests_no_claim():
    table = trajectories(lambda s, seed, e, nc1: 1 - nc1 / 4, seeds=(0,))
    assert the_verdict(table) == "no claim can be tested"
    macros = report.relation_macros(relation.relation(table, ["schedule"], ["nc1"], "svhn"))
    assert "with one seed no interval can be formed" in macros["RelationNCOneSentence"]
    assert (
        macros["RelationClaimSentence"].startswith("These runs cannot test")
        and macros["RelationNCOneVerdict"] == "untested"
    )


def test_the_interval_is_a_t_interval_over_the_seeds_means():
    rhos = pd.DataFrame({"seed": [0, 0, 1, 1, 2, 2], "rho": [0.9, 0.7, 0.5, 0.7, 0.6, 0.6]})
    evidence = relation.across_seeds(rhos)
    per_seed = np.array([0.8, 0.6, 0.6])
    quantile = 0.95 / np.sqrt(2 * 0.975 * 0.025)  # t_{0.975, 2} = (2p - 1) / sqrt(2p (1 - p)), exact for 2 dof
    half = quantile * per_seed.std(ddof=1) / np.sqrt(3)
    # float64 both: means of 2 and 3 values, a standard deviation of 3, times the same t quantile (4.3)
    tolerance = float64_tolerance(4.3, sums=(2, 3, 3))
    assert evidence.mean == tolerance.approx(per_seed.mean())
    assert (evidence.low, evidence.high) == tolerance.approx((per_seed.mean() - half, per_seed.mean() + half))


def test_across_runs_a_bootstrap_interval_over_runs():
    x = np.arange(12.0)
    assert relation.verdict(relation.bootstrap_over_runs(x, x + np.sin(x) * 0.1)) == "supported"
    assert relation.verdict(relation.bootstrap_over_runs(x, -x)) == "contradicted"
    assert relation.verdict(relation.bootstrap_over_runs(x[:2], x[:2])) == "no claim can be tested"
    assert np.isnan(relation.spearman([1, 2], [3, 4])) and np.isnan(relation.spearman([1, 1, 1], [1, 2, 3]))


def test_the_overall_rule():
    assert relation.overall(["supported", "supported", "not resolved"]) == "supported"
    assert relation.overall(["supported", "supported", "contradicted"]) == "not resolved"
    assert relation.overall(["contradicted", "contradicted", "supported"]) == "contradicted"
    assert relation.overall(["no claim can be tested"] * 2) == "no claim can be tested"


def test_the_verdict_sentence_names_the_small_groups_and_counts_a_long_last_one():
    many = ["msp", "maxlogit", "energy", "mahalanobis", "vim", "knn", "entropy"]
    phrase = report.verdict_phrase({"supported": ["neco", "nci"], "not resolved": many})
    assert phrase == "the interval lies above 0 for NECO and NCI; it contains 0 for the other 7 detectors"
    assert report.verdict_phrase({"not resolved": many}) == "the interval contains 0 for all 7 detectors"
    assert report.verdict_phrase({"contradicted": ["msp"]}) == "the interval lies below 0 for MSP"
