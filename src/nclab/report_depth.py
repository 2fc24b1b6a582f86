"""The paper's depth part: the relation table and the macros of its text, from every balanced run's layers.csv
(docs/methods.md, section 9)."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from nclab import names
from nclab.depth import ALL_LAYERS, COMBINED_DETECTORS, LAYER_DETECTORS, PROBE_WEIGHT_DECAY
from nclab.relation import MIN_POINTS, Evidence, across_depth
from nclab.report import VERDICT_WORDS, and_list, escape, fmt
from nclab.runs import RUN_KEYS, final_epochs, final_only, layer_order

STUDY = "balanced"  # the runs of the depth part
KEYS = list(RUN_KEYS[STUDY])
METRIC_LABELS = {"auroc": "AUROC", "fpr95": r"$-$FPR@95"}
CORRELATION_LABELS = {"pearson": "Pearson $R$", "spearman": r"Spearman $\rho$"}
CELL_STYLES = {"supported": r"\textbf", "contradicted": r"\textit"}


def correlations(layers: pd.DataFrame, ood: str) -> pd.DataFrame:
    """Every run's and checkpoint's correlations over its layers (:func:`nclab.relation.across_depth`)."""
    return across_depth(layers, KEYS, ood)


def _cell(row: pd.Series) -> str:
    """'0.81 [0.42, 0.97]', bold where the interval lies above 0, italic where below; the mean alone without an
    interval, '--' without a correlation."""
    if not np.isfinite(row["mean"]):
        return "--"
    text = fmt(row["mean"], 2)
    if np.isfinite(row["low"]):
        text += f" [{fmt(row['low'], 2)}, {fmt(row['high'], 2)}]"
    style = CELL_STYLES.get(row["verdict"])
    return f"{style}{{{text}}}" if style else text


def relation_table(relation: pd.DataFrame) -> str:
    """The relation across depth at the final checkpoint: per per-layer detector (rows), the mean correlation
    over seeds and its interval between -log NC1 and each detection metric (columns: AUROC and -FPR@95, each by
    Pearson and Spearman)."""
    cells = relation.set_index(["method", "metric", "correlation"])
    columns = [(metric, name) for metric in METRIC_LABELS for name in CORRELATION_LABELS]
    lines = [
        r"\begin{tabular}{l" + "c" * len(columns) + "}",
        r"\toprule",
        " & " + " & ".join(rf"\multicolumn{{2}}{{c}}{{{label}}}" for label in METRIC_LABELS.values()) + r" \\",
        r"\cmidrule(lr){2-3}\cmidrule(lr){4-5}",
        "Detector & " + " & ".join(CORRELATION_LABELS[name] for _, name in columns) + r" \\",
        r"\midrule",
    ]
    for method in dict.fromkeys(relation["method"]):
        row = [_cell(cells.loc[(method, metric, name)]) for metric, name in columns]
        lines.append(f"{names.DEPTH_SCORES[method]} & " + " & ".join(row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _final_auroc(layers: pd.DataFrame, ood: str) -> pd.Series:
    """At each run's final checkpoint against ``ood``: per detector and layer, the mean AUROC over runs and
    seeds."""
    final = final_epochs(layers[layers["ood"] == ood], STUDY)
    return final.groupby(["method", "layer"], sort=False)["auroc"].mean()


def phrase(label: str) -> str:
    """A combined detector's label inside a sentence: a description ("Multi-layer Mahalanobis"), not a name, so
    lower-case after "the"."""
    return label[0].lower() + label[1:]


def layer_name(name: str) -> str:
    """A layer's name as the text sets it: an identifier, in typewriter type."""
    return rf"\texttt{{{escape(name)}}}"


def collapse_sentence(layers: pd.DataFrame, schedules: Sequence[str]) -> str:
    """NC1 at the first and the last layer at the final checkpoint, per schedule (mean over seeds), and in how
    many runs it decreases at every step of depth."""
    order = layer_order(layers)
    first, last = order[0], order[-1]
    one_ood = layers[(layers["ood"] == layers["ood"].iloc[0]) & (layers["method"] == "mahalanobis")]
    final = final_epochs(one_ood, STUDY)
    clauses = []
    for schedule in schedules:
        nc1 = final[final["schedule"] == schedule].groupby("layer")["nc1"].mean()
        ends = f"from {fmt(nc1[first], 3)} at {layer_name(first)} to {fmt(nc1[last], 3)} at {layer_name(last)}"
        clauses.append(f"{ends} in the {escape(schedule)} schedule")
    runs = [run.set_index("layer").loc[order, "nc1"].to_numpy() for _, run in final.groupby([*KEYS, "seed"])]
    falling = sum(bool(np.all(np.diff(nc1) < 0)) for nc1 in runs)
    return (
        "At the final checkpoint (mean over seeds), NC1 goes "
        + and_list(clauses)
        + f"; it decreases at every step of depth in {falling} of the {len(runs)} runs"
    )


def detection_sentence(layers: pd.DataFrame, ood: str) -> str:
    """Per per-layer detector, its AUROC against ``ood`` at the first and at the last layer at the final checkpoint
    (mean over the runs); the combined detectors' AUROC."""
    means = _final_auroc(layers, ood)
    order = layer_order(layers)
    first, last = order[0], order[-1]
    clauses = []
    for i, method in enumerate(LAYER_DETECTORS):  # the first clause names the layers, the others follow it
        at_first, at_last = (f" at {layer_name(first)}", f" at {layer_name(last)}") if i == 0 else ("", "")
        clauses.append(
            f"{names.DEPTH_SCORES[method]} {'goes ' if i == 0 else ''}from {fmt(means.loc[(method, first)], 3)}"
            f"{at_first} to {fmt(means.loc[(method, last)], 3)}{at_last}"
        )
    combined = and_list(
        [
            f"the {phrase(names.DEPTH_SCORES[m])} detector reaches {fmt(means.loc[(m, ALL_LAYERS)], 3)}"
            for m in COMBINED_DETECTORS
        ]
    )
    return (
        f"Against {escape(ood)} at the final checkpoint (mean AUROC over the runs), "
        + and_list(clauses)
        + f"; {combined}"
    )


