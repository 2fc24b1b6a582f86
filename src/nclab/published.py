"""Published results beside ours (docs/methods.md, section 6).

``paper/published_results.csv`` holds one published number per row: where it comes from (``source_key``, a
key of paper/references.bib, and ``source``: paper or benchmark, version, table), the setting it was measured
in (``dataset``, ``architecture``, ``epochs``, ``imbalance_ratio``: empty for a balanced training set,
``ood_set``), ``method`` (an OOD score or a long-tail loss; empty for the network's own metrics), ``metric``,
``value`` (%, but a correlation for ``depth_pearson``) and ``conditions`` (what else differs from our runs).

A row matches a run when dataset, architecture, imbalance ratio, OOD set and method agree. A balanced row whose
architecture is not one of nclab's networks (``lenet_madry``, ``mlp``) matches whatever network we train: its
``conditions`` name its network, and the text names that difference. The number of epochs may differ: a
published row is set beside the schedule with its number of epochs where there is one, beside every schedule
otherwise, and the difference is named under the table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from nclab import names
from nclab.data import near_ood
from nclab.report import escape

COLUMNS = [
    "source_key",
    "source",
    "dataset",
    "architecture",
    "epochs",
    "imbalance_ratio",
    "ood_set",
    "method",
    "metric",
    "value",
    "conditions",
]
REQUIRED = ["source_key", "source", "dataset", "architecture", "metric", "value"]

# published metric -> (the table of ours it is compared with, our column, our value on the published scale)
OURS: dict[str, tuple[str, str, Callable[[pd.Series], pd.Series]]] = {
    "auroc": ("ood", "auroc", lambda v: 100 * v),
    "fpr95_ood": ("ood", "fpr95_ood", lambda v: 100 * v),
    "fpr95": ("ood", "fpr95", lambda v: 100 * v),
    "top1": ("collapse", "network_accuracy_test", lambda v: 100 * v),
    "ncc_top1": ("collapse", "ncc_accuracy_test", lambda v: 100 * v),
    "nc4_agreement": ("collapse", "nc4_test", lambda v: 100 * (1 - v)),
    "depth_pearson": ("depth", "rho", lambda v: v),  # a correlation, not a %: quoted by the depth part's text
}
METRIC_LABELS = {
    "auroc": "AUROC",
    "fpr95_ood": r"FPR@95\textsubscript{OOD}",
    "fpr95": r"FPR@95\textsubscript{ID}",
    "top1": "test accuracy",
    "ncc_top1": "NCC test accuracy",
    "nc4_agreement": "network/NCC agreement",
    "depth_pearson": "Pearson $R$ across depth",
}
FAR_OOD = ("mnist", "svhn", "textures", "places365")  # OpenOOD v1.5's far-OOD sets for a CIFAR ID set
HIGHER_IS_BETTER = {
    "auroc": True,
    "fpr95_ood": False,
    "fpr95": False,
    "top1": True,
    "ncc_top1": True,
    "nc4_agreement": True,
    "depth_pearson": True,
}


def load(path: str | Path) -> pd.DataFrame:
    """The published results, checked row by row (an error names the file, the line and the field)."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(table.columns) != COLUMNS:
        raise ValueError(f"{path}: the columns must be {COLUMNS}, found {list(table.columns)}")
    errors = []
    for index, row in table.iterrows():
        where = f"{path}, line {index + 2}"
        errors += [f"{where}: {field} is empty" for field in REQUIRED if not row[field].strip()]
        if row["metric"] not in OURS:
            errors.append(f"{where}: unknown metric {row['metric']!r}; allowed: {sorted(OURS)}")
        elif OURS[row["metric"]][0] == "ood" and row["method"] not in names.SCORES:
            errors.append(f"{where}: method {row['method']!r} is not an OOD score ({sorted(names.SCORES)})")
        elif row["imbalance_ratio"] and row["method"] not in names.LOSSES:
            errors.append(f"{where}: method {row['method']!r} is not a long-tail loss ({sorted(names.LOSSES)})")
        for field in ("value", "epochs", "imbalance_ratio"):
            try:
                if row[field] and not np.isfinite(float(row[field])):
                    raise ValueError
            except ValueError:
                errors.append(f"{where}: {field} {row[field]!r} is not a finite number")
    if errors:
        raise ValueError("\n".join(errors))
    table[["value", "epochs", "imbalance_ratio"]] = table[["value", "epochs", "imbalance_ratio"]].apply(pd.to_numeric)
    return table


def depth_references(published: pd.DataFrame) -> pd.DataFrame:
    """The published correlations across depth between collapse and OOD detection (metric ``depth_pearson``),
    quoted beside ours whatever the setting: their conditions say what they were measured on."""
    return published[published["metric"] == "depth_pearson"].reset_index(drop=True)


def ood_group(dataset: str, ood_set: str) -> tuple[str, ...]:
    """The OOD sets a published ``ood_set`` stands for: OpenOOD v1.5's 'near' and 'far' groups average the AUROC
    over several sets (near: the other CIFAR and TinyImageNet; far: MNIST, SVHN, Textures, Places365)."""
    if ood_set == "near":
        return tuple(s for s in near_ood(dataset) if s != dataset)
    return FAR_OOD if ood_set == "far" else (ood_set,)


