"""The real workflow, end to end, on a tiny config in a temporary folder: artifacts, PDF, no-op rerun, lint."""

import html as html_module
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import TINY, digests, report_caption, snakemake

from nclab import contents, longtail
from nclab.config import default_config

TINY_STUDIES = TINY.get("studies", default_config()["studies"])  # the tiny study's: balanced and longtail

pytestmark = pytest.mark.workflow  # every test here runs Snakemake (or SLURM)

ROOT = Path(__file__).resolve().parents[1]
SCORES = TINY["ood"].get("methods", default_config()["ood"]["methods"])  # tiny.yaml keeps config.yaml's list


def test_every_artifact_is_produced(workflow):
    results = workflow / "results" / "tiny"
    for schedule, epochs in (("standard", [1, 2, 3]), ("extended", [2, 4])):
        run = results / "runs" / schedule / "seed0"
        for e in epochs:
            assert (run / "checkpoints" / f"epoch{e}.pt").is_file()
            dump = np.load(run / "features" / f"epoch{e}.npz")
            assert dump["train_features"].shape[1] == 32 and dump["photos_features"].shape[0] == 60
        history = pd.read_csv(run / "history.csv")
        assert list(history["epoch"]) == list(range(1, epochs[-1] + 1))
        collapse = pd.read_csv(run / "collapse.csv")
        assert list(collapse["epoch"]) == epochs
        assert {"nc1", "nc3", "nc4_test", "nc5_photos", "nc5_centred_noise", "ncc_accuracy_test"} <= set(collapse)
        assert collapse.notna().all().all()
        for method in SCORES:
            scores = np.load(run / "ood" / "scores" / f"{method}.npz")
            assert set(scores.files) == {"test", "photos", "noise"}
        metrics = pd.read_csv(run / "ood" / "metrics.csv")
        assert len(metrics) == len(SCORES) * 2 and metrics[["auroc", "fpr95"]].notna().all().all()
        assert metrics["auroc"].between(0, 1).all()
    for name in (name for study in TINY_STUDIES for name in contents.study_figures(study)):
        assert (results / "report" / "figures" / f"{name}.pdf").stat().st_size > 1000
    for table in (t for study in TINY_STUDIES for t in contents.study_tables(study)):  # alone, for the HTML report
        assert (results / "report" / f"{table}.pdf").read_bytes().startswith(b"%PDF")


def test_longtail_artifacts(workflow):
    """The long-tailed subset follows the profile, and each run has dumps, shot-group metrics and OOD scores."""
    results = workflow / "results" / "tiny"
    subset = np.load(results / "data/longtail/digits/exponential-ir5-seed0.npz")
    full = np.load(results / "data/digits.npz")
    counts = np.bincount(subset["train_labels"])
    assert (
        counts.tolist() == longtail.class_counts(np.bincount(full["train_labels"]).min(), 10, 5, "exponential").tolist()
    )
    assert np.array_equal(subset["train_images"], full["train_images"][subset["train_indices"]])
    assert np.array_equal(subset["test_labels"], full["test_labels"])  # the test set stays balanced
    for strategy in ("none", "proj"):
        run = results / f"runs/longtail/ir5/ce/{strategy}/seed0"
        dump = np.load(run / "features/epoch3.npz")
        assert dump["train_features"].shape == (counts.sum(), 16)
        collapse = pd.read_csv(run / "collapse.csv")
        assert list(collapse["epoch"]) == [1, 3]
        groups = collapse[[f"classes_{g}" for g in ("many", "medium", "few")]].iloc[-1]
        assert groups.sum() == 10 and groups["classes_few"] == (counts < 40).sum()
        assert collapse[["accuracy_few", "alignment_few", "minority_collapse", "nc1", "nc3"]].notna().all().all()
        classes = pd.read_csv(run / "classes.csv")
        assert classes["train_count"].tolist() == counts.tolist()
        assert len(pd.read_csv(run / "ood/metrics.csv")) == len(SCORES) * 2
    macros = (results / "report/longtail/macros.tex").read_text()
    assert "\\newcommand{\\LTMaxRatio}{5}" in macros


