"""Figures as printed: panel grids without empty slots, text of at least 6 pt at the paper's text width,
log axes with more than one tick label."""

import inspect
import re
from pathlib import Path

import matplotlib.text
import numpy as np
import pandas as pd
import pytest
from conftest import report_caption

from nclab import contents, figures
from nclab.longtail import GROUPS

TEXT_WIDTH_PT = 453.5  # paper.tex: A4 with 2.5 cm margins
STYLE = {"font_size": 8, "line_width": 1.2}  # config.yaml's figures.style


@pytest.mark.parametrize("count, columns", [(1, 1), (2, 2), (3, 3), (4, 2), (6, 3), (8, 2), (12, 3), (5, 2)])
def test_grid_columns_fill_every_row_where_possible(count, columns):
    assert figures.grid_columns(count) == columns


def printed_sizes(fig) -> list[float]:
    """The point size of every visible text of ``fig`` once scaled to the text width (never enlarged)."""
    scale = min(1.0, TEXT_WIDTH_PT / (fig.get_figwidth() * 72))
    fig.canvas.draw()
    return [t.get_fontsize() * scale for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text()]


def scores(schedules, ood_sets):
    rng = np.random.default_rng(0)
    return {
        s: {m: {"test": rng.normal(1, 1, 50), **{o: rng.normal(0, 1, 40) for o in ood_sets}} for m in ("msp", "energy")}
        for s in schedules
    }


@pytest.mark.parametrize(
    "ood_sets", [["photos", "noise"], ["cifar10", "tinyimagenet", "mnist", "svhn", "textures", "places365"]]
)
def test_roc_panels_fill_the_grid_and_their_text_is_readable(ood_sets):
    figures.apply_style(STYLE)
    fig = figures.roc(scores(["standard", "extended"], ood_sets), ood_sets=ood_sets)
    assert all(ax.get_visible() for ax in fig.axes) and len(fig.axes) == 2 * len(ood_sets)
    assert min(printed_sizes(fig)) >= 6.0


def longtail_final() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for ratio in (10.0, 50.0, 100.0):
        for strategy in ("none", "reg"):
            row = {
                "ratio": ratio,
                "loss": "ce",
                "strategy": strategy,
                "seed": 0,
                "epoch": 20,
                "nc1": rng.uniform(0.2, 0.6),
                "nc3": rng.uniform(0.3, 0.7),
            }  # both within one decade
            row.update({c: rng.uniform() for c, _ in figures.LT_PANELS if c not in row})
            row.update({f"accuracy_{g}": rng.uniform() for g in GROUPS})
            rows.append(row)
    return pd.DataFrame(rows)


def test_longtail_log_axes_label_more_than_one_tick_and_the_text_is_readable():
    figures.apply_style(STYLE)
    fig = figures.longtail_vs_ratio(longtail_final(), losses=["ce"], strategies=["none", "reg"])
    fig.canvas.draw()
    for ax in fig.axes:
        if ax.get_yscale() == "log":
            low, high = ax.get_ylim()
            shown = [
                t
                for t in ax.yaxis.get_majorticklabels() + ax.yaxis.get_minorticklabels()
                if t.get_text() and low <= t.get_position()[1] <= high
            ]
            assert len(shown) >= 2, ax.get_title()
    assert min(printed_sizes(fig)) >= 6.0


PAPER = Path(__file__).resolve().parents[1] / "paper"


@pytest.mark.parametrize("name", contents.FIGURES)
def test_each_figure_entry_has_its_drawing_function_and_options(name):
    """The table is the figure's only description: its function exists, and every keyword option the function
    declares is among the entry's options (the values the workflow passes and tracks as params)."""
    spec = contents.FIGURES[name]
    assert spec.study in contents.STUDY_TITLES and spec.source in contents.SOURCES and report_caption("figure", name)
    parameters = inspect.signature(figures.DRAWERS[name]).parameters.values()
    declared = {p.name for p in parameters if p.kind is p.KEYWORD_ONLY}
    assert declared <= set(spec.options), declared - set(spec.options)
    assert not [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD][1:], "options must be keyword-only"


def test_every_figure_has_one_drawer_and_every_table_a_caption():
    assert list(figures.DRAWERS) == list(contents.FIGURES)
    assert all(report_caption("table", table) for table in contents.TABLES)


@pytest.mark.parametrize("study", contents.STUDY_TITLES)
def test_the_paper_includes_exactly_the_figures_and_tables_of_the_table(study):
    text = (PAPER / f"{study}.tex").read_text()
    included = re.findall(r"\\includegraphics(?:\[[^]]*\])?\{figures/(\w+)\.pdf\}", text)
    assert sorted(included) == sorted(contents.study_figures(study))
    assert sorted(re.findall(r"\\input\{((?:\w+/)?tables/\w+)\.tex\}", text)) == sorted(contents.study_tables(study))