def balanced_setting(published: pd.DataFrame, dataset: str, architecture: str) -> pd.DataFrame:
    """The rows measured on the balanced ``dataset`` with ``architecture``, or with a network that nclab does
    not build (its conditions name it)."""
    network = (published["architecture"] == architecture) | ~published["architecture"].isin(names.ARCHITECTURES)
    return published[(published["dataset"] == dataset) & network & published["imbalance_ratio"].isna()]


def balanced_matches(
    published: pd.DataFrame, dataset: str, architecture: str, ood_sets: Sequence[str], methods: Sequence[str]
) -> pd.DataFrame:
    """Rows measured on the balanced ``dataset`` with ``architecture``: OOD metrics of one of our scores on one
    of our OOD sets, and the network's own metrics."""
    rows = balanced_setting(published, dataset, architecture)
    is_ood = rows["metric"].map(lambda metric: OURS[metric][0] == "ood")
    measured = rows["ood_set"].map(lambda name: set(ood_group(dataset, name)) <= set(ood_sets))
    ours = np.where(is_ood, measured & rows["method"].isin(methods), rows["method"] == "")
    return rows[ours].reset_index(drop=True)


def missing_groups(
    published: pd.DataFrame, dataset: str, architecture: str, ood_sets: Sequence[str]
) -> dict[str, list[str]]:
    """The published near/far groups of this balanced setting that our OOD sets do not cover, each with the sets
    of the group that we lack (their numbers are then not set beside ours)."""
    groups = balanced_setting(published, dataset, architecture)["ood_set"]
    missing = {}
    for group in dict.fromkeys(groups[groups.isin(["near", "far"])]):
        absent = [s for s in ood_group(dataset, group) if s not in ood_sets]
        if absent:
            missing[group] = absent
    return missing


def missing_groups_sentence(missing: Mapping[str, list[str]], dataset: str) -> str:
    """Which published near/far averages are left out, and the sets of theirs that our groups lack."""
    if not missing:
        return ""
    parts = [
        f"the {group}-OOD average (over {', '.join(escape(s) for s in ood_group(dataset, group))}) lacks "
        + ", ".join(escape(s) for s in absent)
        for group, absent in missing.items()
    ]
    return (
        "Published OpenOOD~v1.5 group averages are compared only where our group holds every set of theirs: here "
        + "; ".join(parts)
        + " in this build, so those published numbers are not set beside ours."
    )


def longtail_matches(
    published: pd.DataFrame, dataset: str, architecture: str, ratios: Sequence[float], losses: Sequence[str]
) -> pd.DataFrame:
    """Top-1 test accuracies of our losses measured on ``dataset`` long-tailed at one of our ``ratios``: per
    (ratio, loss), the first such row of the file (the loss's own paper comes first)."""
    rows = published[
        (published["dataset"] == dataset)
        & (published["architecture"] == architecture)
        & published["imbalance_ratio"].isin(ratios)
        & published["method"].isin(losses)
        & (published["metric"] == "top1")
    ]
    return rows.drop_duplicates(["imbalance_ratio", "method"]).reset_index(drop=True)


def epochs_note(published_epochs: float, ours: int) -> str:
    """The epoch difference between a published number and our run, or '' when they agree."""
    if np.isnan(published_epochs):
        return f"epochs not stated (ours {ours})"
    return "" if published_epochs == ours else f"{published_epochs:g} epochs published, {ours} ours"


def differences(matches: pd.DataFrame, our_epochs: Callable[[pd.Series], Sequence[int]]) -> dict[str, list[str]]:
    """Per source key, the conditions that still differ from our runs (epochs included), each named once."""
    notes: dict[str, list[str]] = {}
    for _, row in matches.iterrows():
        items = notes.setdefault(row["source_key"], [])
        found = [c.strip() for c in row["conditions"].split(";") if c.strip()]
        found += [note for note in (epochs_note(row["epochs"], e) for e in our_epochs(row)) if note]
        items += [item for item in found if item not in items]
    return notes


def compared(
    matches: pd.DataFrame, tables: Mapping[str, pd.DataFrame], schedule_epochs: Mapping[str, int]
) -> pd.DataFrame:
    """Each balanced-study match beside our value on the same setting: one row per (published row, schedule)
    with our per-seed values, their mean and the difference ours - published. ``tables``: our 'ood' metrics
    (schedule, seed, method, ood) and 'collapse' metrics at the final epoch of each schedule (schedule, seed)."""
    rows = []
    for _, row in matches.iterrows():
        same = [s for s, epochs in schedule_epochs.items() if epochs == row["epochs"]]
        kind, column, scale = OURS[row["metric"]]
        for schedule in same or list(schedule_epochs):
            table = tables[kind]
            selected = table[table["schedule"] == schedule]
            if kind == "ood":  # a group's value: per seed, the mean over its sets
                group = ood_group(row["dataset"], row["ood_set"])
                selected = selected[(selected["method"] == row["method"]) & selected["ood"].isin(group)]
                if selected["ood"].nunique() < len(group):
                    continue
                selected = selected.groupby("seed")[column].mean()
            else:
                selected = selected[column]
            values = scale(selected).to_numpy(np.float64)
            if len(values) == 0 or not np.isfinite(values).all():
                continue
            rows.append(
                {
                    **row.to_dict(),
                    "schedule": schedule,
                    "ours": values,
                    "ours_mean": values.mean(),
                    "delta": values.mean() - row["value"],
                    "our_epochs": schedule_epochs[schedule],
                }
            )
    return pd.DataFrame(rows)


