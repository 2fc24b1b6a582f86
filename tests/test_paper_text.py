"""Every sentence of the paper whose truth depends on the results: each generated sentence against the condition
it states, each ranking against a paired test computed independently (scipy's ttest_rel), and the fixed text of
paper/*.tex free of words that rank without a test."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import data_seed
from scipy.stats import ttest_rel

from nclab import published, ranking, report
from nclab import report_longtail as lt

ROOT = Path(__file__).resolve().parents[1]
RANKING_WORDS = re.compile(r"\b(best|outperforms?|better|worse|superior|dominant)\b", re.IGNORECASE)


def seeds_by_candidate(values: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame(values, index=pd.Index(range(len(next(iter(values.values())))), name="seed"))


@pytest.mark.parametrize("seed", range(20))
def test_a_paired_order_agrees_with_scipys_paired_t_test(seed):
    rng = np.random.default_rng(data_seed(seed))
    first = rng.normal(size=4)
    second = first + rng.normal(loc=rng.choice([-2.0, 0.0, 2.0]), scale=1.0, size=4)
    interval = ttest_rel(first, second).confidence_interval(0.95)
    expected = "higher" if interval.low > 0 else "lower" if interval.high < 0 else "within the spread"
    assert ranking.order(first, second) == expected
    assert ranking.order(first[:1], second[:1]) == "not tested"


def test_a_leader_is_separated_only_from_what_the_paired_test_resolves():
    values = seeds_by_candidate({"msp": [0.9, 0.91, 0.92], "energy": [0.8, 0.81, 0.82], "knn": [0.5, 0.95, 0.7]})
    best = ranking.leader(values)
    assert (best.name, best.unresolved, best.seeds) == ("msp", ("knn",), 3)
    assert ranking.leader(values, higher_is_better=False).name == "knn"


def test_the_leader_sentence_ranks_only_what_the_test_supports():
    label = str
    clear = ranking.leader(seeds_by_candidate({"msp": [0.9, 0.91, 0.92], "energy": [0.8, 0.81, 0.82]}))
    assert report.leader_sentence({"a": clear}, label, "detector") == (
        "MSP (a: 0.910); a paired comparison over 3 seeds (95\\,\\% $t$-intervals) separates its lead from every "
        "other detector"
    )
    tied = ranking.leader(seeds_by_candidate({"msp": [0.9, 0.7], "energy": [0.8, 0.75], "knn": [0.1, 0.2]}))
    text = report.leader_sentence({"a": tied, "b": clear}, label, "detector")
    assert "leaves its lead within the spread of 2 (a) and 0 (b) other detectors" in text  # MSP leads both
    single = ranking.leader(seeds_by_candidate({"msp": [0.9], "energy": [0.8]}))
    assert report.leader_sentence({"a": single}, label, "detector").endswith("no ranking of the detectors is tested")


def test_the_terminal_phase_is_named_only_for_schedules_that_fit_the_training_set():
    none = report.terminal_phase_sentence({"standard": None, "extended": None})
    assert none.startswith("No saved checkpoint fits the whole training set") and "never enter" in none
    some = report.terminal_phase_sentence({"standard": None, "extended": 70})
    assert some.startswith("The epochs after epoch 70 (extended) form the terminal phase")
    assert some.endswith("the standard schedule never reaches it.")
    both = report.terminal_phase_sentence({"standard": 20, "extended": 70})
    assert "never" not in both


def final_collapse(nc1: dict[str, list[float]], nc3: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"schedule": s, "seed": seed, "epoch": 10, "nc1": nc1[s][seed], "nc3": nc3[s][seed]}
            for s in nc1
            for seed in range(len(nc1[s]))
        ]
    )


def test_the_schedules_are_compared_by_a_paired_test_not_by_their_means():
    resolved = final_collapse(
        {"extended": [0.1, 0.2, 0.3], "standard": [0.5, 0.6, 0.7]}, {"extended": [1, 2, 3], "standard": [3, 1, 2]}
    )
    text = report.schedule_comparison_sentence(resolved, "extended", "standard")
    assert text.startswith("The extended schedule ends with a lower NC1 than the standard one")
    assert "the difference in NC3 between the extended and standard schedules is within the spread over 3 seeds" in text
    single = final_collapse({"extended": [0.1], "standard": [0.5]}, {"extended": [1.0], "standard": [2.0]})
    assert "not compared by a test" in report.schedule_comparison_sentence(single, "extended", "standard")
    assert "lower" not in report.schedule_comparison_sentence(single, "extended", "standard")


def test_a_mean_dominated_by_one_seed_is_named_with_every_seed_value():
    rows = [
        {"ratio": 50.0, "loss": "ce", "strategy": "reg", "seed": 0, "nc1": 0.56, "nc3": 0.3},
        {"ratio": 50.0, "loss": "ce", "strategy": "reg", "seed": 1, "nc1": 43.59, "nc3": 0.4},
        {"ratio": 50.0, "loss": "ce", "strategy": "none", "seed": 0, "nc1": 1.0, "nc3": 0.3},
        {"ratio": 50.0, "loss": "ce", "strategy": "none", "seed": 1, "nc1": 9.0, "nc3": 0.3},
    ]
    text = lt.outlier_sentence(pd.DataFrame(rows))
    assert text == (
        "One seed dominates the mean of this cell of \\cref{tab:lt-geometry}: NC1 of SpA-Reg with CE at IR 50: "
        "0.56 (seed 0) and 43.59 (seed 1)."
    )
    assert lt.outlier_sentence(pd.DataFrame(rows[2:])) == ""


@pytest.mark.parametrize(
    "losses, strategies, expected",
    [
        (["ce"], ["none", "reg", "proj"], "colour: strategy; loss: CE"),
        (["ce", "etf"], ["none"], "line style: loss; strategy: none"),
        (["ce", "etf"], ["none", "reg"], "colour: strategy; line style: loss"),
    ],
)
def test_the_figures_key_names_only_what_varies(losses, strategies, expected):
    assert lt.line_styles_note(losses, strategies) == expected


def test_method_paragraphs_describe_only_the_losses_heads_and_strategies_that_ran():
    assert lt.reconstruction_sentence(["none", "proj"], ["ce"]) == ""
    assert "SpA-SLERP moves the classifier" in lt.reconstruction_sentence(["none", "slerp"], ["ce", "etf"])
    assert lt.reconstruction_sentence(["none", "reg"], ["ce"]).startswith(r"\textbf{SpA-Reg is our reconstruction}")
    assert lt.normalised_heads_sentence(["ce", "logit_adjustment"]) == ""
    assert "normalised head of LDAM-DRW depend" in lt.normalised_heads_sentence(["ce", "ldam_drw"])
    settings = {"dataset": "cifar10", "strategies": ["none"]}
    assert lt.discussion(settings, pd.DataFrame(), "") == ""
    assert "miniature" in lt.discussion({"dataset": "digits", "strategies": ["none", "reg"]}, pd.DataFrame(), "")
    assert lt.threshold_note({"many": 100, "few": 20}) == "as on CIFAR-LT and ImageNet-LT"


def test_a_skipped_ood_set_is_named_in_the_table_and_the_text():
    table = report.ood_sets_table("cifar10", {"svhn": 26032}, {"tinyimagenet": "folder data/tin not found"})
    assert r"tinyimagenet & near & -- & skipped: folder data/tin not found \\" in table
    assert "tinyimagenet (folder data/tin not found)" in report.skipped_sentence(
        {"tinyimagenet": "folder data/tin not found"}
    )
    assert report.skipped_sentence({}) == ""


def test_a_published_group_average_whose_sets_we_lack_is_said_to_be_left_out():
    table = published.load(ROOT / "paper" / "published_results.csv")
    full = ["cifar100", "tinyimagenet", "mnist", "svhn", "textures", "places365"]
    assert published.missing_groups(table, "cifar10", "resnet18", full) == {}
    missing = published.missing_groups(table, "cifar10", "resnet18", [s for s in full if s != "tinyimagenet"])
    assert missing == {"near": ["tinyimagenet"]}
    assert "the near-OOD average (over cifar100, tinyimagenet) lacks tinyimagenet" in published.missing_groups_sentence(
        missing, "cifar10"
    )


def test_the_limitations_state_what_the_seed_count_allows():
    assert "no difference between its methods, schedules or strategies is tested" in report.seeds_limitation(1, "X")
    assert "reaches 12.7 standard errors" in report.seeds_limitation(2, "X")
    assert "4.3 standard errors" in report.seeds_limitation(3, "X", short=True)


def test_the_fixed_text_ranks_nothing():
    """Rankings come only from generated sentences that carry their test; the .tex files hold none."""
    for path in sorted((ROOT / "paper").glob("*.tex")):
        text = re.sub(r"(?m)%.*$", "", path.read_text())
        assert not RANKING_WORDS.findall(text), path.name
