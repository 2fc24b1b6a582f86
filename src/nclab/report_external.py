"""The section on models trained elsewhere: where their checkpoints came from, Neural Collapse and OOD
detection at each checkpoint, every detector at the last one, and at every layer the entry names
(docs/external.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from nclab import names
from nclab.relation import MIN_POINTS, across_depth
from nclab.report import ID_DESCRIPTIONS, and_list, count_phrase, detector_list, fmt, latex_text
from nclab.runs import final_epochs, single_layers

CHECKPOINT_COLUMNS = (  # the NC measures of each checkpoint: column, header, scale, digits
    ("nc1", "NC1", 1.0, 3),
    ("nc2_equiangular_features", r"NC2\textsubscript{ang}", 1.0, 3),
    ("nc3", "NC3", 1.0, 3),
    ("nc4_test", r"NC4\textsubscript{test}", 100.0, 1),
    ("network_accuracy_test", r"acc.\textsubscript{test}", 100.0, 1),
)


def _texttt(text: str) -> str:
    """A path or hash in typewriter type, breakable after slashes."""
    return r"\texttt{" + latex_text(text).replace("/", r"/\allowbreak{}") + "}"


def provenance_table(provenance: Sequence[Mapping]) -> str:
    """Each checkpoint: the model, its architecture, the epoch, the file and its SHA-256."""
    lines = [
        r"\begin{tabular}{llrp{0.3\linewidth}l}",
        r"\toprule",
        r"Model & Architecture & Epoch & File & SHA-256 \\",
        r"\midrule",
    ]
    for entry in provenance:
        for i, checkpoint in enumerate(entry["checkpoints"]):
            model = (latex_text(entry["model"]), _texttt(entry["architecture"])) if i == 0 else ("", "")
            digest = r"{\scriptsize\texttt{" + checkpoint["sha256"] + "}}"
            cells = [*model, str(checkpoint["epoch"]), _texttt(checkpoint["path"]), digest]
            lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def checkpoints_table(
    collapse: pd.DataFrame, trajectory: pd.DataFrame, models: Sequence[str], ood: str, methods: Sequence[str]
) -> str:
    """Each model's checkpoints: NC measures, and the AUROC (x100) of ``methods`` against OOD set ``ood``."""
    auroc = trajectory[trajectory["ood"] == ood].pivot_table(index=["model", "epoch"], columns="method", values="auroc")
    header = [label for _, label, _, _ in CHECKPOINT_COLUMNS] + [names.SCORES[m] for m in methods]
    lines = [
        rf"\begin{{tabular}}{{lr{'r' * len(header)}}}",
        r"\toprule",
        rf" & & \multicolumn{{{len(CHECKPOINT_COLUMNS)}}}{{c}}{{Neural Collapse}} & "
        rf"\multicolumn{{{len(methods)}}}{{c}}{{AUROC vs {names.OOD_SETS[ood]}}} \\",
        "Model & Epoch & " + " & ".join(header) + r" \\",
    ]
    for model in models:
        lines.append(r"\midrule")
        rows = collapse[collapse["model"] == model].sort_values("epoch")
        for i, row in enumerate(rows.itertuples(index=False)):
            row = row._asdict()
            cells = [latex_text(model) if i == 0 else "", str(int(row["epoch"]))]
            cells += [fmt(row[c] * scale, digits) for c, _, scale, digits in CHECKPOINT_COLUMNS]
            cells += [fmt(100 * auroc.at[(model, row["epoch"]), m], 1) for m in methods]
            lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def detectors_table(
    metrics: pd.DataFrame, models: Sequence[str], ood_sets: Sequence[str], families: Mapping[str, str]
) -> str:
    """Every detector (rows, by family) against every OOD set, AUROC (x100) at each model's last checkpoint:
    a column group per model; the best of each column in bold. The FPRs are in each run's ood/metrics.csv."""
    auroc = metrics.set_index(["model", "method", "ood"])["auroc"]
    columns = [(m, o) for m in models for o in ood_sets]
    best = {c: max(auroc[(c[0], method, c[1])] for method in families) for c in columns}
    width = 1 + len(columns)
    lines = [
        rf"\begin{{tabular}}{{l{'r' * len(columns)}}}",
        r"\toprule",
        " & " + " & ".join(rf"\multicolumn{{{len(ood_sets)}}}{{c}}{{{latex_text(m)}}}" for m in models) + r" \\",
        "Detector & " + " & ".join(names.OOD_SETS[o] for _, o in columns) + r" \\",
    ]
    for family, members in names.by_family(dict(families)).items():
        lines += [r"\midrule", rf"\multicolumn{{{width}}}{{l}}{{\textit{{{names.SCORE_FAMILIES[family]}}}}} \\"]
        for method in members:
            cells = []
            for model, ood in columns:
                value = auroc[(model, method, ood)]
                text = fmt(100 * value, 1)
                cells.append(rf"\textbf{{{text}}}" if value == best[model, ood] else text)
            lines.append(f"{names.SCORES[method]} & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def external_macros(
    provenance: Sequence[Mapping],
    descriptions: Mapping[str, str | None],
    ood_metrics: pd.DataFrame,
    settings: Mapping,
) -> dict[str, str]:
    """The section's text: the models, the data, and each model's best detector at its last checkpoint."""
    macros = {
        "ExtIDDescription": ID_DESCRIPTIONS.get(settings["dataset"], names.DATASETS.get(settings["dataset"], "")),
        "ExtModels": count_phrase(len(provenance), "model"),
        "ExtCheckpoints": count_phrase(sum(len(e["checkpoints"]) for e in provenance), "checkpoint file"),
        "ExtOODSets": and_list([names.OOD_SETS[o] for o in settings["ood_sets"]]),
        "ExtHeadlineOOD": names.OOD_SETS[settings["headline_ood"]],
        "ExtNumDetectors": str(len(settings["families"])),
        "ExtDetectorList": detector_list(list(settings["families"]), settings["families"]),
    }
    described = [
        f"{latex_text(e['model'])}: {latex_text(descriptions[e['model']])}"
        for e in provenance
        if descriptions.get(e["model"])
    ]
    macros["ExtDescriptions"] = (
        "Their owners describe them as follows. " + "; ".join(described) + "." if described else ""
    )
    headline = ood_metrics[ood_metrics["ood"] == settings["headline_ood"]]
    sentences = []
    for entry in provenance:
        rows = headline[headline["model"] == entry["model"]].set_index("method")["auroc"]
        best = rows.max()
        leaders = [names.SCORES[m] for m in rows.index if rows[m] == best]
        sentences.append(
            f"{latex_text(entry['model'])} (epoch {entry['checkpoints'][-1]['epoch']}): "
            f"{and_list(leaders)}, AUROC {fmt(100 * best, 1)}"
        )
    macros["ExtBestSentence"] = (
        f"The highest AUROC against {macros['ExtHeadlineOOD']} at the last checkpoint of each model, over one "
        "evaluation without seeds to average (so no difference between detectors is tested): "
        + "; ".join(sentences)
        + "."
    )
    return macros


