"""The paper's figures, as functions from measured tables and arrays to matplotlib figures.

Figure ``name`` of :data:`nclab.contents.FIGURES` is drawn by ``DRAWERS[name]``, called by :func:`draw` as
``function(data, **options)``: ``data`` is what :func:`load` reads from the figure's named input files, and
``options`` are those of the figure's options that the function declares keyword-only."""

from __future__ import annotations

import inspect
from typing import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullLocator  # noqa: E402

from nclab import names  # noqa: E402
from nclab.io import load_npz, read_tables  # noqa: E402
from nclab.runs import final_epochs, final_only, layer_order, single_layers  # noqa: E402

ScoreSets = Mapping[str, Mapping[str, np.ndarray]]  # method -> split -> scores


def apply_style(style: Mapping[str, float]) -> None:
    plt.rcParams.update(
        {
            "font.size": style["font_size"],
            "lines.linewidth": style["line_width"],
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
            "pdf.fonttype": 42,
            "svg.hashsalt": "nclab",
            "figure.dpi": 100,
        }
    )


FIGURE_WIDTH = 6.5  # inches: every figure is drawn at about the paper's text width, so its fonts keep their size
MAX_COLUMNS = 3  # panels per row: more become unreadable at the paper's text width


def grid_columns(count: int, max_columns: int = MAX_COLUMNS) -> int:
    """Columns of a grid of ``count`` panels: the most (up to ``max_columns``) that fill every row, else 2."""
    if count <= max_columns:
        return count
    return next((c for c in range(max_columns, 1, -1) if count % c == 0), 2)


def _panel_grid(count: int, height: float, max_columns: int = MAX_COLUMNS) -> tuple[plt.Figure, list[plt.Axes]]:
    """``count`` panels in rows of :func:`grid_columns`, the figure :data:`FIGURE_WIDTH` wide; a cell left over
    in the last row (only when no column count fills every row) is hidden."""
    columns = grid_columns(count, max_columns)
    rows = -(-count // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(FIGURE_WIDTH, height * rows), constrained_layout=True, squeeze=False
    )
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def _seed_mean(table: pd.DataFrame, by: list[str], column: str) -> pd.DataFrame:
    """Mean over seeds and the band drawn around it: the range (min to max), positive on log axes too."""
    return table.groupby(by)[column].agg(["mean", "min", "max", "count"]).reset_index()


def _line_with_band(ax: plt.Axes, table: pd.DataFrame, column: str, label: str, **kwargs) -> None:
    stats = _seed_mean(table, ["epoch"], column)
    (line,) = ax.plot(stats["epoch"], stats["mean"], label=label, **kwargs)
    if (stats["count"] > 1).any():
        ax.fill_between(stats["epoch"], stats["min"], stats["max"], color=line.get_color(), alpha=0.2, linewidth=0)


def _log_y(ax: plt.Axes) -> None:
    """A log y axis (call it once the data are drawn); when it spans less than a decade and a half, minor ticks at
    2 and 5 times each power of ten are labelled too, so that it always shows more than one value."""
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    if np.log10(high / low) < 1.5:
        ax.yaxis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
        ax.yaxis.set_minor_formatter(LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(np.inf, np.inf)))