def relation_sentence(relation: pd.DataFrame, layer_count: int, ood: str) -> str:
    """The verdict of each per-layer detector's Pearson correlation between -log NC1 and the AUROC against
    ``ood``, or why none can be given."""
    rows = relation[(relation["metric"] == "auroc") & (relation["correlation"] == "pearson")]
    subject = rf"Pearson's $R$ over the layers between $-\log$ NC1 and the AUROC against {escape(ood)}"
    if layer_count < MIN_POINTS:
        return (
            f"The network has {layer_count} layers, fewer than the {MIN_POINTS} a correlation needs here, so "
            f"{subject} is not computed and the relation across depth is not tested"
        )
    by: dict[str, list[str]] = {}
    for _, row in rows.iterrows():
        by.setdefault(row["verdict"], []).append(names.DEPTH_SCORES[row["method"]])
    if set(by) == {"no claim can be tested"}:
        most = rows.loc[rows["seeds"].idxmax()]
        why = Evidence(most["mean"], most["low"], most["high"], int(most["seeds"])).untested_reason()
        return f"For {subject}, {why}, so the relation across depth is not tested"
    clauses = [
        f"{'the interval' if i == 0 else 'it'} {VERDICT_WORDS[verdict]} for {and_list(methods)}"
        for i, (verdict, methods) in enumerate((v, by[v]) for v in VERDICT_WORDS if v in by)
    ]
    return f"At the final checkpoint, for {subject} (95\\,\\% $t$-interval over seeds), " + "; ".join(clauses)


def published_sentence(references: pd.DataFrame, relation: pd.DataFrame) -> str:
    """The published correlations across depth, each with its source and setting, beside our mean Pearson R of
    the AUROC per detector."""
    if references.empty:
        return ""
    rows = relation[(relation["metric"] == "auroc") & (relation["correlation"] == "pearson")]
    ours = [
        f"{fmt(row['mean'], 2)} ({names.DEPTH_SCORES[row['method']]})"
        for _, row in rows.iterrows()
        if np.isfinite(row["mean"])
    ]
    quoted = and_list(
        [
            rf"\citet{{{r['source_key']}}} report $R = {fmt(r['value'], 2)}$ ({escape(r['conditions'])})"
            for _, r in references.iterrows()
        ]
    )
    if not ours:
        return quoted + "."
    return quoted + "; our mean Pearson $R$ of the AUROC is " + and_list(ours) + ", in the setting of this build."


def schedule_sentence(layers: pd.DataFrame) -> str:
    """Which per-layer detectors are fitted at the final checkpoint only, or nothing where all are fitted at every
    checkpoint."""
    late = final_only(layers)
    if not late:
        return ""
    verb = "is" if len(late) == 1 else "are"
    return (
        f"To bound the cost, {and_list([names.DEPTH_SCORES[m] for m in late])} {verb} fitted at each run's final "
        "checkpoint only; NC1 and the Mahalanobis detectors are measured at every checkpoint."
    )


def training_sentence(table: pd.DataFrame) -> str:
    """How the Pearson correlation of the AUROC moves over training: per per-layer detector, its mean over runs
    at the first and at the last checkpoint."""
    rows = table[(table["metric"] == "auroc") & (table["correlation"] == "pearson")]
    first = rows[rows["epoch"] == rows.groupby([*KEYS, "seed"])["epoch"].transform("min")]
    last = final_epochs(rows, STUDY)
    clauses = []
    for method in LAYER_DETECTORS:
        start, end = (part.loc[part["method"] == method, "rho"].mean() for part in (first, last))
        if np.isfinite(start) and np.isfinite(end):
            clauses.append(f"from {fmt(start, 2)} to {fmt(end, 2)} for {names.DEPTH_SCORES[method]}")
    if not clauses:
        return ""
    return (
        "From the first checkpoint to the last, the mean Pearson $R$ of the AUROC over the layers moves "
        + and_list(clauses)
        + " (\\cref{fig:depth-relation})."
    )


def depth_macros(
    layers: pd.DataFrame,
    table: pd.DataFrame,
    relation: pd.DataFrame,
    references: pd.DataFrame,
    settings: Mapping[str, object],
) -> dict[str, str]:
    """The macros of the depth part's text (``Depth...``): the layers and their pooling, the detectors, and the
    sentences on collapse, detection and their relation across depth."""
    order = layer_order(layers)
    ood = settings["headline_ood"]
    return {
        "DepthLayerCount": str(len(order)),
        "DepthLayerList": and_list([layer_name(name) for name in order]),
        "DepthLastLayer": layer_name(order[-1]),
        "DepthGrid": str(settings["grid"]),
        "DepthKnnK": str(settings["knn_k"]),
        "DepthProbeWeightDecay": f"{PROBE_WEIGHT_DECAY:g}",
        "DepthMinPoints": str(MIN_POINTS),
        "DepthHeadlineOOD": escape(ood),
        "DepthCollapseSentence": collapse_sentence(layers, settings["schedules"]),
        "DepthScheduleSentence": schedule_sentence(layers),
        "DepthDetectionSentence": detection_sentence(layers, ood),
        "DepthRelationSentence": relation_sentence(relation, len(order), ood),
        "DepthPublishedSentence": published_sentence(references, relation),
        "DepthTrainingSentence": training_sentence(table),
    }