def test_checkpoints_load_as_plain_weights(workflow):
    checkpoint = torch.load(workflow / "results/tiny/runs/standard/seed0/checkpoints/epoch3.pt", weights_only=True)
    assert checkpoint["epoch"] == 3 and "fc.weight" in checkpoint["state_dict"]


def test_paper_is_compiled_with_the_measured_numbers(workflow):
    pdf = workflow / "results" / "tiny" / "paper" / "paper.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    text = " ".join(text.split())
    assert "Neural Collapse" in text and "??" not in text  # no undefined reference or citation
    metrics = pd.read_csv(workflow / "results/tiny/runs/extended/seed0/ood/metrics.csv")
    photos = metrics[metrics["ood"] == "photos"].set_index("method")["auroc"]
    assert f"extended: {photos.max():.3f}" in text  # the abstract cites the measured highest AUROC
    macros = (workflow / "results/tiny/report/macros.tex").read_text()
    assert "\\newcommand{\\ExtendedEpochs}{4}" in macros
    assert "Long-tailed learning and space alignment" in text and "SpA-Proj (from the authors" in text
    collapse = pd.read_csv(workflow / "results/tiny/runs/longtail/ir5/ce/none/seed0/collapse.csv").iloc[-1]
    assert f"{100 * collapse['network_accuracy_test']:.1f}" in text  # LTBaseAccHigh, measured


def test_the_paper_is_typeset_cleanly(workflow):
    """No overfull line, no template wording, true minus signs, and figures drawn at the text width so that
    their text keeps its size (tests/test_figures.py checks the sizes themselves)."""
    log = (workflow / "results/tiny/logs/paper/latexmk.log").read_text()
    assert "Overfull \\hbox" not in log, re.findall(r"Overfull \\hbox.*", log)
    pdf = workflow / "results" / "tiny" / "paper" / "paper.pdf"
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "seed(s)" not in text and not re.search(r"\bmay be\b", text)
    assert not re.findall(r"(?<![\w.\-\u2013])-\d", text), "a hyphen typeset as a minus sign"
    for figure in (workflow / "results/tiny/report/figures").glob("*.pdf"):
        width = float(re.search(rb"/MediaBox \[\s*0 0 ([\d.]+)", figure.read_bytes()).group(1))
        assert width <= 6.5 * 72 + 1, figure.name


def test_the_paper_compile_reads_only_its_declared_inputs(workflow):
    """Other jobs write into results/tiny/report while the paper compiles (the tables typeset for the HTML report: a
    temporary file that vanished mid-copy once failed the compile). The compile copies its inputs alone: a stray
    file there, named like the paper's source, would break it if it were copied."""
    stray = workflow / "results/tiny/report/paper.tex"
    stray.write_text("\\errmessage{an undeclared file was compiled}\n")
    try:
        result = snakemake(workflow, "--forcerun", "paper", "results/tiny/paper/paper.pdf")
    finally:
        stray.unlink()
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_html_report_holds_every_figure_and_table_with_its_caption(workflow):
    """`snakemake --report` after the run: one self-contained HTML file with the paper, each figure and table of
    the paper (their PDFs embedded) under its study's category, each with its caption, and the description."""
    result = snakemake(workflow, "--report", "results/tiny/report.html")
    assert result.returncode == 0, result.stderr[-3000:]
    html = (workflow / "results/tiny/report.html").read_text()

    def variable(name: str) -> dict:
        line = next(x.strip() for x in html.splitlines() if x.strip().startswith(f"var {name} = {{"))
        return json.loads(line.removeprefix(f"var {name} = ").removesuffix(";"))

    entries, categories = variable("results"), variable("categories")
    expected = {
        f"results/tiny/report/figures/{n}.pdf": report_caption("figure", n)
        for study in TINY_STUDIES
        for n in contents.study_figures(study)
    }
    expected |= {
        f"results/tiny/report/{t}.pdf": report_caption("table", t)
        for study in TINY_STUDIES
        for t in contents.study_tables(study)
    }
    assert set(entries) == set(expected) | {"results/tiny/paper/paper.pdf"}
    for path, entry in entries.items():
        assert entry["data_uri"].startswith("data:application/pdf;") and len(entry["data_uri"]) > 10_000, path
        caption = re.sub(r"<[^>]+>", "", html_module.unescape(entry["caption"]))  # rst rendered as HTML
        assert " ".join(expected.get(path, "The paper compiled").split()) in " ".join(caption.split()), path
    assert set(categories) - {"Paper"} == {contents.STUDY_TITLES[study] for study in TINY_STUDIES}
    for study in TINY_STUDIES:
        assert categories[contents.STUDY_TITLES[study]] == {
            "Figures": sorted(f"results/tiny/report/figures/{n}.pdf" for n in contents.study_figures(study)),
            "Tables": sorted(f"results/tiny/report/{t}.pdf" for t in contents.study_tables(study)),
        }
    assert "This run trained 1 seed per schedule" in html  # the workflow description, from config