def _percent(table: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """``table`` with fractions in ``columns`` turned into percentages: the paper's one accuracy convention."""
    return table.assign(**{c: 100 * table[c] for c in columns})


def training_curves(history: pd.DataFrame) -> plt.Figure:
    """Loss and accuracy (%) per epoch (train: running, augmented batches; test: eval mode), per schedule."""
    history = _percent(history, "train_accuracy", "test_accuracy")
    fig, axes = plt.subplots(1, 2, figsize=(FIGURE_WIDTH, 2.4), constrained_layout=True)
    for i, (schedule, runs) in enumerate(history.groupby("schedule", sort=False)):
        colour = f"C{i}"
        for split, style in (("train", "-"), ("test", "--")):
            _line_with_band(axes[0], runs, f"{split}_loss", f"{schedule} ({split})", color=colour, linestyle=style)
            _line_with_band(axes[1], runs, f"{split}_accuracy", f"{schedule} ({split})", color=colour, linestyle=style)
    axes[0].set(xlabel="epoch", ylabel="cross-entropy", yscale="log")
    axes[1].set(xlabel="epoch", ylabel="accuracy (%)", ylim=(0, 101))
    axes[1].legend(loc="lower right")
    return fig


PROGRESSION = (
    ("nc1", r"NC1 $\mathrm{Tr}(\Sigma_W\Sigma_B^\dagger)/C$", True),
    ("nc2_equinorm_features", "NC2 equinorm", False),
    ("nc2_equiangular_features", "NC2 equiangularity", False),
    ("nc3", "NC3 self-duality", False),
    ("nc4_test", "NC4 (test): network $\\neq$ NCC", False),
    ("alignment_mean", r"mean $\cos(\tilde\mu_c, w_c)$", False),
)


def collapse_progression(collapse: pd.DataFrame) -> plt.Figure:
    """NC1-NC4 and alignment at every saved epoch; NC2 shows features (solid) and classifier (dashed)."""
    fig, axes = plt.subplots(2, 3, figsize=(FIGURE_WIDTH, 3.8), constrained_layout=True)
    for ax, (column, title, log) in zip(axes.flat, PROGRESSION):
        for i, (schedule, runs) in enumerate(collapse.groupby("schedule", sort=False)):
            _line_with_band(ax, runs, column, schedule, color=f"C{i}", marker=".", markersize=3)
            if column.endswith("_features"):
                _line_with_band(
                    ax,
                    runs,
                    column.replace("_features", "_classifier"),
                    f"{schedule} (W)",
                    color=f"C{i}",
                    linestyle="--",
                )
        ax.set(title=title, xlabel="epoch")
        if log:
            _log_y(ax)
    axes.flat[0].legend()
    return fig


def ncc_agreement(collapse: pd.DataFrame) -> plt.Figure:
    """Network vs nearest-class-centre accuracy on test, and their agreement 1 - NC4, per epoch."""
    fig, axes = plt.subplots(1, 2, figsize=(FIGURE_WIDTH, 2.4), constrained_layout=True)
    collapse = _percent(
        collapse.assign(agreement_test=1 - collapse["nc4_test"], agreement_train=1 - collapse["nc4_train"]),
        "network_accuracy_test",
        "ncc_accuracy_test",
        "agreement_test",
        "agreement_train",
    )
    for i, (schedule, runs) in enumerate(collapse.groupby("schedule", sort=False)):
        _line_with_band(axes[0], runs, "network_accuracy_test", f"{schedule}: network", color=f"C{i}")
        _line_with_band(axes[0], runs, "ncc_accuracy_test", f"{schedule}: NCC", color=f"C{i}", linestyle="--")
        _line_with_band(axes[1], runs, "agreement_test", f"{schedule} (test)", color=f"C{i}")
        _line_with_band(axes[1], runs, "agreement_train", f"{schedule} (train)", color=f"C{i}", linestyle=":")
    axes[0].set(xlabel="epoch", ylabel="test accuracy (%)")
    axes[1].set(xlabel="epoch", ylabel="agreement network / NCC (%)")
    for ax in axes:
        ax.legend(loc="lower right")
    return fig


def nc5(collapse: pd.DataFrame, *, ood_sets: list[str]) -> plt.Figure:
    """NC5 per OOD set: uncentred (NECO reference code, solid) and centred by mu_G (dashed)."""
    fig, axes = _panel_grid(len(ood_sets), 2.4)
    for ax, ood in zip(axes, ood_sets):
        for i, (schedule, runs) in enumerate(collapse.groupby("schedule", sort=False)):
            _line_with_band(ax, runs, f"nc5_{ood}", f"{schedule}", color=f"C{i}")
            _line_with_band(ax, runs, f"nc5_centred_{ood}", f"{schedule} (centred)", color=f"C{i}", linestyle="--")
        ax.set(title=f"NC5, OOD = {ood}", xlabel="epoch", ylabel=r"mean $|\cos(\mu_c, \mu_{OOD})|$")
    axes[0].legend()
    return fig


OOD_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def detector_families(
    metrics: pd.DataFrame, *, schedules: list[str], ood_sets: list[str], families: Mapping[str, str]
) -> plt.Figure:
    """AUROC of every detector (rows, grouped under a heading row per family), one panel per schedule; one
    marker per OOD set at the mean over seeds, with a bar over the range of seeds."""
    rows: list[tuple[str, str]] = []  # ("family", name) heading rows, then ("method", name) rows
    for family, members in names.by_family(families).items():
        rows += [("family", names.SCORE_FAMILIES[family])] + [("method", m) for m in members]
    position = {name: y for y, (kind, name) in enumerate(rows) if kind == "method"}
    stats = _seed_mean(metrics, ["schedule", "ood", "method"], "auroc")
    fig, axes = _panel_grid(len(schedules), 0.15 * len(rows) + 0.9, max_columns=2)
    for ax, schedule in zip(axes, schedules):
        for i, ood in enumerate(ood_sets):
            found = stats[(stats["schedule"] == schedule) & (stats["ood"] == ood) & stats["method"].isin(position)]
            y = found["method"].map(position) + (i - (len(ood_sets) - 1) / 2) * 0.7 / len(ood_sets)
            spread = np.abs(found[["min", "max"]].to_numpy().T - found["mean"].to_numpy())
            ax.errorbar(
                100 * found["mean"],
                y,
                xerr=100 * spread,
                fmt=OOD_MARKERS[i % len(OOD_MARKERS)],
                markersize=3.5,
                elinewidth=0.8,
                label=names.OOD_SETS[ood],
            )
        for y, (kind, _) in enumerate(rows):
            if kind == "family" and y:
                ax.axhline(y - 0.5, color="0.85", linewidth=0.6)
        ax.axvline(50, color="0.6", linestyle=":", linewidth=0.8)
        ax.set(
            yticks=range(len(rows)),
            yticklabels=[name if kind == "family" else names.SCORES[name] for kind, name in rows],
            xlabel="AUROC (x100)",
            title=schedule,
            ylim=(len(rows) - 0.5, -0.5),
        )
        for tick, (kind, _) in zip(ax.get_yticklabels(), rows):
            tick.set_fontstyle("italic" if kind == "family" else "normal")
        ax.tick_params(axis="y", length=0)
    axes[0].legend(loc="lower left", fontsize="small")
    return fig


def _family_auroc(trajectory: pd.DataFrame, families: Mapping[str, str], ood: str) -> pd.DataFrame:
    """Per run (schedule, seed), checkpoint and detector family: the mean AUROC (x 100) of the family's detectors
    against ``ood``, with the checkpoint's NC1 and NC5 against ``ood``."""
    rows = trajectory[trajectory["ood"] == ood].assign(family=lambda t: t["method"].map(families))
    grouped = rows.groupby(["schedule", "seed", "epoch", "family"], sort=False)
    return (
        grouped.agg(auroc=("auroc", "mean"), nc1=("nc1", "first"), nc5=(f"nc5_{ood}", "first"))
        .reset_index()
        .assign(auroc=lambda t: 100 * t["auroc"])
    )


def ood_over_training(
    trajectory: pd.DataFrame, *, schedules: list[str], families: Mapping[str, str], headline_ood: str
) -> plt.Figure:
    """AUROC against the headline OOD set at every checkpoint, mean over each family's detectors, one panel per
    family, beside NC1 and NC5; one line per schedule (mean over seeds, range band)."""
    table = _family_auroc(trajectory, families, headline_ood)
    present = list(names.by_family({m: families[m] for m in trajectory["method"].unique()}))
    fig, axes = _panel_grid(len(present) + 2, 1.9)
    for i, schedule in enumerate(schedules):
        runs = table[table["schedule"] == schedule]
        for ax, family in zip(axes, present):
            _line_with_band(
                ax, runs[runs["family"] == family], "auroc", schedule, color=f"C{i}", marker=".", markersize=3
            )
            ax.set(title=names.SCORE_FAMILIES[family], xlabel="epoch", ylabel="AUROC (x100)")
        per_checkpoint = runs.drop_duplicates(["seed", "epoch"])
        for ax, column, title in zip(axes[len(present) :], ("nc1", "nc5"), ("NC1", f"NC5, OOD = {headline_ood}")):
            _line_with_band(ax, per_checkpoint, column, schedule, color=f"C{i}", marker=".", markersize=3)
            ax.set(title=title, xlabel="epoch")
    _log_y(axes[len(present)])
    axes[0].legend()
    return fig


def collapse_vs_auroc(
    trajectory: pd.DataFrame, *, schedules: list[str], families: Mapping[str, str], headline_ood: str
) -> plt.Figure:
    """Each run's trajectory over its checkpoints: NC1 (log axis) against the mean AUROC of each detector family
    against the headline OOD set; colour = schedule, the final checkpoint marked."""
    table = _family_auroc(trajectory, families, headline_ood)
    present = list(names.by_family({m: families[m] for m in trajectory["method"].unique()}))
    fig, axes = _panel_grid(len(present), 2.3, max_columns=2)
    for ax, family in zip(axes, present):
        for i, schedule in enumerate(schedules):
            for j, (_, run) in enumerate(
                table[(table["family"] == family) & (table["schedule"] == schedule)]
                .sort_values("epoch")
                .groupby("seed")
            ):
                ax.plot(
                    run["nc1"],
                    run["auroc"],
                    color=f"C{i}",
                    marker=".",
                    markersize=3,
                    alpha=0.8,
                    label=schedule if j == 0 else None,
                )
                ax.plot(run["nc1"].iloc[-1], run["auroc"].iloc[-1], color=f"C{i}", marker="o", markersize=5)
        ax.set(
            xscale="log",
            xlabel="NC1 (lower = more collapse)",
            ylabel="AUROC (x100)",
            title=names.SCORE_FAMILIES[family],
        )
    axes[0].legend()
    return fig


def roc(scores: Mapping[str, ScoreSets], *, ood_sets: list[str]) -> plt.Figure:
    """ROC of every method, one panel per schedule and OOD set (schedule by schedule)."""
    from nclab.ood_metrics import auroc, roc_curve  # imported here: scikit-learn costs every other figure job 1.3 s

    panels = [(schedule, ood) for schedule in scores for ood in ood_sets]
    fig, axes = _panel_grid(len(panels), 2.6)
    for ax, (schedule, ood) in zip(axes, panels):
        for method, sets in scores[schedule].items():
            fpr, tpr = roc_curve(sets["test"], sets[ood])
            ax.plot(fpr, tpr, label=f"{names.SCORES[method]} ({auroc(sets['test'], sets[ood]):.3f})")
        ax.plot([0, 1], [0, 1], color="0.7", linewidth=0.6)
        ax.set(title=f"{schedule}: ID test vs {ood}", xlabel="FPR (OOD kept)", ylabel="TPR (ID kept)")
        ax.legend(loc="lower right", fontsize="small")
    return fig


def histograms(scores: Mapping[str, ScoreSets], *, methods: list[str], ood_sets: list[str], bins: int) -> plt.Figure:
    """Score distributions of ID test and each OOD set; rows: methods, columns: schedules."""
    schedules = list(scores)
    fig, axes = plt.subplots(
        len(methods), len(schedules), figsize=(FIGURE_WIDTH, 2.2 * len(methods)), constrained_layout=True, squeeze=False
    )
    for row, method in zip(axes, methods):
        for ax, schedule in zip(row, schedules):
            sets = scores[schedule][method]
            edges = np.histogram_bin_edges(np.concatenate([sets[s] for s in ["test", *ood_sets]]), bins=bins)
            for split in ["test", *ood_sets]:
                ax.hist(
                    sets[split],
                    bins=edges,
                    density=True,
                    histtype="stepfilled",
                    alpha=0.45,
                    label="ID test" if split == "test" else split,
                )
            ax.set(title=f"{names.SCORES[method]}, {schedule}", xlabel="score (higher = more ID)", ylabel="density")
            ax.legend(fontsize="small")
    return fig


def tsne(embeddings: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> plt.Figure:
    """t-SNE of test features per schedule, coloured by class."""
    fig, axes = plt.subplots(1, len(embeddings), figsize=(FIGURE_WIDTH, 3.0), constrained_layout=True, squeeze=False)
    for ax, (schedule, (points, labels)) in zip(axes[0], embeddings.items()):
        scatter = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=4, linewidths=0)
        ax.set(title=f"{schedule} (final epoch)", xticks=[], yticks=[])
    fig.colorbar(scatter, ax=axes[0, -1], label="class")
    return fig


LT_PANELS = (
    ("network_accuracy_test", "test accuracy (%)"),
    ("accuracy_few", "few-shot accuracy (%)"),
    ("alignment_mean", r"mean alignment $\bar a$"),
    ("alignment_few", "few-shot alignment"),
    ("nc1", "NC1"),
    ("nc3", "NC3"),
)
PERCENT_COLUMNS = ("network_accuracy_test", "accuracy_few")  # plotted in %, as the text and tables print them
LOSS_STYLES = ("-", "--", ":", "-.", (0, (5, 1)))


def _per_layer_detectors(layers: pd.DataFrame) -> list[str]:
    """The detectors fitted on one layer at a time, in the order of names.DEPTH_SCORES."""
    return [m for m in names.DEPTH_SCORES if m in set(single_layers(layers)["method"])]


def depth_collapse(layers: pd.DataFrame, *, schedules: list[str]) -> plt.Figure:
    """NC1 (log10, mean over seeds) of every layer (rows, the input side at the bottom) at every checkpoint
    (columns), one heat map per schedule on one colour scale."""
    order = layer_order(layers)
    one_per_layer = layers[(layers["method"] == "mahalanobis") & (layers["ood"] == layers["ood"].iloc[0])]
    maps = {
        s: np.log10(one_per_layer[one_per_layer["schedule"] == s].pivot_table("nc1", "layer", "epoch").loc[order])
        for s in schedules
    }
    low, high = min(m.min().min() for m in maps.values()), max(m.max().max() for m in maps.values())
    fig, axes = _panel_grid(len(schedules), 0.35 * len(order) + 1.2, max_columns=2)
    for ax, (schedule, grid) in zip(axes, maps.items()):
        mesh = ax.pcolormesh(grid.to_numpy(), cmap="viridis", vmin=low, vmax=high)
        epochs = list(grid.columns)
        step = -(-len(epochs) // 6)  # at most 6 labelled checkpoints
        ax.set_xticks(np.arange(0, len(epochs), step) + 0.5, [str(e) for e in epochs[::step]])
        ax.set_yticks(np.arange(len(order)) + 0.5, order)
        ax.set(xlabel="checkpoint (epoch)", title=schedule)
    fig.colorbar(mesh, ax=axes, label=r"$\log_{10}$ NC1 (lower = more collapse)")
    return fig


def depth_detection(layers: pd.DataFrame, *, schedules: list[str], headline_ood: str) -> plt.Figure:
    """At the final checkpoint, by depth: NC1 (top row, log axis) and each per-layer detector's AUROC against the
    headline OOD set (bottom row), the combined detectors as horizontal lines; a column per schedule (mean over
    seeds, range band)."""
    order = layer_order(layers)
    final = final_epochs(layers[layers["ood"] == headline_ood], "balanced")
    fig, axes = plt.subplots(
        2, len(schedules), figsize=(FIGURE_WIDTH, 4.2), constrained_layout=True, squeeze=False, sharex=True
    )
    position = {name: i for i, name in enumerate(order)}
    per_layer = _per_layer_detectors(layers)
    for column, schedule in enumerate(schedules):
        runs = final[final["schedule"] == schedule].assign(position=lambda t: t["layer"].map(position))
        top, bottom = axes[0, column], axes[1, column]
        for i, method in enumerate(names.DEPTH_SCORES):
            rows = runs[runs["method"] == method]
            if method in per_layer:
                stats = rows.groupby("position")["auroc"].agg(["mean", "min", "max"])
                bottom.plot(stats.index, stats["mean"], color=f"C{i}", marker=".", label=names.DEPTH_SCORES[method])
                bottom.fill_between(stats.index, stats["min"], stats["max"], color=f"C{i}", alpha=0.2, linewidth=0)
            else:
                bottom.axhline(rows["auroc"].mean(), color=f"C{i}", linestyle="--", label=names.DEPTH_SCORES[method])
        nc1 = runs[runs["method"] == "mahalanobis"].groupby("position")["nc1"].agg(["mean", "min", "max"])
        top.plot(nc1.index, nc1["mean"], color="k", marker=".")
        top.fill_between(nc1.index, nc1["min"], nc1["max"], color="k", alpha=0.15, linewidth=0)
        _log_y(top)
        top.set(title=schedule, ylabel="NC1" if column == 0 else None)
        bottom.set(ylabel=f"AUROC vs {headline_ood}" if column == 0 else None)
        bottom.set_xticks(range(len(order)), order, rotation=45, ha="right")
    axes[1, 0].legend(fontsize="small")
    return fig


def depth_relation(layers: pd.DataFrame, *, schedules: list[str], headline_ood: str) -> plt.Figure:
    """Pearson's R over the layers between -log NC1 and each per-layer detector's AUROC against the headline OOD
    set, at every checkpoint (the detectors measured at several); a panel per schedule (mean over seeds, range
    band). A network with too few layers for a correlation says so in its panels."""
    from nclab.relation import MIN_POINTS, across_depth  # here: scipy.stats would slow every other figure's job

    table = across_depth(layers, ["schedule"], headline_ood)
    drawn = [m for m in _per_layer_detectors(layers) if m not in final_only(layers)]
    table = table[(table["metric"] == "auroc") & (table["correlation"] == "pearson")]
    fig, axes = _panel_grid(len(schedules), 2.2)
    for ax, schedule in zip(axes, schedules):
        runs = table[table["schedule"] == schedule]
        if runs["rho"].notna().any():
            for i, method in enumerate(_per_layer_detectors(layers)):
                if method in drawn:  # not those of layers.final_only, measured at one checkpoint
                    _line_with_band(
                        ax, runs[runs["method"] == method], "rho", names.DEPTH_SCORES[method], color=f"C{i}"
                    )
        else:
            ax.text(0.5, 0.5, f"fewer than {MIN_POINTS} layers:\nno correlation", ha="center", va="center")
        ax.axhline(0, color="0.6", linewidth=0.8)
        ax.set(title=schedule, xlabel="checkpoint (epoch)", ylabel=r"Pearson $R$", ylim=(-1.05, 1.05))
    if table["rho"].notna().any():
        axes[0].legend()
    return fig


def _strategy_lines(
    ax: plt.Axes, table: pd.DataFrame, x: str, column: str, losses: list[str], strategies: list[str]
) -> None:
    """One line per (loss, strategy): colour = strategy, line style = loss; mean over seeds, with a band over
    their range where there are several."""
    for i, loss in enumerate(losses):
        for j, strategy in enumerate(strategies):
            rows = table[(table["loss"] == loss) & (table["strategy"] == strategy)]
            if rows.empty:
                continue
            scale = 100 if column in PERCENT_COLUMNS else 1
            stats = _seed_mean(rows, [x], column).set_index(x) * [scale, scale, scale, 1]
            ax.plot(
                stats.index,
                stats["mean"],
                color=f"C{j}",
                linestyle=LOSS_STYLES[i % len(LOSS_STYLES)],
                marker="o" if x == "ratio" else None,
                markersize=3,
                label=f"{names.LOSSES[loss]}, {names.STRATEGIES[strategy]}",
            )
            if (stats["count"] > 1).any():
                ax.fill_between(stats.index, stats["min"], stats["max"], color=f"C{j}", alpha=0.12, linewidth=0)


def _largest_ratio(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["ratio"] == table["ratio"].max()]


def longtail_vs_ratio(collapse: pd.DataFrame, *, losses: list[str], strategies: list[str]) -> plt.Figure:
    """Accuracy, alignment and NC1/NC3 at the final epoch against the imbalance ratio."""
    final = final_epochs(collapse, "longtail")
    fig, axes = _panel_grid(len(LT_PANELS), 2.1)
    for ax, (column, title) in zip(axes, LT_PANELS):
        _strategy_lines(ax, final, "ratio", column, losses, strategies)
        ratios = sorted(final["ratio"].unique())
        ax.set(xscale="log", xlabel="imbalance ratio", title=title)
        if column in ("nc1", "nc3"):
            _log_y(ax)
        ax.set_xticks(ratios, [f"{r:g}" for r in ratios])
        ax.xaxis.set_minor_locator(NullLocator())  # the y axis keeps its minor ticks: labelled under a decade
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=min(4, len(strategies)))
    return fig


def longtail_progression(collapse: pd.DataFrame, *, losses: list[str], strategies: list[str]) -> plt.Figure:
    """Alignment and NC metrics at every saved epoch, at the largest imbalance ratio."""
    collapse = _largest_ratio(collapse)
    panels = [p for p in LT_PANELS if p[0] != "network_accuracy_test" and p[0] != "accuracy_few"]
    fig, axes = _panel_grid(len(panels), 2.1, max_columns=2)
    for ax, (column, title) in zip(axes, panels):
        _strategy_lines(ax, collapse, "epoch", column, losses, strategies)
        ax.set(xlabel="epoch", title=title)
        if column in ("nc1", "nc3"):
            _log_y(ax)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=min(4, len(strategies)))
    return fig


