"""The paper rendered under several configurations, each sentence whose truth depends on the data checked against
the data of that build: the tiny study (both studies, one seed), the long-tail study alone (two seeds, two losses,
one strategy) and the balanced study alone (two seeds, LeNet on MNIST and Fashion-MNIST raw files in
torchvision's layout, a folder of colour images as an OOD set converted to grey, a configured OOD set whose
folder is absent, published numbers of other networks). The unit tests of each sentence are in
tests/test_paper_text.py."""

import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY, snakemake, tiny_workdir
from PIL import Image
from test_real_data import write_idx

pytestmark = pytest.mark.workflow

DETECTORS = {  # a detector of each family, ViM for the head its caption names (each build: a third of the time)
    **TINY["ood"],
    "methods": ["msp", "energy", "mahalanobis", "vim", "knn", "react", "neco"],
}
LONGTAIL_ALONE = {
    **TINY,
    "ood": DETECTORS,
    "studies": ["longtail"],
    "training": {**TINY["training"], "seeds": [0, 1]},
    "longtail": {**TINY["longtail"], "losses": ["ce", "ldam_drw"], "strategies": ["none", "reg"]},
}
BALANCED_ALONE = {
    **TINY,
    "ood": DETECTORS,
    "studies": ["balanced"],
    "data": {
        "dataset": "mnist",
        "root": "data",
        "download": False,
        "ood_sets": ["fashionmnist", "notmnist", "photos", "noise", "tinyimagenet"],
        "folders": {"notmnist": "letters", "tinyimagenet": "absent/tinyimagenet"},
        "synthetic": {"photos": {"count": 60, "patch_size": 56}, "noise": {"count": 60}},
    },
    "model": {"arch": "lenet"},
    "training": {**TINY["training"], "seeds": [0, 1], "crop_padding": 4, "flip": True, "nesterov": True},
    "layers": {"enabled": True, "final_only": ["probe_energy"]},  # the depth analysis, off in the tiny study
}
LOSS_DESCRIPTIONS = {  # how the training paragraph starts each loss's description
    "ce": "cross-entropy (CE)",
    "logit_adjustment": "logit adjustment (LA",
    "balanced_softmax": "balanced softmax (BS",
    "ldam_drw": "LDAM-DRW (margins",
    "etf": "dot-regression loss (ETF+DR)",
}
RANKING_WORDS = re.compile(r"\b(best|outperforms?|better|worse|superior)\b", re.IGNORECASE)


def run_build(tmp_path_factory, name: str, config: dict) -> Path:
    """The workflow run to the PDF on ``config`` in a scratch folder."""
    workdir = tiny_workdir(tmp_path_factory.mktemp(name), config)
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir


@pytest.fixture(scope="module")
def longtail_build(tmp_path_factory) -> Path:
    return run_build(tmp_path_factory, "longtail_alone", LONGTAIL_ALONE)


def write_28x28_sets(workdir: Path) -> None:
    """MNIST and Fashion-MNIST raw files in torchvision's layout under data/ (600 training and 200 test images,
    each class a brighter level, so that LeNet learns something in a few epochs), and a folder of colour PNGs."""
    rng = np.random.default_rng(0)
    for folder in ("MNIST", "FashionMNIST"):
        raw = workdir / "data" / folder / "raw"
        raw.mkdir(parents=True)
        for prefix, n in (("train", 600), ("t10k", 200)):
            labels = np.arange(n) % 10
            images = np.clip(rng.normal(40, 30, (n, 28, 28)) + 20 * labels[:, None, None], 0, 255)
            write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
            write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    (workdir / "letters" / "A").mkdir(parents=True)
    for i in range(12):
        colour = rng.integers(0, 256, (36, 30, 3), dtype=np.uint8)
        Image.fromarray(colour).save(workdir / "letters" / "A" / f"{i}.png")


@pytest.fixture(scope="module")
def balanced_build(tmp_path_factory) -> Path:
    workdir = tiny_workdir(tmp_path_factory.mktemp("balanced_alone"), BALANCED_ALONE)
    write_28x28_sets(workdir)
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir


def body(workdir: Path) -> str:
    """The paper's text up to its references, one space between words, typographic quotes made plain."""
    pdf = workdir / "results" / "tiny" / "paper" / "paper.pdf"
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    text = " ".join(text.replace("\u2019", "'").split())
    return text[: text.rindex("References")]


def metric_tables(workdir: Path, pattern: str) -> pd.DataFrame:
    """The tables matching ``pattern`` under results/tiny/runs, concatenated (each row names its run's keys)."""
    return pd.concat(pd.read_csv(p) for p in (workdir / "results/tiny/runs").glob(pattern))


