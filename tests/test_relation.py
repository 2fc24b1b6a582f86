"""The NC-detection relation: planted cases whose verdict is known, against the stated rule."""

import itertools

import numpy as np
import pandas as pd
from conftest import data_seed
from precision import float64_tolerance
from scipy.stats import pearsonr

from nclab import relation, report, report_depth
from nclab.runs import final_epochs, layer_order


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
    rng = np.random.default_rng(1)
    table = trajectories(lambda s, seed, e, nc1: 0.5 + 0.2 * nc1 + rng.normal(0, 0.01))
    assert the_verdict(table) == "contradicted"


def test_every_seed_giving_the_same_correlation_is_a_zero_width_interval_and_no_evidence():
    """Two or three seeds whose runs all give rho = 1 exactly (a monotone trajectory): the t-interval over seeds
    has zero width, which measures no spread, so no claim is tested and the sentence says why."""
    for seeds in ((0, 1), (0, 1, 2)):
        table = trajectories(lambda s, seed, e, nc1: 1 - nc1 / 4, seeds=seeds)
        rows = relation.relation(table, ["schedule"], ["nc1"], "svhn")
        assert rows["mean"].item() == 1.0 and rows["low"].item() == rows["high"].item() == 1.0
        assert rows["verdict"].item() == "no claim can be tested"
        sentence = report.relation_macros(rows)["RelationNCOneSentence"]
        assert "an interval of zero width, which is no evidence" in sentence


def test_a_correlation_needs_five_checkpoints():
    """With 4 checkpoints a perfect rank correlation is not significant at 5 % by the exact permutation test
    (brute force over the 4! orders); with 5 it is. Runs of 4 checkpoints give no correlation and say so."""
    for n, significant in ((4, False), (5, True)):
        orders = list(itertools.permutations(range(n)))
        extreme = sum(abs(relation.spearman_rows(np.arange(n)[None], np.array([o]))[0]) == 1 for o in orders)
        assert (extreme / len(orders) < 0.05) == significant and (n >= relation.MIN_POINTS) == significant
    rng = np.random.default_rng(0)
    noisy = lambda s, seed, e, nc1: 0.6 + 0.3 * (1 - nc1 / 2) + rng.normal(0, 0.02)  # noqa: E731
    assert the_verdict(trajectories(noisy, epochs=range(1, 6))) == "supported"
    rows = relation.relation(trajectories(noisy, epochs=range(1, 5)), ["schedule"], ["nc1"], "svhn")
    assert rows["verdict"].item() == "no claim can be tested" and rows["seeds"].item() == 0
    assert "fewer than 5 checkpoints give no correlation" in report.relation_macros(rows)["RelationNCOneSentence"]


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
    noisy = x + 3 * np.sin(3 * x)  # rank-correlated with x, not monotone
    assert relation.verdict(relation.bootstrap_over_runs(x, noisy)) == "supported"
    assert relation.verdict(relation.bootstrap_over_runs(x, -noisy)) == "contradicted"
    monotone = relation.bootstrap_over_runs(x, -x)  # every resample gives rho = -1: a zero-width interval
    assert monotone.low == monotone.high == -1 and relation.verdict(monotone) == "no claim can be tested"
    assert relation.verdict(relation.bootstrap_over_runs(x[:4], noisy[:4])) == "no claim can be tested"
    assert np.isnan(relation.spearman(x[:4], noisy[:4])) and np.isnan(relation.spearman(x[:6] * 0, x[:6]))


def test_row_wise_spearman_equals_scipy_row_by_row():
    """The bootstrap's vectorised Spearman against scipy's on each row: ties (integer values), constant rows."""
    rng = np.random.default_rng(data_seed(5))
    x, y = rng.integers(0, 4, (200, 7)).astype(float), rng.normal(size=(200, 7))
    x[3], y[4] = 2.0, 1.0  # a constant row on either side
    rows = relation.spearman_rows(x, y)
    expected = np.array([relation.spearman(a, b) for a, b in zip(x, y)])
    assert np.array_equal(np.isnan(rows), np.isnan(expected)) and np.isnan(rows[[3, 4]]).all()
    # float64 both: ranks summed over 7 values, one division and square root
    assert rows[~np.isnan(rows)] == float64_tolerance(1.0, sums=(7,), condition=4).approx(expected[~np.isnan(rows)])


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


def depth_table(auroc_of, layers=6, seeds=(0, 1, 2), epochs=(1, 2)) -> pd.DataFrame:
    """Constructed layers.csv rows of one schedule: NC1 falls with depth; ``auroc_of(seed, epoch, depth, nc1)``
    gives one detector's AUROC, its FPR@95 falling as the AUROC rises; a multi-layer row per checkpoint."""
    rows = []
    for seed in seeds:
        for epoch in epochs:
            for depth in range(layers):
                nc1 = 8.0 / (depth + 1) / epoch
                auroc = auroc_of(seed, epoch, depth, nc1)
                rows.append(
                    {"schedule": "standard", "seed": seed, "epoch": epoch, "layer": f"l{depth}", "nc1": nc1}
                    | {"method": "knn", "ood": "svhn", "auroc": auroc, "fpr95": 1 - auroc}
                )
            rows.append(
                {"schedule": "standard", "seed": seed, "epoch": epoch, "layer": "all", "nc1": np.nan}
                | {"method": "multi_mahalanobis", "ood": "svhn", "auroc": 0.9, "fpr95": 0.2}
            )
    return pd.DataFrame(rows)