def longtail_class_alignment(classes: pd.DataFrame, *, losses: list[str], strategies: list[str]) -> plt.Figure:
    """Per-class alignment a_c against the class's training images, one panel per loss (largest ratio)."""
    classes = _largest_ratio(classes)
    fig, axes = _panel_grid(len(losses), 2.4)
    for ax, loss in zip(axes, losses):
        for j, strategy in enumerate(strategies):
            rows = classes[(classes["loss"] == loss) & (classes["strategy"] == strategy)]
            if rows.empty:
                continue
            stats = rows.groupby("class").agg(
                train_count=("train_count", "mean"),
                mean=("alignment", "mean"),
                min=("alignment", "min"),
                max=("alignment", "max"),
                count=("alignment", "count"),
            )
            stats = stats.sort_values("train_count")
            ax.plot(
                stats["train_count"], stats["mean"], "o-", color=f"C{j}", markersize=3, label=names.STRATEGIES[strategy]
            )
            if (stats["count"] > 1).any():
                ax.fill_between(
                    stats["train_count"], stats["min"], stats["max"], color=f"C{j}", alpha=0.12, linewidth=0
                )
        ax.set(
            xscale="log",
            xlabel="training images of the class",
            ylabel=r"$a_c=\cos(\tilde\mu_c, w_c)$",
            title=names.LOSSES[loss],
        )
    axes[0].legend()
    return fig


