"""The paper's figures and tables, one entry each: the single source that the workflow's `figure` and
`typeset_table` rules, the paper's inputs, Snakemake's HTML report and the tests read (matplotlib-free, so that
the Snakefile parses fast).

A new figure is a drawing function ``name`` in :mod:`nclab.figures`, one entry in FIGURES and its
``\\includegraphics{figures/<name>.pdf}`` in ``paper/<study>.tex``. A new table is its rule's output, one entry
in TABLES and its ``\\input``.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCES = {  # what a figure reads: a table of every run of its study, or the first seed's arrays per schedule
    "history": "history.csv",
    "collapse": "collapse.csv",
    "classes": "classes.csv",
    "scores": "ood/scores/{method}.npz",
    "tsne": "tsne.npz",
}
FIRST_SEED_SOURCES = ("scores", "tsne")  # arrays: read from the first seed of each schedule, schedule-major
STUDY_TITLES = {"balanced": "Balanced training", "longtail": "Long-tailed learning"}  # the report's categories


@dataclass(frozen=True)
class FigureSpec:
    study: str  # the paper section that includes it: a key of STUDY_TITLES
    source: str  # the per-run artifact it draws: a key of SOURCES
    options: tuple[str, ...]  # the configured values it depends on (its params); see rules/common.smk
    caption: str  # its caption in the HTML report (the paper's caption, with numbers, is in paper/<study>.tex)


FIGURES = {
    "training_curves": FigureSpec(
        "balanced", "history", (),
        "Training loss and train/test accuracy per epoch, one line per schedule (mean over seeds, range band)."),
    "collapse_progression": FigureSpec(
        "balanced", "collapse", (),
        "NC1-NC4 at every saved checkpoint, one line per schedule (log axes where the metric spans decades)."),
    "ncc_agreement": FigureSpec(
        "balanced", "collapse", (),
        "NC4: agreement of the network's prediction with the nearest class centre, and both accuracies."),
    "nc5": FigureSpec(
        "balanced", "collapse", ("ood_sets",),
        "NC5 per OOD set: mean absolute cosine between class means and the OOD mean, uncentred and centred."),
    "roc": FigureSpec(
        "balanced", "scores", ("schedules", "methods", "ood_sets"),
        "ROC curves of every OOD score (ID positive), one panel per schedule and OOD set, first seed."),
    "histograms": FigureSpec(
        "balanced", "scores", ("schedules", "methods", "ood_sets", "bins"),
        "Score distributions of the ID test set and each OOD set (figures.histograms.methods), first seed."),
    "tsne": FigureSpec(
        "balanced", "tsne", ("schedules",),
        "t-SNE of the test features at the final epoch, coloured by class, first seed."),
    "longtail_vs_ratio": FigureSpec(
        "longtail", "collapse", ("losses", "strategies"),
        "Final-epoch accuracy, few-shot accuracy, alignment and NC1/NC3 against the imbalance ratio."),
    "longtail_progression": FigureSpec(
        "longtail", "collapse", ("losses", "strategies"),
        "Alignment and NC1/NC3 at every saved epoch, at the largest imbalance ratio."),
    "longtail_class_alignment": FigureSpec(
        "longtail", "classes", ("losses", "strategies"),
        "Per-class alignment against the class's training images at the largest imbalance ratio."),
}




@dataclass(frozen=True)
class TableSpec:
    study: str  # the paper section that inputs it
    caption: str  # its caption in the HTML report


TABLES = {  # path under results/report, without .tex
    "tables/ood_sets": TableSpec("balanced", "The OOD sets, their group (near, far, synthetic) and size."),
    "tables/collapse": TableSpec("balanced", "Neural Collapse metrics at the final epoch of each schedule."),
    "tables/ood_auroc": TableSpec(
        "balanced", "AUROC (x100) of each OOD score against each OOD set, per schedule; best in bold."),
    "tables/ood_full": TableSpec(
        "balanced", "Every OOD metric (x100) against the headline OOD set: AUROC, AUPR-In, AUPR-Out and the FPR at "
                    "95 % TPR (ID positive, and OOD positive as OpenOOD reports it)."),
    "tables/published": TableSpec(
        "balanced", "Published numbers of the same setting beside ours, with the conditions that still differ."),
    "longtail/tables/accuracy": TableSpec(
        "longtail", "Test accuracy overall and per shot group at the final epoch, per ratio, loss and strategy."),
    "longtail/tables/geometry": TableSpec(
        "longtail", "Alignment, minority collapse, NC1, NC2 (equiangularity of W) and NC3 at the final epoch."),
    "longtail/tables/ood": TableSpec("longtail", "AUROC (x100) against the headline OOD set under imbalance."),
}


def study_figures(study: str) -> list[str]:
    return [name for name, spec in FIGURES.items() if spec.study == study]


def study_tables(study: str) -> list[str]:
    return [name for name, spec in TABLES.items() if spec.study == study]
