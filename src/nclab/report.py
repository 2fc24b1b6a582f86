"""LaTeX tables and the macros file through which the paper cites every number."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import t as t_distribution

from nclab import names
from nclab.data import NOISE_OOD, SYNTHETIC_OOD, image_format, near_ood
from nclab.plan import FIXED_WIDTHS
from nclab.ranking import Leader, leader, order
from nclab.relation import MIN_POINTS, Evidence, bootstrap_over_runs, overall, verdict
from nclab.runs import final_epochs

DIGIT_WORDS = "Zero One Two Three Four Five Six Seven Eight Nine".split()


def macro_name(*parts: object) -> str:
    """CamelCase LaTeX command name from parts; digits are spelled out (TeX names are letters only)."""
    words = re.split(r"[^A-Za-z0-9]+", " ".join(map(str, parts)))
    name = "".join(w[:1].upper() + w[1:] for w in words if w)
    return re.sub(r"\d", lambda m: DIGIT_WORDS[int(m.group())], name)


def true_minus(text: str) -> str:
    """A formatted number with a typeset minus sign (valid in text and math mode), never a hyphen; -0.0 is 0.0."""
    if not text.startswith("-"):
        return text
    return text[1:] if float(text) == 0 else r"\ensuremath{-}" + text[1:]


def fmt(value: float, digits: int = 3) -> str:
    if not math.isfinite(value):
        raise ValueError(f"non-finite value {value} cannot enter the paper")
    return true_minus(f"{value:.{digits}f}")


def fmt_sci(value: float) -> str:
    """A number for LaTeX text, in scientific notation when small or large."""
    if not math.isfinite(value):
        raise ValueError(f"non-finite value {value} cannot enter the paper")
    if value == 0 or 1e-2 <= abs(value) < 1e3:
        return true_minus(f"{value:.3g}")
    mantissa, exponent = f"{value:.2e}".split("e")
    return rf"\ensuremath{{{mantissa}\times 10^{{{int(exponent)}}}}}"


def thousands(count: int) -> str:
    """An integer with LaTeX thousands separators: 26{,}032."""
    return f"{count:,}".replace(",", "{,}")


def count_phrase(count: int, noun: str) -> str:
    """'one seed' or '3 seeds': the paper never prints a template plural like 'seed(s)'."""
    return f"one {noun}" if count == 1 else f"{count} {noun}s"


def seeds_phrase(count: int) -> str:
    return count_phrase(count, "seed")


def spread_macros(prefix: str, seeds: Sequence[int]) -> dict[str, str]:
    """What the captions say about spread over seeds, true to what the tables and figures show: 'mean +- std
    over n seeds' and bands, or 'one seed' and neither; a figure of one run names its seed (', seed 0')."""
    if len(seeds) == 1:
        return {f"{prefix}Spread": "one seed", f"{prefix}BandNote": "", f"{prefix}FirstSeedNote": ""}
    return {
        f"{prefix}Spread": rf"mean $\pm$ std over {len(seeds)} seeds",
        f"{prefix}BandNote": f" Lines: mean over {len(seeds)} seeds; bands: their range.",
        f"{prefix}FirstSeedNote": f", seed {min(seeds)}",
    }


EASY_AUROC = 0.95  # every detector at least this on noise: noise is an easy OOD set
MINIATURE_DATASETS = ("digits", "synthetic_cifar")
MINIATURE_LIMITATION = {
    "balanced": "The balanced study is a miniature (narrow networks on small images, short schedules), chosen so "
    "that the whole workflow runs on a laptop in minutes; its numbers are not comparable to CIFAR-scale results, "
    "which the paper-scale presets produce with the same workflow.",
    "longtail": "The long-tail study is a miniature (a narrow network on a long-tailed subset of small images, a "
    "short schedule); its numbers are not comparable to CIFAR-LT results, which the long-tail presets produce.",
}


def seeds_limitation(seeds: int, study: str, short: bool = False) -> str:
    """What the seed count of ``study`` ('The balanced study ran ...') allows, for the Limitations section;
    ``short``: the count and interval width only, after another study's full sentence."""
    if seeds == 1:
        return (
            f"{study} ran one seed: its tables show single runs, and no difference between its methods, schedules "
            "or strategies is tested or ranked."
        )
    width = f"{fmt(t_distribution.ppf(0.975, seeds - 1), 1)} standard errors on each side of the mean"
    if short:
        return f"{study} ran {seeds} seeds (a 95\\,\\% $t$-interval of {width})."
    return (
        f"{study} ran {seeds} seeds. A 95\\,\\% $t$-interval over {seeds} seeds reaches {width}, so only "
        "differences large against the spread between seeds are resolved; the text ranks one method, schedule or "
        "strategy above another only where such a paired interval excludes 0."
    )


def percent(value: float) -> str:
    return fmt(100 * value, 2) + r"\,\%"


def mean_std(values: Iterable[float], scale: float = 1.0, digits: int = 1) -> str:
    """'m' for one seed, 'm $\\pm$ s' (sample std) over several; '$\\infty$' when a value is +infinity (a measure
    of :data:`nclab.collapse.INFINITE_WHEN_MEANS_COINCIDE`)."""
    values = np.asarray(list(values), np.float64) * scale
    if np.isposinf(values).any() and not np.isnan(values).any():
        return r"$\infty$"
    if len(values) > 1:
        return f"{fmt(values.mean(), digits)} $\\pm$ {fmt(values.std(ddof=1), digits)}"
    return fmt(values.mean(), digits)