def test_second_run_has_nothing_to_do(workflow):
    result = snakemake(workflow, "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


MINIATURE_RUN = "results/miniature/runs/standard/seed0"  # the miniature's data stores and one of its trainings


def test_configurations_side_by_side_never_touch_each_others_results(external_run):
    """The tiny study, then the external configuration and the miniature (config.yaml alone) in the same folder,
    then the tiny study again: it has nothing to do, and no byte of its data, runs or tables changed; the
    miniature again has nothing to do either. A configuration that would overwrite a root is refused, naming
    both and the key to change, before any job runs."""
    workflow, before = external_run
    miniature = snakemake(workflow, f"{MINIATURE_RUN}/history.csv", configfile=None)
    assert miniature.returncode == 0, miniature.stderr[-3000:]
    record = json.loads((workflow / "results/miniature/configuration.json").read_text())
    assert record["sources"] == ["config.yaml"] and record["configuration"]["name"] == "miniature"
    assert sorted(p.name for p in (workflow / "results").iterdir()) == ["external", "miniature", "tiny"]
    for args, configfile in (((), "tiny.yaml"), ((f"{MINIATURE_RUN}/history.csv",), None)):
        again = snakemake(workflow, "-n", *args, configfile=configfile)
        assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr, again.stdout[-3000:]
    assert digests(workflow / "results" / "tiny") == before
    assert any(path.endswith(".pt") for path in before) and any(path.endswith(".tex") for path in before)

    copy = {**TINY, "training": {**TINY["training"], "seeds": [1]}}  # tiny.yaml copied, edited, not renamed
    (workflow / "copy.yaml").write_text(yaml.safe_dump(copy))
    refused = snakemake(workflow, "-n", configfile="copy.yaml")
    assert refused.returncode != 0
    message = " ".join((refused.stdout + refused.stderr).split())
    assert "results/tiny/ holds the results of another configuration (config.yaml, tiny.yaml)" in message
    assert "(config.yaml, copy.yaml) differs from it in training.seeds" in message
    assert "set `name: <new name>` in copy.yaml" in message


def test_lint_is_clean():
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True)
    assert "Congratulations" in result.stdout + result.stderr, result.stdout + result.stderr


def test_the_trajectory_holds_every_checkpoint_and_its_final_rows_equal_the_final_metrics(workflow):
    """ood/trajectory.csv: every detector against every OOD set at every saved checkpoint, beside the NC measures
    of that checkpoint; its final epoch's metrics are the run's metrics.csv."""
    for run in ("runs/standard/seed0", "runs/longtail/ir5/ce/proj/seed0"):
        folder = workflow / "results" / "tiny" / run
        trajectory, metrics = pd.read_csv(folder / "ood/trajectory.csv"), pd.read_csv(folder / "ood/metrics.csv")
        collapse = pd.read_csv(folder / "collapse.csv")
        assert sorted(trajectory["epoch"].unique()) == sorted(collapse["epoch"])
        assert len(trajectory) == len(collapse) * len(SCORES) * 2 and {"nc1", "cdnv", "nc5_photos"} <= set(trajectory)
        final = trajectory[trajectory["epoch"] == trajectory["epoch"].max()]
        columns = ["method", "ood", "auroc", "aupr_in", "aupr_out", "fpr95", "fpr95_ood"]
        pd.testing.assert_frame_equal(
            final[columns].reset_index(drop=True), metrics[columns].reset_index(drop=True), check_exact=False, rtol=1e-9
        )
