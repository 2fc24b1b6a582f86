"""Published results: the data file, which rows each preset's tables find, and the tables built from them."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from precision import float64_tolerance
from test_config_report import merge

from nclab import published
from nclab import report_longtail as lt
from nclab.plan import longtail_grid

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = published.load(ROOT / "paper" / "published_results.csv")
DEFAULTS = yaml.safe_load((ROOT / "config.yaml").read_text())


def preset(name: str) -> dict:
    return merge(DEFAULTS, yaml.safe_load((ROOT / "presets" / f"{name}.yaml").read_text()))


def balanced_rows(config: dict) -> pd.DataFrame:
    return published.balanced_matches(
        PUBLISHED,
        config["data"]["dataset"],
        config["model"]["arch"],
        config["data"]["ood_sets"],
        list(config["ood"]["methods"]),
    )


def longtail_rows(config: dict) -> pd.DataFrame:
    lt_config = config["longtail"]
    return published.longtail_matches(
        PUBLISHED, config["data"]["dataset"], lt_config["model"]["arch"], lt_config["ratios"], lt_config["losses"]
    )


def test_every_source_is_a_reference_of_the_paper():
    keys = set(re.findall(r"@\w+\{(\w+),", (ROOT / "paper" / "references.bib").read_text()))
    assert set(PUBLISHED["source_key"]) <= keys
    assert PUBLISHED["source"].str.strip().astype(bool).all()


def source_rows(key: str, dataset: str) -> set[int]:
    return set(PUBLISHED.index[(PUBLISHED["source_key"] == key) & (PUBLISHED["dataset"] == dataset)])


def found_rows(rows: pd.DataFrame) -> set[int]:
    return set(PUBLISHED.reset_index().merge(rows, on=list(PUBLISHED.columns))["index"])


@pytest.mark.parametrize("name", ["cifar10-ood", "cifar100-ood"])
def test_balanced_presets_find_their_published_rows(name):
    """OpenOOD v1.5's whole CIFAR/ResNet-18 entry (near/far AUROC of our scores, accuracy) and, on CIFAR-100,
    every number of the seed report."""
    config = preset(name)
    dataset = config["data"]["dataset"]
    rows = balanced_rows(config)
    assert set(rows["method"]) - {""} <= set(config["ood"]["methods"])
    for ood_set in set(rows["ood_set"]) - {""}:
        assert set(published.ood_group(dataset, ood_set)) <= set(config["data"]["ood_sets"])
    expected = source_rows("zhang2023openood", dataset)
    if dataset == "cifar100":
        expected |= source_rows("gros2026report", dataset)
    assert len(source_rows("zhang2023openood", dataset)) == 2 * 17 + 1  # near/far AUROC of 17 detectors, accuracy
    assert found_rows(rows) == expected
    # without the optional TinyImageNet folder, OpenOOD's near-OOD average has no counterpart
    present = [s for s in config["data"]["ood_sets"] if s != "tinyimagenet"]
    fewer = published.balanced_matches(PUBLISHED, dataset, "resnet18", present, list(config["ood"]["methods"]))
    assert "near" not in set(fewer["ood_set"]) and "far" in set(fewer["ood_set"])


def test_a_group_is_compared_with_the_mean_over_its_sets():
    far = PUBLISHED[
        (PUBLISHED["source_key"] == "zhang2023openood")
        & (PUBLISHED["dataset"] == "cifar10")
        & (PUBLISHED["ood_set"] == "far")
        & (PUBLISHED["method"] == "msp")
    ]
    ood = pd.DataFrame(
        [
            {"schedule": "standard", "seed": seed, "method": "msp", "ood": o, "auroc": a + seed / 100}
            for seed in (0, 1)
            for o, a in zip(published.FAR_OOD, (0.9, 0.8, 0.7, 0.6))
        ]
    )
    comparison = published.compared(far, {"ood": ood, "collapse": ood}, {"standard": 200})
    # float64: 100 (a + seed / 100), a mean over 2 seeds and a difference, a few roundings at the scale of 100
    percent = float64_tolerance(100, sums=(2,))
    assert np.allclose(comparison.loc[0, "ours"], [75.0, 76.0], **percent)
    assert comparison.loc[0, "delta"] == percent.approx(75.5 - 90.73)
    assert published.compared(far, {"ood": ood[ood["ood"] != "mnist"], "collapse": ood}, {"standard": 200}).empty


@pytest.mark.parametrize("name", ["cifar10-lt", "cifar100-lt", "imagenet-lt"])
def test_longtail_presets_find_a_published_number_for_each_baseline(name):
    config = preset(name)
    rows = longtail_rows(config)
    ratios = [float(r) for r in config["longtail"]["ratios"]]
    found = set(zip(rows["imbalance_ratio"], rows["method"]))
    published_here = PUBLISHED[
        (PUBLISHED["dataset"] == config["data"]["dataset"])
        & PUBLISHED["imbalance_ratio"].isin(ratios)
        & (PUBLISHED["metric"] == "top1")
        & (PUBLISHED["architecture"] == config["longtail"]["model"]["arch"])
    ]
    expected = {
        (r, loss)
        for r, loss in zip(published_here["imbalance_ratio"], published_here["method"])
        if loss in config["longtail"]["losses"]
    }
    assert found and found == expected
    assert not rows.duplicated(["imbalance_ratio", "method"]).any()


@pytest.mark.parametrize("name", ["config", "synthetic-cifar"])
def test_the_miniatures_find_none(name):
    config = DEFAULTS if name == "config" else preset(name)
    assert balanced_rows(config).empty and longtail_rows(config).empty


def test_a_bad_row_is_named_with_its_line_and_field(tmp_path):
    good = (ROOT / "paper" / "published_results.csv").read_text().splitlines()
    bad = good[1].split(",")
    path = tmp_path / "published.csv"
    path.write_text(
        "\n".join([good[0], good[1], good[1].replace(",auroc,", ",aurocc,"), good[1].replace(",82.8,", ",high,")])
        + "\n"
    )
    with pytest.raises(ValueError) as error:
        published.load(path)
    assert f"{path}, line 3: unknown metric 'aurocc'" in str(error.value)
    assert f"{path}, line 4: value 'high' is not a finite number" in str(error.value)
    assert bad[0] == "gros2026report"


def comparison_inputs(our_auroc: float):
    rows = PUBLISHED[(PUBLISHED["source_key"] == "gros2026report") & (PUBLISHED["method"] == "energy")]
    ood = pd.DataFrame(
        [
            {"schedule": s, "seed": seed, "method": "energy", "ood": "svhn", "auroc": our_auroc + d}
            for s in ("standard", "extended")
            for seed, d in ((0, -0.01), (1, 0.01))
        ]
    )
    collapse = pd.DataFrame(columns=["schedule", "seed"])
    return rows, {"ood": ood, "collapse": collapse}


def test_published_numbers_are_set_beside_the_schedule_with_their_epochs():
    rows, tables = comparison_inputs(0.90)
    comparison = published.compared(rows, tables, {"standard": 200, "extended": 600})
    assert list(comparison["schedule"]) == ["standard", "extended"]  # 200 -> standard, 600 -> extended
    percent = float64_tolerance(100, sums=(2,))  # float64 percentages: a mean over 2 seeds, a difference
    assert np.allclose(comparison["ours_mean"], 90.0, **percent)
    assert np.allclose(comparison["delta"], [90.0 - 85.8, 90.0 - 85.7], **percent)
    # without a schedule of the same length, the row is set beside every schedule and the difference named
    comparison = published.compared(rows.iloc[:1], tables, {"standard": 30, "extended": 90})
    assert list(comparison["schedule"]) == ["standard", "extended"]
    notes = published.differences(comparison, lambda row: [row["our_epochs"]])
    assert notes == {"gros2026report": ["one run", "200 epochs published, 30 ours", "200 epochs published, 90 ours"]}
    text = published.balanced_comparison(comparison, notes, "CIFAR-100, ResNet-18", str)
    assert r"\label{tab:published}" in text and "$+4.2$" in text and "$+4.2$ points on average over 2 pairs" in text


def test_no_match_gives_a_sentence_not_an_empty_table():
    empty = published.compared(PUBLISHED.iloc[:0], comparison_inputs(0.9)[1], {"standard": 200})
    text = published.balanced_comparison(empty, {}, "synthetic CIFAR-shaped data, ResNet-18", str)
    assert text.startswith("No published result matches this setting") and "tabular" not in text


def final_table(accuracy: float) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "ratio": 100.0,
                "loss": loss,
                "strategy": strategy,
                "seed": 0,
                "network_accuracy_test": accuracy,
                **{f"accuracy_{g}": accuracy for g in lt.GROUPS},
            }
            for _, loss, strategy in longtail_grid([100], ["ce", "ldam_drw"], ["none", "reg"])
        ]
    )


def test_the_longtail_accuracy_table_shows_published_and_delta_only_where_rows_match():
    final = final_table(0.5)
    rows = pd.DataFrame(
        [
            {
                "source_key": "cao2019ldam",
                "imbalance_ratio": 100.0,
                "method": "ce",
                "value": 40.0,
                "conditions": "",
                "epochs": 200.0,
            }
        ]
    )
    table = lt.accuracy_table(final, rows)
    assert "Published & $\\Delta$" in table and "40.0 & $+10.0$" in table
    assert table.count("-- & --") == 3  # CE+reg, LDAM-DRW, LDAM-DRW+reg
    note = lt.published_note(rows, final, "CIFAR-10-LT, ResNet-32", {"cao2019ldam": []})
    assert r"\citet{cao2019ldam}" in note and "$+10.0$ points over 1 baseline " in note
    bare = lt.accuracy_table(final, rows.iloc[:0])
    assert "Published" not in bare and "--" not in bare.replace("---", "")
    assert lt.published_note(rows.iloc[:0], final, "synthetic", {}).startswith("No published result matches")


@pytest.mark.parametrize("name", ["mnist-ood", "fashionmnist-ood"])
def test_the_28x28_presets_find_openoods_lenet_and_the_msp_numbers_of_other_networks(name):
    """OpenOOD v1.0's LeNet accuracy on MNIST (our network), and MSP AUROCs measured with other networks
    (LeNetMadry, an MLP), which are set beside ours with their network named in the remaining differences."""
    config = preset(name)
    dataset = config["data"]["dataset"]
    rows = balanced_rows(config)
    expected = source_rows("meinke2020towards", dataset)
    if dataset == "mnist":
        expected |= source_rows("yang2022openood", dataset) | source_rows("hendrycks2017msp", dataset)
    assert expected and found_rows(rows) == expected
    other_networks = rows[rows["architecture"] != "lenet"]
    assert (other_networks["conditions"].str.startswith("their network: ")).all() and len(other_networks)
    notes = published.differences(rows, lambda row: [100])
    assert any("LeNetMadry" in note for note in notes["meinke2020towards"])
    assert found_rows(balanced_rows(preset("cifar10-ood"))).isdisjoint(expected)  # only on their own dataset