def layers_table(layers: pd.DataFrame, ood: str) -> str:
    """At the last checkpoint of each model that names layers: per layer its dimension, NC1 and the AUROC (x100)
    against ``ood`` of each detector fitted on that layer alone; then the combined detectors over all layers. A
    build where no model names layers gets a sentence saying so (the paper leaves the table out)."""
    if layers.empty:
        return "No model trained elsewhere names layers in this configuration.\n"
    final = final_epochs(layers[layers["ood"] == ood], "external")
    single = single_layers(final)
    per_layer = [m for m in names.DEPTH_SCORES if m in set(single["method"])]
    combined = [m for m in names.DEPTH_SCORES if m in set(final["method"]) - set(single["method"])]
    lines = [
        rf"\begin{{tabular}}{{llrr{'r' * len(per_layer)}}}",
        r"\toprule",
        rf" & & & & \multicolumn{{{len(per_layer)}}}{{c}}{{AUROC vs {names.OOD_SETS[ood]}}} \\",
        "Model & Layer & Dim. & NC1 & " + " & ".join(names.DEPTH_SCORES[m] for m in per_layer) + r" \\",
    ]
    for model, rows in final.groupby("model", sort=False):
        lines.append(r"\midrule")
        auroc = rows.pivot_table(index="layer", columns="method", values="auroc")
        measured = single_layers(rows).drop_duplicates("layer").sort_values("depth")
        for i, row in enumerate(measured.itertuples(index=False)):
            cells = [latex_text(model) if i == 0 else "", _texttt(row.layer), str(int(row.dim)), fmt(row.nc1, 3)]
            lines.append(" & ".join(cells + [fmt(100 * auroc.at[row.layer, m], 1) for m in per_layer]) + r" \\")
        for method in combined:
            value = fmt(100 * rows.loc[rows["method"] == method, "auroc"].iloc[0], 1)
            lines.append(
                rf" & \multicolumn{{{3 + len(per_layer)}}}{{l}}{{{names.DEPTH_SCORES[method]}, all layers: {value}}} \\"
            )
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def layers_macros(layers: pd.DataFrame, ood: str, grid: int) -> dict[str, str | bool]:
    """Whether any model names layers (``ExtLayers``), their pooling grid, and per model the correlation over its
    layers at its last checkpoint between -log NC1 and each per-layer detector's AUROC against ``ood``: one
    evaluation, so a value without an interval, tested nowhere."""
    if layers.empty:
        return {"ExtLayers": False, "ExtGrid": str(grid), "ExtLayersSentence": ""}
    correlations = final_epochs(across_depth(layers, ["model"], ood), "external")
    pearson = correlations[(correlations["metric"] == "auroc") & (correlations["correlation"] == "pearson")]
    sentences = []
    for model, rows in pearson.groupby("model", sort=False):
        count = int(rows["layers"].iloc[0])
        if count < MIN_POINTS:
            sentences.append(f"{latex_text(model)} has {count} layers, fewer than the {MIN_POINTS} a correlation needs")
            continue
        values = [f"{fmt(r.rho, 2)} ({names.DEPTH_SCORES[r.method]})" for r in rows.itertuples() if pd.notna(r.rho)]
        sentences.append(f"for {latex_text(model)} ({count} layers), {and_list(values)}")
    return {
        "ExtLayers": True,
        "ExtGrid": str(grid),
        "ExtLayersSentence": (
            rf"Pearson's $R$ over the layers between $-\log$ NC1 and the AUROC against {names.OOD_SETS[ood]} at the "
            "last checkpoint is: " + "; ".join(sentences) + ". Each is one evaluation, with no interval, and no "
            "claim is tested from it."
        ),
    }