def check_below_chance(text: str, metrics: pd.DataFrame, keys: list[str], scope: str) -> None:
    """The below-chance sentence against the mean AUROCs over seeds; ``scope``: a regular expression."""
    means = metrics.groupby([*keys, "method", "ood"])["auroc"].mean().dropna()
    below = int((means < 0.5).sum())
    if below:
        assert re.search(rf"{below} of the {len(means)} mean AUROCs {scope} lie below 0\.5", text)
    else:
        assert re.search(rf"No mean AUROC {scope} lies below 0\.5\.", text)


def check_common(text: str, seeds: int) -> None:
    directions = ("goes with better detection", "higher is better", "lower is better")  # no ranking of ours
    assert not RANKING_WORDS.findall(re.sub("|".join(directions), "", text))
    assert not re.search(r"and \d+ more", text) and "The run of the first of" not in text
    assert not re.findall(r"\S*[a-z0-9)]\.[A-Z][a-z]+", text), "a sentence glued to the previous one (a lost space)"
    assert ("no ranking of the detectors is tested" in text) == (seeds == 1)
    if seeds > 1:
        assert f"paired comparison over {seeds} seeds" in text


def test_the_long_tail_study_alone_says_what_ran_and_no_more(longtail_build):
    """The long-tail study with two seeds, two losses and a strategy: each sentence that depends on what ran
    (losses, heads, strategies, seeds, below-chance AUROCs) checked against this build's own tables."""
    build = longtail_build
    text = body(build)
    check_common(text, seeds=2)
    assert "Training dynamics" not in text  # no balanced section
    assert "The long-tail study ran 2 seeds" in text
    # the losses, heads and strategies that ran, and no other
    for loss, described in LOSS_DESCRIPTIONS.items():
        assert (described in text) == (loss in LONGTAIL_ALONE["longtail"]["losses"]), loss
    assert "fixed ETF head" not in text and "ETF+DR" not in text
    assert "normalised head of LDAM-DRW" in text  # the ViM caption and the metrics paragraph name the head that ran
    assert "line style: loss" in text and "colour: strategy" in text
    assert "ratio; colour: strategy; line style: loss. Markers: mean over 2 seeds." in text  # one IR: no lines
    assert "SpA-Reg is our reconstruction" in text and "SpA-SLERP rotates" not in text and "SpA-Proj (from" not in text
    metrics = metric_tables(build, "longtail/*/*/*/seed*/ood/metrics.csv")
    scope = re.escape("of the long-tail runs (every detector, OOD set and run group)")
    check_below_chance(text, metrics, ["ratio", "loss", "strategy"], scope)


def test_the_balanced_study_alone_says_what_ran_and_what_was_skipped(balanced_build):
    """Real-image formats through the whole workflow (LeNet on MNIST/Fashion-MNIST raw files, a colour folder
    converted to grey, an absent folder skipped and named), and each data-dependent sentence of the balanced
    study checked against this build's own tables."""
    build = balanced_build
    text = body(build)
    check_common(text, seeds=2)
    assert "Long-tailed learning" not in text and "without the long-tail study, does not give" in text
    assert "The configuration also names tinyimagenet (folder absent/tinyimagenet not found)" in text
    assert (
        "skipped: folder absent/tinyimagenet not found"
        in (build / "results/tiny/report/tables/ood_sets.tex").read_text()
    )
    assert "tinyimagenet" not in (build / "results/tiny/report/tables/detectors.tex").read_text()
    # LeNet on 28x28 grey images, colour images converted to grey, published numbers of other networks
    assert "LeNet [" in text and "penultimate dimension d = 84" in text and "momentum 0.9 (Nesterov)" in text
    assert "first-stage width" not in text and "rounded half up to 8 bits" in text
    stores = build / "results/tiny/data"
    assert np.load(stores / "mnist.npz")["train_images"].shape == (600, 1, 28, 28)
    assert np.load(stores / "ood/notmnist.npz")["images"].shape == (12, 1, 28, 28)
    groups = (build / "results/tiny/report/tables/ood_sets.tex").read_text()
    assert "fashionmnist & near" in groups and "notmnist & near" in groups and "photos & built-in" in groups
    published = (build / "results/tiny/report/tables/published.tex").read_text()
    assert r"\citet{yang2022openood}" in published and "their network: LeNetMadry" in published
    assert (build / "results/tiny/report/tables/published.pdf").read_bytes().startswith(b"%PDF")  # HTML report
    assert "t-SNE of the test features at the final epoch of each schedule, seed 0." in text
    check_below_chance(text, metric_tables(build, "*/seed*/ood/metrics.csv"), ["schedule"], r"in Table \d+")
    collapse = metric_tables(build, "*/seed*/collapse.csv")
    fits = {
        s: rows.groupby("epoch")["network_accuracy_train"].mean().loc[lambda a: a >= 1.0].index.min()
        for s, rows in collapse.groupby("schedule")
    }
    if all(pd.isna(e) for e in fits.values()):
        assert "No saved checkpoint fits the whole training set" in text and "terminal phase" in text
    else:
        assert "form the terminal phase of training" in text