def macros_file(macros: Mapping[str, str | bool]) -> str:
    """The macros file: a command per text value, and a TeX conditional (``\\ifName``) per boolean, with which
    the paper's text keeps a sentence only where the data make it true."""
    lines = ["% Generated by the workflow: every number the paper's text cites, and its conditions."]
    for name, value in macros.items():
        if isinstance(value, bool):
            lines.append(f"\\newif\\if{name}\\{name}{str(value).lower()}")
        else:
            lines.append(f"\\newcommand{{\\{name}}}{{{value}}}")
    return "\n".join(lines) + "\n"


def presence_flags(prefix: str, configured: Sequence[str], known: Iterable[str]) -> dict[str, bool]:
    """A conditional per known loss, strategy or detector (``\\if<prefix><Name>``): whether this build ran it."""
    return {macro_name(prefix, key): key in configured for key in known}


def escape(text: str) -> str:
    """``text`` with LaTeX's underscore escaped (dataset and schedule names)."""
    return text.replace("_", r"\_")


def latex_text(text: str) -> str:
    """Free text (a device's name) with every LaTeX special character escaped."""
    specials = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
    }
    return "".join(specials.get(c, c) for c in text)


def read_setups(paths: Iterable[str]) -> list[dict[str, object]]:
    """The ``setup`` of each run's compute.json (written by scripts/train.py)."""
    return [json.loads(Path(path).read_text())["setup"] for path in paths]


def compute_sentence(setups: Sequence[Mapping[str, object]]) -> str:
    """Where the runs were computed, from their compute.json setups (nclab.training.Setup): one clause per
    distinct device and precision, with its number of runs when they differ."""

    def clause(s: Mapping[str, object]) -> str:
        name = latex_text(str(s["device_name"]))
        if s["device"] == "cuda":
            options = [
                str(s["precision"]),
                *(["channels-last tensors"] if s["channels_last"] else []),
                *(["torch.compile"] if s["compile"] else []),
            ]
            return f"one {name} GPU ({', '.join(options)})"
        return f"the CPU ({name}, {s['threads']} thread{'s' if s['threads'] != 1 else ''}, {s['precision']})"

    clauses = [clause(s) for s in setups]
    distinct = list(dict.fromkeys(clauses))
    where = distinct[0] if len(distinct) == 1 else "; ".join(f"{c} ({clauses.count(c)} runs)" for c in distinct)
    versions = ", ".join(sorted({str(s["torch"]) for s in setups}))
    return (
        f"Training ran on {where}, with PyTorch {latex_text(versions)}; "
        "features were extracted in fp32 on the same device"
    )


ID_DESCRIPTIONS = {
    "digits": "the 1{,}797 handwritten $8\\times8$ digits bundled with scikit-learn (grayscale), split in a "
    "stratified way",
    "mnist": "MNIST~\\cite{lecun1998gradient}, handwritten digits ($28\\times28$ grayscale), with its official "
    "train/test split",
    "fashionmnist": "Fashion-MNIST~\\cite{xiao2017fashion}, images of clothing ($28\\times28$ grayscale), with its "
    "official train/test split",
    "kmnist": "KMNIST~\\cite{clanuwat2018kmnist}, cursive Japanese characters ($28\\times28$ grayscale), with its "
    "official train/test split",
    "cifar10": "CIFAR-10 ($32\\times32$ RGB) with its official train/test split",
    "cifar100": "CIFAR-100 ($32\\times32$ RGB) with its official train/test split",
    "synthetic_cifar": "a generated CIFAR-shaped set ($32\\times32$ RGB): each class a fixed random colour "
    "template, shifted, rescaled in contrast and overlaid with Gaussian noise per image",
}
OOD_DESCRIPTIONS = {
    "photos": "patches of two natural photographs, in the ID images' format",
    "noise": "uniform noise on the ID images' intensity levels",
    "cifar10": "CIFAR-10 test set",
    "cifar100": "CIFAR-100 test set",
    "tinyimagenet": "TinyImageNet images (local folder)",
    "svhn": "SVHN test set",
    "mnist": "MNIST test set",
    "fashionmnist": "Fashion-MNIST test set",
    "kmnist": "KMNIST test set",
    "notmnist": "notMNIST letters (local folder)",
    "textures": "Textures (DTD), all images",
    "places365": "Places365 images (local folder)",
}


OOD_NOTES = {  # by image format of the study (nclab.data.image_format), or by dataset for a generated one
    "digits": "Both are built in the digits' format from data bundled with scikit-learn, so nothing is downloaded.",
    "synthetic_cifar": "Both are built in the ID images' format from data bundled with scikit-learn, so nothing "
    "is downloaded.",
    "rgb32": "They are grouped as in OpenOOD~v1.5 into near-OOD (semantically close: the other CIFAR, "
    "TinyImageNet) and far-OOD sets. Each image is converted to RGB, resized so that its shorter side "
    "is 32 pixels (bilinear, antialiased) and centre-cropped, as OpenOOD's test preprocessing does.",
    "gray28": "They are grouped as in OpenOOD~v1.0's MNIST benchmark into near-OOD (the other $28\\times28$ "
    "grayscale sets and notMNIST) and far-OOD sets. Each image is resized so that its shorter side is 28 pixels "
    "(bilinear, antialiased), centre-cropped, and a colour image converted to grayscale by its ITU-R BT.601 "
    "luma $0.299R + 0.587G + 0.114B$, rounded half up to 8 bits.",
}


def ood_group(dataset: str, name: str) -> str:
    """OOD set ``name``'s group for in-distribution ``dataset``: near, far or built-in (nclab.data.near_ood)."""
    return "near" if name in near_ood(dataset) else "built-in" if name in SYNTHETIC_OOD else "far"


