"""The paper's figures and tables, one entry each: the single source that the workflow's `figure` and
`typeset_table` rules, the paper's inputs, Snakemake's HTML report and the tests read. Only the Snakefile and
the tests import it (no job does), so an entry changes a job only through its inputs and params.

A new figure is a drawing function in :mod:`nclab.figures` with its record in ``figures.DRAWERS``, one entry in
FIGURES, its ``\\includegraphics{figures/<name>.pdf}`` in ``paper/<study>.tex`` and its caption in
``report/figure.rst``. A new table is its rule's output, one entry in TABLES, its ``\\input`` and its caption
in ``report/table.rst``.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCES = {  # what a figure reads: a table of every run of its study, or the first seed's arrays per schedule
    "history": "history.csv",
    "collapse": "collapse.csv",
    "classes": "classes.csv",
    "scores": "ood/scores/{method}.npz",
    "ood_metrics": "ood/metrics.csv",
    "trajectory": "ood/trajectory.csv",
    "tsne": "tsne.npz",
    "layers": "layers.csv",
}
FIRST_SEED_SOURCES = ("scores", "tsne")  # arrays: read from the first seed of each schedule
STUDY_TITLES = {  # the paper's parts (the studies of config key `studies`, and the depth analysis): report categories
    "balanced": "Balanced training",
    "depth": "Neural Collapse at every depth",
    "longtail": "Long-tailed learning",
    "external": "Models trained elsewhere",
}

RUNS_OF_PART = {"depth": "balanced"}  # a part that is no study of its own draws the runs of this study


def part_runs(part: str) -> str:
    """The study whose runs the figures of ``part`` draw."""
    return RUNS_OF_PART.get(part, part)


@dataclass(frozen=True)
class FigureSpec:
    study: str  # the paper part that includes it: a key of STUDY_TITLES
    source: str  # the per-run artifact it draws: a key of SOURCES
    options: tuple[str, ...]  # the configured values it depends on (its params); see rules/common.smk


FIGURES = {
    "training_curves": FigureSpec("balanced", "history", ()),
    "collapse_progression": FigureSpec("balanced", "collapse", ()),
    "ncc_agreement": FigureSpec("balanced", "collapse", ()),
    "nc5": FigureSpec("balanced", "collapse", ("ood_sets",)),
    "detector_families": FigureSpec("balanced", "ood_metrics", ("schedules", "ood_sets", "families")),
    "roc": FigureSpec("balanced", "scores", ("schedules", "methods", "ood_sets")),
    "ood_over_training": FigureSpec("balanced", "trajectory", ("schedules", "families", "headline_ood")),
    "collapse_vs_auroc": FigureSpec("balanced", "trajectory", ("schedules", "families", "headline_ood")),
    "histograms": FigureSpec("balanced", "scores", ("schedules", "methods", "ood_sets", "bins")),
    "tsne": FigureSpec("balanced", "tsne", ("schedules",)),
    "depth_collapse": FigureSpec("depth", "layers", ("schedules",)),
    "depth_detection": FigureSpec("depth", "layers", ("schedules", "headline_ood")),
    "depth_relation": FigureSpec("depth", "layers", ("schedules", "headline_ood")),
    "longtail_vs_ratio": FigureSpec("longtail", "collapse", ("losses", "strategies")),
    "longtail_progression": FigureSpec("longtail", "collapse", ("losses", "strategies")),
    "longtail_class_alignment": FigureSpec("longtail", "classes", ("losses", "strategies")),
}


@dataclass(frozen=True)
class TableSpec:
    study: str  # the paper part that inputs it


TABLES = {  # path under results/<name>/report, without .tex
    "tables/ood_sets": TableSpec("balanced"),
    "tables/collapse": TableSpec("balanced"),
    "tables/ood_auroc": TableSpec("balanced"),
    "tables/ood_full": TableSpec("balanced"),
    "tables/detectors": TableSpec("balanced"),
    "tables/relation": TableSpec("balanced"),
    "tables/published": TableSpec("balanced"),
    "depth/tables/relation": TableSpec("depth"),
    "longtail/tables/accuracy": TableSpec("longtail"),
    "longtail/tables/geometry": TableSpec("longtail"),
    "longtail/tables/ood": TableSpec("longtail"),
    "longtail/tables/effects": TableSpec("longtail"),
    "external/tables/provenance": TableSpec("external"),
    "external/tables/checkpoints": TableSpec("external"),
    "external/tables/detectors": TableSpec("external"),
    "external/tables/layers": TableSpec("external"),
}


def study_figures(study: str) -> list[str]:
    return [name for name, spec in FIGURES.items() if spec.study == study]


def study_tables(study: str) -> list[str]:
    return [name for name, spec in TABLES.items() if spec.study == study]