def test_pearson_equals_scipys_and_needs_five_points():
    rng = np.random.default_rng(data_seed(11))
    x, y = rng.normal(size=9), rng.normal(size=9)
    # float64 both: sums of 9 terms, a square root and a division
    assert relation.pearson(x, y) == float64_tolerance(1.0, sums=(9,), condition=4).approx(pearsonr(x, y)[0])
    assert np.isnan(relation.pearson(x[:4], y[:4])) and np.isnan(relation.pearson(np.ones(6), y[:6]))


def test_detection_rising_with_collapse_across_depth_is_supported_at_the_final_checkpoint():
    """Harun et al.'s claim planted: AUROC rises as -log NC1 rises with depth, with noise; both correlations of
    both metrics (FPR@95 negated) are positive at every checkpoint and the final checkpoint's verdict is
    supported; the multi-layer rows are left out."""
    rng = np.random.default_rng(0)
    table = depth_table(lambda seed, epoch, depth, nc1: 0.5 + 0.05 * depth + rng.normal(0, 0.03))
    correlations = relation.across_depth(table, ["schedule"], "svhn")
    assert set(correlations["method"]) == {"knn"} and (correlations["layers"] == 6).all()
    assert (correlations["rho"] > 0).all()
    final = final_epochs(correlations, "balanced")
    assert set(final["epoch"]) == {2} and len(final) == 3 * 2 * 2  # seeds x metrics x correlations
    verdicts = relation.depth_relation(final)
    assert set(verdicts["verdict"]) == {"supported"} and len(verdicts) == 4
    monotone = depth_table(lambda seed, epoch, depth, nc1: 0.5 + 0.05 * depth)  # Spearman 1 in every seed
    spearman = relation.depth_relation(relation.across_depth(monotone, ["schedule"], "svhn")).query(
        "correlation == 'spearman'"
    )
    assert set(spearman["verdict"]) == {"no claim can be tested"}  # a zero-width interval is no evidence


def test_four_layers_give_no_correlation_across_depth():
    table = depth_table(lambda seed, epoch, depth, nc1: 0.5 + 0.05 * depth + 0.001 * seed, layers=4)
    verdicts = relation.depth_relation(relation.across_depth(table, ["schedule"], "svhn"))
    assert set(verdicts["verdict"]) == {"no claim can be tested"} and (verdicts["seeds"] == 0).all()


def test_the_interval_across_depth_stays_within_the_range_of_a_correlation():
    """Two seeds of opposite correlations give a t-interval wider than [-1, 1]; it is cut there, its verdict
    unchanged."""
    table = depth_table(lambda seed, epoch, depth, nc1: 0.5 + (0.05 if seed else -0.01) * depth, seeds=(0, 1))
    correlations = final_epochs(relation.across_depth(table, ["schedule"], "svhn"), "balanced")
    raw = relation.across_seeds(correlations.query("metric == 'auroc' and correlation == 'pearson'"))
    assert raw.low < -1 and raw.high > 1  # opposite correlations: 12.7 half-spreads on each side of a mean near 0
    cut = relation.depth_relation(correlations).query("metric == 'auroc' and correlation == 'pearson'").iloc[0]
    assert (cut["low"], cut["high"]) == (-1.0, 1.0) and cut["verdict"] == relation.verdict(raw) == "not resolved"


def test_the_depth_parts_table_and_sentences_say_what_the_constructed_layers_hold():
    """A planted relation (AUROC rising with collapse, with noise) reads as supported, bold in the table; four
    layers read as untested, with the reason; the sentences name the layers at both ends."""
    rng = np.random.default_rng(0)
    table = depth_table(lambda seed, epoch, depth, nc1: 0.5 + 0.05 * depth + rng.normal(0, 0.03))
    table["depth"] = [6 if layer == "all" else int(layer[1:]) for layer in table["layer"]]
    correlations = report_depth.correlations(table, "svhn")
    final = relation.depth_relation(final_epochs(correlations, report_depth.STUDY))
    latex = report_depth.relation_table(final)
    assert latex.count(r"\textbf{") == 4 and r"\textit{" not in latex and latex.count(r"\\") == 3  # 2 header rows
    assert layer_order(table) == [f"l{d}" for d in range(6)]
    sentence = report_depth.relation_sentence(final.assign(method="knn"), 6, "svhn")
    assert sentence.endswith("the interval lies above 0 for KNN")
    assert "fewer than the 5" in report_depth.relation_sentence(final, 4, "svhn")
    collapse = report_depth.collapse_sentence(table.assign(method="mahalanobis"), ["standard"])
    assert r"from 4.000 at \texttt{l0} to 0.667 at \texttt{l5}" in collapse  # NC1 = 8 / (depth + 1) / epoch 2
    assert collapse.endswith("in 3 of the 3 runs")