DRAWERS = {
    "training_curves": training_curves,
    "collapse_progression": collapse_progression,
    "ncc_agreement": ncc_agreement,
    "nc5": nc5,
    "detector_families": detector_families,
    "roc": roc,
    "ood_over_training": ood_over_training,
    "collapse_vs_auroc": collapse_vs_auroc,
    "histograms": histograms,
    "tsne": tsne,
    "depth_collapse": depth_collapse,
    "depth_detection": depth_detection,
    "depth_relation": depth_relation,
    "longtail_vs_ratio": longtail_vs_ratio,
    "longtail_progression": longtail_progression,
    "longtail_class_alignment": longtail_class_alignment,
}


def load(source: str, files: Mapping[str, str]) -> object:
    """What a figure draws, from its input files named as rules/common.smk's ``figure_inputs`` names them: score
    arrays by "schedule/method", embeddings by schedule, or the stacked table of every run ("run/seedN")."""
    if source == "scores":
        sets: dict[str, dict[str, ScoreSets]] = {}
        for key, path in files.items():
            schedule, method = key.split("/")
            sets.setdefault(schedule, {})[method] = load_npz(path)
        return sets
    if source == "tsne":
        return {schedule: tuple(load_npz(path).values()) for schedule, path in files.items()}
    return read_tables(list(files.values()))  # each run's rows carry its keys (nclab.runs)


def draw(name: str, source: str, files: Mapping[str, str], options: Mapping[str, object]) -> plt.Figure:
    """Figure ``name`` from its named input files; its drawing function gets the options it declares
    keyword-only."""
    function = DRAWERS[name]
    declared = [p.name for p in inspect.signature(function).parameters.values() if p.kind is p.KEYWORD_ONLY]
    return function(load(source, files), **{key: options[key] for key in declared})