def ood_sets_table(dataset: str, sizes: Mapping[str, int], skipped: Mapping[str, str]) -> str:
    """The OOD sets of the study: group (near / far, OpenOOD v1.5), number of images, source; then the configured
    sets that were skipped, with the reason."""
    lines = [r"\begin{tabular}{llrl}", r"\toprule", r"OOD set & group & images & source \\", r"\midrule"]
    lines += [
        f"{escape(name)} & {ood_group(dataset, name)} & {thousands(size)} & {OOD_DESCRIPTIONS[name]} \\\\"
        for name, size in sizes.items()
    ]
    lines += [
        f"{escape(name)} & {ood_group(dataset, name)} & -- & skipped: {latex_text(reason)} \\\\"
        for name, reason in skipped.items()
    ]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def skipped_sentence(skipped: Mapping[str, str]) -> str:
    """The configured OOD sets that this build did not score, and why ('' when none was skipped)."""
    if not skipped:
        return ""
    listed = and_list([f"{escape(name)} ({latex_text(reason)})" for name, reason in skipped.items()])
    return (
        f"The configuration also names {listed}; {'it was' if len(skipped) == 1 else 'they were'} skipped, "
        "so no number of this paper involves " + ("it." if len(skipped) == 1 else "them.")
    )


def ood_auroc_table(metrics: pd.DataFrame, schedules: list[str], ood_sets: list[str], methods: list[str]) -> str:
    """AUROC x 100 (mean +- std over seeds) of ``methods``: columns OOD sets, one block of method rows per
    schedule; the best method of each block and column in bold."""
    cells = metrics.groupby(["method", "schedule", "ood"], sort=False)["auroc"].apply(list)
    lines = [
        rf"\begin{{tabular}}{{l{'c' * len(ood_sets)}}}",
        r"\toprule",
        "Method & " + " & ".join(escape(o) for o in ood_sets) + r" \\",
    ]
    for schedule in schedules:
        best = {o: max(np.mean(cells[m, schedule, o]) for m in methods) for o in ood_sets}
        lines += [r"\midrule", rf"\multicolumn{{{1 + len(ood_sets)}}}{{l}}{{\emph{{{escape(schedule)}}}}} \\"]
        for method in methods:
            row = []
            for ood in ood_sets:
                values = cells[method, schedule, ood]
                text = mean_std(values, 100)
                row.append(rf"\textbf{{{text}}}" if np.mean(values) == best[ood] else text)
            lines.append(f"{names.SCORES[method]} & " + " & ".join(row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


OOD_METRIC_HEADERS = {
    "auroc": r"AUROC $\uparrow$",
    "aupr_in": r"AUPR-In $\uparrow$",
    "aupr_out": r"AUPR-Out $\uparrow$",
    "fpr95": r"FPR@95\textsubscript{ID} $\downarrow$",
    "fpr95_ood": r"FPR@95\textsubscript{OOD} $\downarrow$",
}


def ood_full_table(metrics: pd.DataFrame, schedules: list[str], ood: str, methods: list[str]) -> str:
    """Every metric of :data:`OOD_METRIC_HEADERS` (x 100) of ``methods`` on one OOD set, per schedule."""
    subset = metrics[(metrics["ood"] == ood) & metrics["method"].isin(methods)]
    lines = [
        rf"\begin{{tabular}}{{ll{'c' * len(OOD_METRIC_HEADERS)}}}",
        r"\toprule",
        "Schedule & Method & " + " & ".join(OOD_METRIC_HEADERS.values()) + r" \\",
        r"\midrule",
    ]
    for i, schedule in enumerate(schedules):
        if i:
            lines.append(r"\midrule")
        for method, rows in subset[subset["schedule"] == schedule].groupby("method", sort=False):
            cells = [mean_std(rows[m], 100) for m in OOD_METRIC_HEADERS]
            lines.append(f"{escape(schedule)} & {names.SCORES[method]} & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


COLLAPSE_ROWS = (
    ("nc1", "NC1", 1.0),
    ("nc2_equinorm_features", "NC2 equinorm $\\tilde\\mu$", 1.0),
    ("nc2_equinorm_classifier", "NC2 equinorm $W$", 1.0),
    ("nc2_equiangular_features", "NC2 equiangularity $\\tilde\\mu$", 1.0),
    ("nc2_equiangular_classifier", "NC2 equiangularity $W$", 1.0),
    ("nc2_maxangle_features", "NC2 max-angle gap $\\tilde\\mu$", 1.0),
    ("nc3", "NC3", 1.0),
    ("nc1_trace_ratio", "$\\mathrm{Tr}\\,\\Sigma_W / \\mathrm{Tr}\\,\\Sigma_B$", 1.0),
    ("cdnv", "CDNV", 1.0),
    ("gnc2", "GNC2 (log-kernel std)", 1.0),
    ("etf_error", "ETF error $\\tilde\\mu$", 1.0),
    ("self_duality", "self-duality $\\sqrt{\\mathrm{NC3}}$", 1.0),
    ("nc4_train", "NC4 train (\\%)", 100.0),
    ("nc4_test", "NC4 test (\\%)", 100.0),
    ("network_accuracy_test", "network test accuracy (\\%)", 100.0),
    ("ncc_accuracy_test", "NCC test accuracy (\\%)", 100.0),
    ("alignment_mean", "mean alignment $a_c$", 1.0),
)


COLLAPSE_DIGITS = 4  # decimals of the collapse table's unscaled rows, and of the text that quotes them


def collapse_table(collapse: pd.DataFrame, schedules: list[str]) -> str:
    """NC metrics at the final epoch of each schedule (mean +- std over seeds)."""
    final = final_epochs(collapse, "balanced")
    lines = [
        rf"\begin{{tabular}}{{l{'c' * len(schedules)}}}",
        r"\toprule",
        "Metric (final epoch) & " + " & ".join(escape(s) for s in schedules) + r" \\",
        r"\midrule",
    ]
    for column, label, scale in COLLAPSE_ROWS:
        cells = [
            mean_std(final.loc[final["schedule"] == s, column], scale, 2 if scale > 1 else COLLAPSE_DIGITS)
            for s in schedules
        ]
        lines.append(f"{label} & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _final_mean(collapse: pd.DataFrame, schedule: str, column: str) -> float:
    final = final_epochs(collapse, "balanced")
    return float(final.loc[final["schedule"] == schedule, column].mean())


def _first_mean(collapse: pd.DataFrame, schedule: str, column: str) -> float:
    runs = collapse[collapse["schedule"] == schedule]
    return float(runs[runs["epoch"] == runs["epoch"].min()][column].mean())


DETECTOR_COLUMNS = {
    "auroc": ("AUROC", max),
    "fpr95": (r"FPR\textsubscript{ID}", min),
    "fpr95_ood": (r"FPR\textsubscript{OOD}", min),
}  # the full table's metrics and what is best


def detectors_table(
    metrics: pd.DataFrame, schedules: list[str], ood_sets: list[str], families: Mapping[str, str]
) -> str:
    """Every detector (rows, grouped by family) against every OOD set (column groups: AUROC and both FPR@95,
    x 100, mean +- std over seeds), one block per schedule; the best value of each block and column in bold."""
    cells = metrics.groupby(["method", "schedule", "ood"], sort=False)
    width = 1 + len(DETECTOR_COLUMNS) * len(ood_sets)
    lines = [
        rf"\begin{{tabular}}{{l{'r' * (width - 1)}}}",
        r"\toprule",
        " & "
        + " & ".join(rf"\multicolumn{{{len(DETECTOR_COLUMNS)}}}{{c}}{{{names.OOD_SETS[o]}}}" for o in ood_sets)
        + r" \\",
        "Detector & " + " & ".join(label for _ in ood_sets for label, _ in DETECTOR_COLUMNS.values()) + r" \\",
    ]
    for schedule in schedules:
        lines += [r"\midrule", rf"\multicolumn{{{width}}}{{l}}{{\emph{{{escape(schedule)}}}}} \\"]
        means = {
            (m, o, c): np.mean(cells.get_group((m, schedule, o))[c])
            for m in families
            for o in ood_sets
            for c in DETECTOR_COLUMNS
        }
        best = {
            (o, c): pick(v for (m, oo, cc), v in means.items() if (oo, cc) == (o, c) and np.isfinite(v))
            for o in ood_sets
            for c, (_, pick) in DETECTOR_COLUMNS.items()
        }
        for family, members in names.by_family(families).items():
            lines.append(rf"\multicolumn{{{width}}}{{l}}{{\quad\textit{{{names.SCORE_FAMILIES[family]}}}}} \\")
            for method in members:
                row = []
                for ood in ood_sets:
                    for column in DETECTOR_COLUMNS:
                        text = mean_std(cells.get_group((method, schedule, ood))[column], 100)
                        row.append(rf"\textbf{{{text}}}" if means[method, ood, column] == best[ood, column] else text)
                lines.append(f"{names.SCORES[method]} & " + " & ".join(row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def detector_list(methods: list[str], families: Mapping[str, str]) -> str:
    """The detectors of the study by family, each with its citation, as a sentence fragment of the paper."""
    groups = names.by_family({m: families[m] for m in methods})
    return "; ".join(
        f"{names.SCORE_FAMILIES[family]}: "
        + ", ".join(f"{names.SCORES[m]}~\\cite{{{names.SCORE_CITATIONS[m]}}}" for m in members)
        for family, members in groups.items()
    )


def below_chance_sentence(ood_metrics: pd.DataFrame, where: Sequence[str], scope: str) -> str:
    """How many mean AUROCs over seeds (per ``where`` group, detector and OOD set) lie below 0.5, that is rank the
    OOD set as more in-distribution than the ID test set, and where: counted, never listed case by case.
    ``scope`` names what was counted ('in Table 5'). Only a score below 0.5 on every OOD set in every
    group is named as such, with the note that its sign is the published one."""
    means = ood_metrics.groupby([*where, "method", "ood"], sort=False)["auroc"].mean().dropna()
    below = means[means < 0.5]
    if below.empty:
        return f"No mean AUROC {scope} lies below 0.5."
    per_set = below.groupby(level="ood", sort=False).size()
    counted = [f"{escape(o)} ({n})" for o, n in per_set.items()]
    sets = and_list(counted) if len(per_set) > 1 else escape(per_set.index[0])
    detectors = list(dict.fromkeys(below.index.get_level_values("method")))
    who = and_list([names.SCORES[m] for m in detectors]) if len(detectors) <= 3 else f"{len(detectors)} detectors"
    text = (
        f"{len(below)} of the {len(means)} mean AUROCs {scope} lie below 0.5, against {sets}, for {who}: there "
        "the score ranks the OOD set as more in-distribution than the ID test set, a finding about the score at "
        "that setting and not a sign error where the same score ranks another OOD set above chance"
    )
    by_method = means.groupby(level="method", sort=False).max()
    everywhere = [names.SCORES[m] for m, best in by_method.items() if best < 0.5]
    if everywhere:
        text += (
            f"; {and_list(everywhere)} {'is' if len(everywhere) == 1 else 'are'} below 0.5 on every OOD set "
            "in every setting, with the sign of the published score (tested against a reference implementation), "
            "so this describes these networks"
        )
    return text + "."


def leader_sentence(leaders: Mapping[str, Leader], label: Callable[[str], str], noun: str) -> str:
    """The leader of each block (schedule, imbalance ratio) with its mean, and what a paired comparison over seeds
    says of its lead: 'Mahalanobis (extended: 0.968; standard: 0.976); a paired comparison over 2 seeds leaves its
    lead within the spread of 21 other detectors (extended) and 22 other detectors (standard)'."""
    by_name: dict[str, list[str]] = {}
    for block, x in leaders.items():
        by_name.setdefault(x.name, []).append(f"{label(block)}: {fmt(x.mean)}")
    text = and_list([f"{names.SCORES[n]} ({'; '.join(values)})" for n, values in by_name.items()])
    seeds = next(iter(leaders.values())).seeds
    its = "its lead" if len(by_name) == 1 else "each lead"
    if seeds == 1:
        return f"{text}; with one seed, no ranking of the {noun}s is tested"
    if all(not x.unresolved for x in leaders.values()):
        return (
            f"{text}; a paired comparison over {seeds} seeds (95\\,\\% $t$-intervals) separates {its} from every "
            f"other {noun}"
        )
    counts = [len(x.unresolved) for x in leaders.values()]
    if len(leaders) == 1 or len(set(counts)) == 1:
        others = f"{counts[0]} other {noun}{'' if counts[0] == 1 else 's'}"
    else:
        others = and_list([f"{n} ({label(b)})" for n, b in zip(counts, leaders)]) + f" other {noun}s"
    return (
        f"{text}; a paired comparison over {seeds} seeds (95\\,\\% $t$-intervals) leaves {its} within the spread "
        f"of {others}"
    )


def terminal_phase_sentence(first_fit: Mapping[str, int | None]) -> str:
    """The terminal phase of training (Papyan et al., 2020) starts when the training set is fitted: named only for
    the schedules where a saved checkpoint fits it (``first_fit``: the first such epoch, or None)."""
    fitted = {s: e for s, e in first_fit.items() if e is not None}
    if not fitted:
        return (
            "No saved checkpoint fits the whole training set, so these runs never enter the terminal phase of "
            "training, where collapse is expected to deepen; the collapse measured here is that of training "
            "before interpolation."
        )
    after = and_list([f"epoch {e} ({escape(s)})" for s, e in fitted.items()])
    missing = [escape(s) for s in first_fit if s not in fitted]
    return (
        f"The epochs after {after} form the terminal phase of training, in which collapse is expected to deepen"
        + (f"; the {and_list(missing)} schedule never reaches it" if missing else "")
        + "."
    )


def fit_sentence(first_fit: Mapping[str, int | None]) -> str:
    """When the network first classifies the whole (non-augmented) training set correctly, per schedule."""
    start = "The network classifies the whole (non-augmented) training set correctly "
    if all(e is None for e in first_fit.values()):
        return start + "at none of the saved checkpoints of any schedule"
    return start + and_list(
        [
            f"{'at none of the saved checkpoints' if e is None else f'first at epoch {e}'} in the {escape(s)} schedule"
            for s, e in first_fit.items()
        ]
    )


CHANCE_FACTOR = 2.0  # a final test accuracy below this many times chance (1/C): the network has barely learned


def chance_sentence(final_accuracy: Mapping[str, float], num_classes: int) -> str:
    """A warning when a schedule ends near chance: its detectors then score the features of a network that has
    barely learned, and their numbers describe that network; '' otherwise."""
    near = [s for s, a in final_accuracy.items() if a < CHANCE_FACTOR / num_classes]
    if not near:
        return ""
    return (
        f"The test accuracy of the {and_list([escape(s) for s in near])} schedule{'s' if len(near) > 1 else ''} "
        f"stays below {CHANCE_FACTOR:g} times chance ({percent(1 / num_classes)} for {num_classes} classes): "
        "the network has barely learned, and the collapse and detection numbers below describe such a network."
    )


def schedule_comparison_sentence(collapse: pd.DataFrame, longest: str, shortest: str) -> str:
    """Whether the longest schedule ends with lower NC1 and NC3 than the shortest, by a paired comparison of their
    final values over seeds (the same seed trains both schedules)."""
    final = final_epochs(collapse, "balanced").set_index(["schedule", "seed"])
    words = []
    for column, label in (("nc1", "NC1"), ("nc3", "NC3")):
        long, short = final.loc[longest, column], final.loc[shortest, column]
        common = long.index.intersection(short.index)
        words.append((label, order(long[common], short[common])))
    seeds = final.loc[longest].index.nunique()
    long_name, short_name = escape(longest), escape(shortest)
    if all(w == "not tested" for _, w in words):
        return (
            f"With one seed, the final NC1 and NC3 of the {long_name} and {short_name} schedules are not "
            "compared by a test."
        )
    resolved = [f"a {w} {label}" for label, w in words if w in ("higher", "lower")]
    spread = [label for label, w in words if w == "within the spread"]
    parts = []
    if resolved:
        parts.append(
            f"The {long_name} schedule ends with {and_list(resolved)} than the {short_name} one (paired 95\\,\\% "
            f"$t$-interval over {seeds} seeds)"
        )
    if spread:
        parts.append(
            f"{'the' if resolved else 'The'} difference in {and_list(spread)} between the {long_name} and "
            f"{short_name} schedules is within the spread over {seeds} seeds"
        )
    return "; ".join(parts) + "."


def epochs_phrase(epochs: Sequence[int]) -> str:
    """'epoch 2', 'epochs 2 and 3', 'no epoch'."""
    if not epochs:
        return "no epoch"
    return f"epoch {epochs[0]}" if len(epochs) == 1 else f"epochs {and_list([str(e) for e in epochs])}"


ARCH_DESCRIPTIONS = {  # the balanced study's network, as the setup paragraph describes it (nclab.models)
    "resnet18": r"ResNet-18~\cite{he2016resnet} with a $3\times3$, stride-1 stem and no max-pooling",
    "resnet32": r"the CIFAR ResNet-32~\cite{he2016resnet} of the long-tail literature (three stages of five basic "
    "blocks, parameter-free shortcuts)",
    "resnet50": r"ResNet-50~\cite{he2016resnet} as in torchvision (the ImageNet stem, bottleneck blocks)",
    "lenet": r"LeNet~\cite{lecun1998gradient} as OpenOOD~v1.0~\cite{yang2022openood} builds it, three $5\times5$ "
    "convolutions with 6, 16 and 120 channels, two max-pools and a hidden layer of 84 units",
}


def network_size(arch: str, width: int, feature_dim: int) -> str:
    """'first-stage width 8, penultimate dimension $d=64$' for a ResNet; 'penultimate dimension $d=84$' for
    LeNet, whose widths are fixed."""
    dimension = f"penultimate dimension $d={feature_dim}$"
    return dimension if arch in FIXED_WIDTHS else f"first-stage width {width}, {dimension}"


SCHEDULER_NAMES = {"cosine": "cosine", "multistep": "step", "warmup_multistep": "warm-up and step"}


def schedule_clause(name: str, spec: Mapping[str, object]) -> str:
    """'the \\emph{standard} schedule anneals the learning rate with a cosine over 30 epochs', from the
    schedule's own recipe (nclab.training.make_scheduler)."""
    epochs = spec["epochs"]
    if spec["scheduler"] == "cosine":
        how = f"anneals the learning rate with a cosine over {epochs} epochs"
        if spec.get("final_lr"):
            how += f" down to {fmt_sci(spec['final_lr'])}"
    else:
        at = epochs_phrase([round(f * epochs) for f in spec.get("milestones", [])])
        how = f"multiplies the learning rate by {fmt_sci(spec.get('gamma', 0.1))} at {at} of {epochs}"
        if spec.get("warmup_epochs"):
            how = f"warms the learning rate up linearly over {spec['warmup_epochs']} epochs, then {how}"
    return f"the \\emph{{{escape(name)}}} schedule {how}"


def paper_macros(
    history: pd.DataFrame, collapse: pd.DataFrame, ood_metrics: pd.DataFrame, settings: Mapping[str, object]
) -> dict[str, str | bool]:
    """Every number the text cites, named by what it is (schedule, quantity, method, OOD set)."""
    schedules, headline = settings["schedules"], settings["headline_ood"]
    seed_ids = sorted(collapse["seed"].unique())
    m: dict[str, str | bool] = {
        "Seeds": seeds_phrase(len(seed_ids)),
        **spread_macros("", seed_ids),
        "ScaleLimitation": MINIATURE_LIMITATION["balanced"] if settings["dataset"] in MINIATURE_DATASETS else "",
        "SeedsLimitation": seeds_limitation(len(seed_ids), "The balanced study"),
        "HeadlineOOD": escape(headline),
        "NetworkSize": network_size(settings["arch"], settings["width"], settings["feature_dim"]),
        "NumClasses": str(settings["num_classes"]),
        "TrainSize": thousands(settings["train_size"]),
        "TestSize": thousands(settings["test_size"]),
        "IDDescription": ID_DESCRIPTIONS[settings["dataset"]],
        "OODSetsNote": OOD_NOTES.get(settings["dataset"], OOD_NOTES[image_format(settings["dataset"])]),
        "NumOODSets": str(len(settings["ood_sizes"])),
        "SkippedOODSentence": skipped_sentence(settings["skipped_ood_sets"]),
        "BatchSize": str(settings["batch_size"]),
        "LearningRate": fmt_sci(settings["lr"]),
        "Momentum": fmt_sci(settings["momentum"]) + (" (Nesterov)" if settings["nesterov"] else ""),
        "WeightDecay": fmt_sci(settings["weight_decay"]),
        "CropPadding": str(settings["crop_padding"]),
        "Flip": "with" if settings["flip"] else "without",
        "ComputeDevice": compute_sentence(settings["compute"]),
    }
    for ood, size in settings["ood_sizes"].items():
        m[macro_name("OOD", ood, "Size")] = thousands(size)
    m |= presence_flags("Detector", settings["methods"], names.SCORES)
    m["NumDetectors"] = str(len(settings["methods"]))
    m["DetectorList"] = detector_list(settings["methods"], settings["families"])
    m["HeadlineDetectors"] = ", ".join(names.SCORES[x] for x in settings["headline_methods"])
    m["NumHeadlineDetectors"] = str(len(settings["headline_methods"]))
    for method, hyper in settings["ood_hyperparameters"].items():
        for key, value in hyper.items():
            m[macro_name(method, key)] = fmt_sci(value) if isinstance(value, float) else str(value)
    first_fit: dict[str, int | None] = {}
    leaders: dict[str, Leader] = {}
    m["ArchName"] = names.ARCHITECTURES[settings["arch"]]
    m["ArchDescription"] = ARCH_DESCRIPTIONS[settings["arch"]]
    clauses = [schedule_clause(s, settings["schedule_specs"][s]) for s in schedules]
    m["ScheduleSentence"] = "; ".join(clauses)[:1].upper() + "; ".join(clauses)[1:] + "."
    for s in schedules:
        spec = settings["schedule_specs"][s]
        m[macro_name(s, "SchedulerName")] = SCHEDULER_NAMES[spec["scheduler"]]
        m[macro_name(s, "Epochs")] = str(spec["epochs"])
        runs = collapse[collapse["schedule"] == s]
        perfect = runs.groupby("epoch")["network_accuracy_train"].mean()
        perfect = perfect[perfect >= 1.0]
        first_fit[s] = int(perfect.index.min()) if len(perfect) else None
        for column, name in (
            ("network_accuracy_train", "TrainAcc"),
            ("network_accuracy_test", "TestAcc"),
            ("ncc_accuracy_test", "NccTestAcc"),
        ):
            m[macro_name(s, name)] = percent(_final_mean(collapse, s, column))
        m[macro_name(s, "Agreement")] = percent(1 - _final_mean(collapse, s, "nc4_test"))
        for column, name in (
            ("nc1", "NCOne"),
            ("nc3", "NCThree"),
            ("nc2_equiangular_features", "Equiangular"),
            ("nc2_equinorm_features", "Equinorm"),
            ("alignment_mean", "Alignment"),
        ):
            m[macro_name(s, name, "First")] = fmt(_first_mean(collapse, s, column), COLLAPSE_DIGITS)
            m[macro_name(s, name, "Final")] = fmt(_final_mean(collapse, s, column), COLLAPSE_DIGITS)
        for ood in settings["ood_sizes"]:
            m[macro_name(s, "NCFive", ood)] = fmt(_final_mean(collapse, s, f"nc5_{ood}"))
            m[macro_name(s, "NCFive", "Centred", ood)] = fmt(_final_mean(collapse, s, f"nc5_centred_{ood}"))
        m[macro_name(s, "NCFive", "Headline")] = fmt(_final_mean(collapse, s, f"nc5_{headline}"))
        m[macro_name(s, "NCFive", "Centred", "Headline")] = fmt(_final_mean(collapse, s, f"nc5_centred_{headline}"))
        headline_rows = ood_metrics[(ood_metrics["schedule"] == s) & (ood_metrics["ood"] == headline)]
        for method, value in headline_rows.groupby("method", sort=False)["auroc"].mean().items():
            m[macro_name(s, "Auroc", method)] = fmt(value)
        leaders[s] = leader(headline_rows.pivot_table(index="seed", columns="method", values="auroc"))
        final_loss = history[(history["schedule"] == s) & (history["epoch"] == spec["epochs"])]["train_loss"]
        m[macro_name(s, "FinalTrainLoss")] = fmt_sci(float(final_loss.mean()))
    m["MahalanobisSignSentence"] = (
        r"The Mahalanobis AUROC of 0.149 in the seed report~\citep{gros2026report} is a sign error: an AUROC $a<0.5$ "
        "from a score means its negation has AUROC $1-a$; with the score defined as the negative distance to the "
        f"closest class mean it is {m[macro_name(schedules[0], 'Auroc', 'mahalanobis')]} here ({escape(schedules[0])})."
        if "mahalanobis" in settings["methods"]
        else ""
    )
    m["BelowChanceSentence"] = below_chance_sentence(ood_metrics, ["schedule"], r"in \cref{tab:detectors}")
    m["TerminalPhaseSentence"] = terminal_phase_sentence(first_fit)
    m["FitSentence"] = fit_sentence(first_fit)
    m["SeedsSentence"] = (
        f"Results are the mean over {len(seed_ids)} seeds"
        if len(seed_ids) > 1
        else f"Results are from one seed ({seed_ids[0]})"
    )
    m["FamilyMarkers"] = "markers: mean over seeds; bars: range over seeds" if len(seed_ids) > 1 else "one seed"
    final_test = {s: _final_mean(collapse, s, "network_accuracy_test") for s in schedules}
    m["ChanceSentence"] = chance_sentence(final_test, settings["num_classes"])
    by_length = sorted(schedules, key=lambda s: -settings["schedule_specs"][s]["epochs"])
    m["DetectorLeaderSentence"] = leader_sentence({s: leaders[s] for s in by_length}, escape, "detector")
    noise = ood_metrics[ood_metrics["ood"].isin(NOISE_OOD)].groupby(["schedule", "method"])["auroc"].mean()
    noise_range = (
        f"mean AUROC {fmt(noise.min())} to {fmt(noise.max())} across detectors and schedules" if len(noise) else ""
    )
    m["NoiseSentence"] = (
        ""
        if not len(noise)
        else f"Uniform noise is detected almost perfectly here ({noise_range})."
        if noise.min() >= EASY_AUROC
        else f"Uniform noise is not an easy OOD set for these networks ({noise_range}): it is far from the data in "
        "pixel space, but a network need not map it far from the training features, so it is reported as an OOD "
        "set like the others, not as a sanity check."
    )
    epochs = {s: settings["schedule_specs"][s]["epochs"] for s in schedules}
    longest, shortest = max(schedules, key=epochs.get), min(schedules, key=epochs.get)
    m["ScheduleComparisonSentence"] = schedule_comparison_sentence(collapse, longest, shortest)
    return m


def relation_table(table: pd.DataFrame, families: Mapping[str, str]) -> str:
    """Mean within-run Spearman correlation between the negated NC measure (stronger collapse) and the AUROC,
    per detector (rows, by family) and NC measure (columns); bold where its interval over seeds lies above 0,
    italic where below."""
    measures = list(dict.fromkeys(table["measure"]))
    cells = table.set_index(["method", "measure"])
    lines = [
        rf"\begin{{tabular}}{{l{'r' * len(measures)}}}",
        r"\toprule",
        "Detector & " + " & ".join(names.NC_MEASURES[m] for m in measures) + r" \\",
    ]
    measured = set(cells.index.get_level_values(0))
    for family, members in names.by_family({m: f for m, f in families.items() if m in measured}).items():
        label = names.SCORE_FAMILIES[family]
        lines += [r"\midrule", rf"\multicolumn{{{1 + len(measures)}}}{{l}}{{\textit{{{label}}}}} \\"]
        for method in members:
            row = []
            for measure in measures:
                evidence = cells.loc[(method, measure)]
                text = fmt(evidence["mean"], 2) if np.isfinite(evidence["mean"]) else "--"
                style = {"supported": r"\textbf", "contradicted": r"\textit"}.get(evidence["verdict"])
                row.append(f"{style}{{{text}}}" if style else text)
            lines.append(f"{names.SCORES[method]} & " + " & ".join(row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


VERDICT_WORDS = {
    "supported": "lies above 0",
    "contradicted": "lies below 0",
    "not resolved": "contains 0",
    "no claim can be tested": "cannot be formed or has zero width",
}
LONGEST_LIST = 6  # detectors named in a clause; a longer last group is counted ("the other 21 detectors")


def verdict_phrase(by: Mapping[str, Sequence[str]]) -> str:
    """'the interval lies above 0 for A and B; it contains 0 for the other 21 detectors': the detectors grouped
    by verdict (its interval's position), a long last group counted rather than listed."""
    groups = [(VERDICT_WORDS[v], list(by[v])) for v in VERDICT_WORDS if by.get(v)]
    clauses = []
    for i, (words, methods) in enumerate(groups):
        last = i == len(groups) - 1
        if last and len(methods) > LONGEST_LIST:
            who = f"the other {len(methods)} detectors" if i else f"all {len(methods)} detectors"
        else:
            who = and_list([names.SCORES[m] for m in methods])
        clauses.append(f"{'the interval' if i == 0 else 'it'} {words} for {who}")
    return "; ".join(clauses)


def and_list(items: Sequence[str]) -> str:
    """'A', 'A and B', 'A, B and C'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def relation_macros(table: pd.DataFrame, prefix: str = "") -> dict[str, str]:
    """The verdict of each NC measure over the detectors, and a sentence per measure naming the detectors by
    verdict (macros ``<prefix>Relation<Measure>Verdict`` and ``...Sentence``)."""
    m = {}
    for measure, rows in table.groupby("measure", sort=False):
        name = macro_name(prefix, "Relation", names.NC_MEASURES[measure])
        by = {v: list(rows.loc[rows["verdict"] == v, "method"]) for v in rows["verdict"].unique()}
        verdict_word = overall(list(rows["verdict"]))
        m[f"{name}Verdict"] = "untested" if verdict_word == "no claim can be tested" else verdict_word
        if set(by) == {"no claim can be tested"}:
            most = rows.loc[rows["seeds"].idxmax()]  # the detector with the most seeds says why
            why = Evidence(most["mean"], most["low"], most["high"], int(most["seeds"])).untested_reason()
            m[f"{name}Sentence"] = (
                f"For {names.NC_MEASURES[measure]}, {why}, so its relation with detection is not tested here"
            )
            continue
        m[f"{name}Sentence"] = f"For {names.NC_MEASURES[measure]}, " + verdict_phrase(by)
    m[macro_name(prefix, "RelationClaimSentence")] = CLAIM_SENTENCES[
        m[macro_name(prefix, "Relation", "NC1", "Verdict")]
    ]
    return m


CLAIM_SENTENCES = {  # what the NC1 verdict means for the seed report's claim
    "supported": "Within runs, the data thus agree with the seed report's claim that stronger collapse goes with "
    "better detection, for NC1 and by the rule above.",
    "contradicted": "Within runs, the data thus contradict the seed report's claim that stronger collapse goes "
    "with better detection, for NC1 and by the rule above.",
    "not resolved": "At this seed count the data neither support nor contradict the seed report's claim that "
    "stronger collapse goes with better detection.",
    "untested": "These runs cannot test the seed report's claim that stronger collapse goes with better detection.",
}


def across_runs_sentence(
    final: pd.DataFrame,
    ood: pd.DataFrame,
    keys: Sequence[str],
    column: str,
    label: str,
    headline: str,
    methods: Sequence[str],
) -> str:
    """Across runs at their final epoch: Spearman between ``column`` (higher = the quantity ``label``) and each
    detector's AUROC against ``headline``, with a bootstrap interval over runs; the detectors by verdict."""
    aurocs = ood[ood["ood"] == headline].pivot_table(index=[*keys, "seed"], columns="method", values="auroc")
    values = final.set_index([*keys, "seed"])[column].reindex(aurocs.index)
    by: dict[str, list[str]] = {}
    for method in methods:
        if method in aurocs:
            evidence = bootstrap_over_runs(values, aurocs[method])
            by.setdefault(verdict(evidence), []).append(method)
    if set(by) <= {"no claim can be tested"}:
        why = (
            f"there are fewer than {MIN_POINTS} runs"
            if len(aurocs) < MIN_POINTS
            else "every resample of the runs gives the same correlation, an interval of zero width"
        )
        return f"Across runs, {why}, so the relation of {label} with detection is not tested"
    return (
        f"Across the {len(aurocs)} runs at their final epoch, for the Spearman correlation between {label} and the "
        f"AUROC against {escape(headline)} (95\\,\\% bootstrap interval over runs), " + verdict_phrase(by)
    )