def test_the_tiny_study_with_one_seed_ranks_nothing(workflow):
    text = body(workflow)
    check_common(text, seeds=1)
    assert "The balanced study ran one seed" in text and "The long-tail study ran one seed" in text
    assert "seed 0." not in text  # one run per figure needs no seed named
    assert "With one seed, the final NC1 and NC3 of the extended and standard schedules are not compared" in text


def test_every_run_has_collapse_and_detection_at_every_depth_and_checkpoint(balanced_build):
    """layers.csv of each run of the LeNet build: every checkpoint, every layer from conv1 to h (fc1), each
    detector against each OOD set (the probe, of layers.final_only, at the final checkpoint only); its last layer
    is h, so its NC measures equal collapse.csv's (computed from the dumps) exactly; the multi-layer detector spans
    all layers."""
    ood_sets = {"fashionmnist", "notmnist", "photos", "noise"}
    for run in sorted((balanced_build / "results" / "tiny" / "runs").glob("*/seed*")):
        table = pd.read_csv(run / "layers.csv")
        collapse = pd.read_csv(run / "collapse.csv").set_index("epoch")
        assert sorted(table["epoch"].unique()) == list(collapse.index), run
        depth = table[table["layer"] != "all"]
        assert list(dict.fromkeys(depth["layer"])) == ["conv1", "conv2", "conv3", "fc1"]
        assert list(dict.fromkeys(depth["dim"])) == [6 * 4, 16 * 4, 120, 84]  # 2x2-pooled maps; conv3's is 1x1
        assert set(depth["method"]) == {"mahalanobis", "knn", "probe_energy"} and set(table["ood"]) == ood_sets
        assert table[["auroc", "fpr95"]].notna().all().all() and table["auroc"].between(0, 1).all()
        assert len(depth) == (len(collapse) * 2 + 1) * 4 * len(ood_sets)
        assert list(depth.loc[depth["method"] == "probe_energy", "epoch"].unique()) == [collapse.index.max()]
        last = depth[depth["layer"] == "fc1"].groupby("epoch")[["nc1", "nc1_trace_ratio", "cdnv"]].first()
        for column in last:  # the same computation on the same float32 features, written with the same format
            assert (last[column] == collapse.loc[last.index, column]).all(), (run, column)
        multi = table[table["layer"] == "all"]
        assert set(multi["method"]) == {"multi_mahalanobis"} and len(multi) == len(collapse) * len(ood_sets)
        assert (multi["dim"] == 24 + 64 + 120 + 84).all()


def test_the_depth_part_reports_this_builds_layers_and_tests_no_relation_over_four(balanced_build):
    """The paper's depth part on LeNet: its four layers named, NC1 at both ends of the network as layers.csv holds
    it, the published R quoted with its setting, and no relation across depth claimed from four layers."""
    text = body(balanced_build)
    assert "Neural Collapse at every depth" in text and "at 4 depths: conv1, conv2, conv3 and fc1," in text
    layers = metric_tables(balanced_build, "*/seed*/layers.csv")
    final = layers[(layers["method"] == "mahalanobis") & (layers["ood"] == layers["ood"].iloc[0])]
    final = final[final["epoch"] == final.groupby("schedule")["epoch"].transform("max")]
    for schedule, rows in final.groupby("schedule"):
        nc1 = rows.groupby("layer")["nc1"].mean()
        assert f"from {nc1['conv1']:.3f} at conv1 to {nc1['fc1']:.3f} at fc1 in the {schedule} schedule" in text
    assert "The network has 4 layers, fewer than the 5 a correlation needs here" in text
    assert "To bound the cost, Probe Energy is fitted at each run's final checkpoint only; NC1 and the" in text
    assert "Harun et al. [" in text and "report R = 0.77 (their network: VGG17 trained on ImageNet-100" in text
    report = balanced_build / "results/tiny/report"
    relation = (report / "depth/tables/relation.tex").read_text()
    assert relation.count("--") == 3 * 4 and not re.search(r"\d\.\d", relation)  # no correlation to show
    assert (report / "depth/tables/relation.pdf").read_bytes().startswith(b"%PDF")  # the HTML report's table
    for figure in ("depth_collapse", "depth_detection", "depth_relation"):
        assert (report / f"figures/{figure}.pdf").read_bytes().startswith(b"%PDF"), figure