def delta_sentence(comparison: pd.DataFrame) -> str:
    """One line per (source, metric): the mean difference ours - published, its range and the number of pairs."""
    parts = []
    for (key, metric), block in comparison.groupby(["source_key", "metric"], sort=False):
        deltas = block["delta"].to_numpy()
        better = "higher is better" if HIGHER_IS_BETTER[metric] else "lower is better"
        parts.append(
            rf"{METRIC_LABELS[metric]} against \citet{{{key}}}: ours $-$ published "
            rf"${deltas.mean():+.1f}$ points on average over {len(deltas)} "
            rf"{'pair' if len(deltas) == 1 else 'pairs'} (from ${deltas.min():+.1f}$ to "
            rf"${deltas.max():+.1f}$; {better})"
        )
    sentence = "; ".join(parts) + "."
    return sentence[:1].upper() + sentence[1:]  # "Test accuracy against ..." starts a sentence


def setting_label(dataset: str, architecture: str, longtail: bool = False) -> str:
    """'CIFAR-10, ResNet-18'; 'CIFAR-10-LT, ResNet-32' for a long-tailed subset of a balanced set."""
    suffix = "-LT" if longtail and not dataset.endswith("_lt") else ""
    return f"{names.DATASETS[dataset]}{suffix}, {names.ARCHITECTURES[architecture]}"


def no_match_sentence(setting: str) -> str:
    return (
        rf"No published result matches this setting ({setting}), so no published number is set beside "
        r"ours; the paper-scale presets have their counterparts in the literature."
    )


def notes_text(notes: Mapping[str, list[str]]) -> str:
    """'Remaining differences' under a comparison: per source, its conditions."""
    return "; ".join(rf"\citet{{{key}}}: " + ", ".join(items) for key, items in notes.items() if items)


def balanced_comparison(
    comparison: pd.DataFrame,
    notes: Mapping[str, list[str]],
    setting: str,
    schedule_label: Callable[[str], str],
    missing: str = "",
) -> str:
    """The balanced study's comparison with published numbers: a table float (one row per published number,
    ours and Delta per schedule it is compared with), its remaining differences and its delta line; or one
    sentence when nothing matches (the miniature); ``missing``: :func:`missing_groups_sentence`."""
    if comparison.empty:
        return f"{no_match_sentence(setting)} {missing}".strip() + "\n"
    schedules = list(dict.fromkeys(comparison["schedule"]))
    keys = ["source_key", "metric", "ood_set", "method", "value", "epochs"]
    header = " & ".join(rf"Ours ({schedule_label(s)}) & $\Delta$" for s in schedules)
    lines = [
        r"\begin{table}[tbp]",
        r"  \centering\caption{Published numbers beside ours where the setting matches "
        rf"({setting}; same score and OOD set): ours is the mean over seeds, $\Delta$ = ours $-$ published, "
        r"for the schedule of the published number of epochs where there is one, else for each.}"
        r"\label{tab:published}",
        r"  \begin{adjustbox}{max width=\linewidth}",
        rf"  \begin{{tabular}}{{lllll{'cc' * len(schedules)}}}",
        r"  \toprule",
        rf"  Source & Metric & OOD set & Method & Published & {header} \\",
    ]
    previous = None
    for key, block in comparison.groupby(keys, sort=False, dropna=False):
        source = key[0]
        if source != previous:
            lines.append(r"  \midrule")
        cells = []
        for schedule in schedules:
            mine = block[block["schedule"] == schedule]
            cells += (
                [f"{mine['ours_mean'].iloc[0]:.1f}", f"${mine['delta'].iloc[0]:+.1f}$"] if len(mine) else ["--", "--"]
            )
        method, ood_set = names.SCORES.get(key[3], "--"), escape(key[2]) or "--"
        cite = rf"\citet{{{source}}}" if source != previous else ""
        lines.append(
            rf"  {cite} & {METRIC_LABELS[key[1]]} & "
            rf"{ood_set} & {method} & {key[4]:.1f} & " + " & ".join(cells) + r" \\"
        )
        previous = source
    lines += [
        r"  \bottomrule",
        r"  \end{tabular}",
        r"  \end{adjustbox}",
        r"  \par\smallskip{\raggedright\footnotesize Remaining differences: " + notes_text(notes) + r".\par}",
        r"\end{table}",
        "",
        r"\Cref{tab:published} sets published numbers beside ours. "
        + delta_sentence(comparison)
        + f" {missing}".rstrip(),
    ]
    return "\n".join(lines) + "\n"
