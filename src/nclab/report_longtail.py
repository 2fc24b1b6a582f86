"""Tables and macros of the long-tail section: accuracy per shot group beside the published baselines,
alignment and NC geometry, OOD detection under imbalance, and the strategies' effects against their baselines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import pandas as pd
from scipy.stats import sem, spearmanr
from scipy.stats import t as t_distribution

from nclab import names, published
from nclab.longtail import GROUPS
from nclab.report import (
    ID_DESCRIPTIONS,
    and_list,
    below_chance_sentence,
    compute_sentence,
    escape,
    fmt,
    fmt_sci,
    mean_std,
    percent,
    seeds_phrase,
    spread_macros,
    thousands,
)

KEYS = ["ratio", "loss", "strategy"]
SUBSET_DESCRIPTIONS = {  # how the long-tailed training sets are built, per longtail.profile
    "exponential": r"Each long-tailed training set keeps \[n_c=\lfloor n_{\max}\,\mathrm{IR}^{-c/(C-1)}\rfloor\] "
    r"images of class $c$ (the exponential profile of \citet{cao2019ldam}; a step profile is also "
    r"available), $n_{\max}$ the smallest class of the balanced training set, each class's images "
    r"drawn with a fixed seed",
    "step": r"Each long-tailed training set keeps $n_{\max}$ images of each of the first $\lfloor C/2\rfloor$ "
    r"classes and $\lfloor n_{\max}/\mathrm{IR}\rfloor$ of each of the others (the step profile of "
    r"\citet{cao2019ldam}), $n_{\max}$ the smallest class of the balanced training set, each class's "
    r"images drawn with a fixed seed",
    "given": r"The training set is long-tailed as published and used as it is",
}


def id_description(dataset: str, image_size: int) -> str:
    """The in-distribution set, as the long-tail section's data paragraph names it."""
    if dataset == "imagenet_lt":
        return (
            r"ImageNet-LT~\citep{liu2019oltr}, a long-tailed subset of ImageNet whose test set (from the "
            rf"ImageNet validation set) is balanced, with every image resized to ${image_size}\times{image_size}$ "
            r"(shorter side, centre crop)"
        )
    return ID_DESCRIPTIONS[dataset]


def _ratio(value: float) -> str:
    return f"{value:g}"


def _block_rows(
    final: pd.DataFrame,
    columns: list[tuple[str, float, int]],
    bold_max: set[str],
    extra: Callable[[float, str, str], str] | None = None,
    extra_cells: int = 0,
) -> list[str]:
    """Rows (IR, loss, strategy) of mean +- std cells; the best strategy of each (IR, loss) block in bold;
    ``extra`` gives ``extra_cells`` more cells of a row (joined by &)."""
    lines, previous = [], None
    for (ratio, loss), block in final.groupby(["ratio", "loss"], sort=False):
        if previous is not None:
            lines.append(
                r"\midrule" if ratio != previous else r"\cmidrule(l){2-" + str(3 + len(columns) + extra_cells) + "}"
            )
        previous = ratio
        means = block.groupby("strategy", sort=False)[[c for c, _, _ in columns]].mean()
        for strategy, rows in block.groupby("strategy", sort=False):
            cells = []
            for column, scale, digits in columns:
                text = mean_std(rows[column], scale, digits) if rows[column].notna().all() else "--"
                if column in bold_max and len(means) > 1 and means.loc[strategy, column] == means[column].max():
                    text = rf"\textbf{{{text}}}"
                cells.append(text)
            if extra:
                cells.append(extra(ratio, loss, strategy))
            lines.append(
                f"{_ratio(ratio)} & {names.LOSSES[loss]} & {names.STRATEGIES[strategy]} & " + " & ".join(cells) + r" \\"
            )
    return lines


def accuracy_table(final: pd.DataFrame, published_rows: pd.DataFrame) -> str:
    """Test accuracy (%) overall and per shot group; where published baselines match the setting
    (:func:`nclab.published.longtail_matches`), the published overall accuracy and ours minus it."""
    columns = [("network_accuracy_test", 100, 1)] + [(f"accuracy_{g}", 100, 1) for g in GROUPS]
    first = published_rows.set_index(["imbalance_ratio", "method"])

    def published_cells(ratio: float, loss: str, strategy: str) -> str:
        if strategy != "none" or (ratio, loss) not in first.index:
            return "-- & --"
        value = first.loc[(ratio, loss), "value"]
        ours = 100 * _mean(final, ratio, loss, strategy, "network_accuracy_test")
        return f"{value:.1f} & ${ours - value:+.1f}$"

    extra = published_cells if len(first) else None
    header = r"IR & Loss & Strategy & Overall & Many & Medium & Few" + (r" & Published & $\Delta$" if extra else "")
    lines = [
        rf"\begin{{tabular}}{{lll{'c' * (len(columns) + 2 * bool(extra))}}}",
        r"\toprule",
        header + r" \\",
        r"\midrule",
    ]
    lines += _block_rows(final, columns, {c for c, _, _ in columns}, extra, 2 if extra else 0)
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def published_note(
    published_rows: pd.DataFrame, final: pd.DataFrame, setting: str, notes: Mapping[str, list[str]]
) -> str:
    """The accuracy table's sentence on published numbers: their sources, the remaining differences and the
    mean difference ours - published; or, where none matches, one sentence saying so."""
    if published_rows.empty:
        return published.no_match_sentence(setting)
    deltas = np.array(
        [
            100 * _mean(final, r.imbalance_ratio, r.method, "none", "network_accuracy_test") - r.value
            for r in published_rows.itertuples()
        ]
    )
    sources = ", ".join(rf"\citet{{{key}}}" for key in published_rows["source_key"].unique())
    return (
        rf"\emph{{Published}}: the baseline's overall test accuracy at the same setting ({setting}, same IR) "
        rf"in {sources}; $\Delta$ = ours $-$ published, on average ${np.nanmean(deltas):+.1f}$ points over "
        rf"{len(deltas)} baseline{'s' if len(deltas) > 1 else ''} "
        rf"(from ${np.nanmin(deltas):+.1f}$ to ${np.nanmax(deltas):+.1f}$). "
        rf"Remaining differences: {published.notes_text(notes)}."
    )


def geometry_table(final: pd.DataFrame) -> str:
    """Alignment a_c (mean, per group), minority collapse and NC1-NC3 at the final epoch; two decimals, so that
    eight mean +- std columns stay readable at the text width."""
    columns = (
        [("alignment_mean", 1, 2)]
        + [(f"alignment_{g}", 1, 2) for g in GROUPS]
        + [("minority_collapse", 1, 2), ("nc1", 1, 2), ("nc2_equiangular_classifier", 1, 2), ("nc3", 1, 2)]
    )
    lines = [
        r"\begin{tabular}{lllcccccccc}",
        r"\toprule",
        r"IR & Loss & Strategy & $\bar a$ & $a$ many & $a$ medium & $a$ few & minority & NC1 & NC2 $W$ & NC3 \\",
        r"\midrule",
    ]
    lines += _block_rows(final, columns, {"alignment_mean", *(f"alignment_{g}" for g in GROUPS)})
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def ood_table(ood: pd.DataFrame, headline: str, methods: list[str]) -> str:
    """AUROC (x 100) of ``methods`` against the headline OOD set, per long-tail run group."""
    subset = ood[(ood["ood"] == headline) & ood["method"].isin(methods)]
    wide = subset.pivot_table(index=["seed", *KEYS], columns="method", values="auroc", sort=False).reset_index()
    lines = [
        rf"\begin{{tabular}}{{lll{'c' * len(methods)}}}",
        r"\toprule",
        "IR & Loss & Strategy & " + " & ".join(names.SCORES[m] for m in methods) + r" \\",
        r"\midrule",
    ]
    lines += _block_rows(wide, [(m, 100, 1) for m in methods], set(methods))
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _rows(table: pd.DataFrame, ratio: float, loss: str, strategy: str) -> pd.DataFrame:
    """The rows of one run group (every seed) of a table with the run keys."""
    return table[(table["ratio"] == ratio) & (table["loss"] == loss) & (table["strategy"] == strategy)]


def _mean(final: pd.DataFrame, ratio: float, loss: str, strategy: str, column: str) -> float:
    return float(_rows(final, ratio, loss, strategy)[column].mean())


EFFECT_COLUMNS = (
    ("overall", "network_accuracy_test", 100.0),
    ("few", "accuracy_few", 100.0),
    ("alignment_few", "alignment_few", 1.0),
    ("nc3", "nc3", 1.0),
)


@dataclass(frozen=True)
class Effect:
    """Paired differences strategy - baseline of one quantity: one per (IR, loss, seed) where both ran."""

    deltas: np.ndarray
    settings: tuple[tuple[float, str], ...]  # (IR, loss) of each difference
    seeds: int

    @property
    def mean(self) -> float:
        return float(np.mean(self.deltas))

    def interval(self, level: float = 0.95) -> tuple[float, float] | None:
        """Student-t confidence interval of the mean difference over the pairs (a paired t-test across settings
        and seeds); None with one seed, where a run's noise cannot be told from the strategy's effect."""
        if self.seeds < 2 or len(self.deltas) < 2:
            return None
        half = t_distribution.ppf(0.5 + level / 2, len(self.deltas) - 1) * sem(self.deltas)
        return self.mean - half, self.mean + half

    def worst(self) -> tuple[float, tuple[float, str]]:
        index = int(np.argmin(self.deltas))
        return float(self.deltas[index]), self.settings[index]


def strategy_effects(final: pd.DataFrame) -> dict[str, dict[str, Effect]]:
    """Per strategy and quantity of :data:`EFFECT_COLUMNS`, the paired differences against the baseline of the
    same IR, loss and seed (strategy none), in points for accuracies."""
    effects = {}
    baselines = final[final["strategy"] == "none"]
    for strategy in [s for s in final["strategy"].unique() if s != "none"]:
        pairs = final[final["strategy"] == strategy].merge(
            baselines, on=["ratio", "loss", "seed"], suffixes=("", "_base")
        )
        if pairs.empty:
            continue
        settings = tuple(zip(pairs["ratio"], pairs["loss"]))
        effects[strategy] = {
            key: Effect(
                scale * (pairs[column] - pairs[f"{column}_base"]).to_numpy(np.float64),
                settings,
                int(pairs["seed"].nunique()),
            )
            for key, column, scale in EFFECT_COLUMNS
        }
    return effects


def _signed(value: float, digits: int = 1) -> str:
    return f"${value:+.{digits}f}$"


def _setting(setting: tuple[float, str]) -> str:
    return f"IR {_ratio(setting[0])} with {names.LOSSES[setting[1]]}"


def _evidence(effect: Effect, digits: int = 1) -> str:
    """'+1.2 (95 % CI [a, b])' with several seeds, '+1.2 (from a to b)' with one."""
    interval = effect.interval()
    if interval is None:
        return (
            f"{_signed(effect.mean, digits)} (from {_signed(effect.deltas.min(), digits)} to "
            f"{_signed(effect.deltas.max(), digits)})"
        )
    return (
        f"{_signed(effect.mean, digits)} (95\\,\\% CI [{_signed(interval[0], digits)}, {_signed(interval[1], digits)}])"
    )


def effects_sentence(effects: Mapping[str, Mapping[str, Effect]]) -> str:
    """Every strategy's mean change against its baselines, with its spread and the largest few-shot loss."""
    parts = []
    for strategy, e in effects.items():
        worst, where = e["few"].worst()
        parts.append(
            f"{names.STRATEGIES[strategy]} changes the overall accuracy by {_evidence(e['overall'])} points "
            f"(higher in {int(np.sum(e['overall'].deltas > 0))} of {len(e['overall'].deltas)} pairs), "
            f"the few-shot accuracy by {_evidence(e['few'])} points (at worst {_signed(worst)} at "
            f"{_setting(where)}), the few-shot alignment by {_signed(e['alignment_few'].mean, 3)} and NC3 "
            f"by {_signed(e['nc3'].mean, 3)}"
        )
    return "; ".join(parts) + "." if parts else "No alignment strategy is configured."


def outcome(effect: Effect) -> str:
    """'raises', 'lowers' or 'not resolved' from the confidence interval; 'not tested' with one seed."""
    interval = effect.interval()
    if interval is None:
        return "not tested"
    return "raises" if interval[0] > 0 else "lowers" if interval[1] < 0 else "not resolved"


def verdict(effects: Mapping[str, Mapping[str, Effect]], evidence: bool = True) -> str:
    """The test of the claim of Wang et al. (accuracy up, mostly on tail classes), worded by a rule that cannot
    overclaim: with one seed, no claim is tested; otherwise a strategy supports the claim when the 95 % CIs of
    its overall and few-shot changes are above zero and its few-shot gain is the larger, contradicts it when
    the overall CI is below zero, and leaves it not resolved otherwise. ``evidence``: the mean changes with their
    intervals (or ranges) follow; without, the verdict names only its number of settings and seeds (for a text
    that gives the changes just before)."""
    if not effects:
        return r"No alignment strategy is configured, so the claim of \citet{spa2025} is not tested"
    first = next(iter(effects.values()))["overall"]
    settings, seeds = len(set(first.settings)), first.seeds
    changes = "; ".join(
        f"{names.STRATEGIES[s]} {_evidence(e['overall'])} overall and {_evidence(e['few'])} few-shot"
        for s, e in effects.items()
    )
    if seeds < 2:
        claim = (
            rf"With one seed per run, no claim about the strategies can be tested (the claim of "
            rf"\citet{{spa2025}}, over {settings} settings)"
        )
        return f"{claim}; the accuracy changes by, in points: {changes}" if evidence else claim
    groups: dict[str, list[str]] = {"supported": [], "contradicted": [], "not resolved": []}
    for s, e in effects.items():
        overall, few = outcome(e["overall"]), outcome(e["few"])
        if overall == "raises" and few == "raises" and e["few"].mean > e["overall"].mean:
            groups["supported"].append(s)
        elif overall == "lowers":
            groups["contradicted"].append(s)
        else:
            groups["not resolved"].append(s)
    found = "; ".join(
        f"{key} for {and_list([names.STRATEGIES[s] for s in strategies])}"
        for key, strategies in groups.items()
        if strategies
    )
    claim = (
        rf"Over {settings} settings $\times$ {seeds} seeds (paired with the same seed's baseline), the claim "
        rf"of \citet{{spa2025}} is {found}"
    )
    return f"{claim}: accuracy changes, in points, {changes}" if evidence else claim


def longtail_macros(
    final: pd.DataFrame,
    classes: pd.DataFrame,
    ood: pd.DataFrame,
    settings: Mapping[str, object],
    published_rows: pd.DataFrame,
) -> dict[str, str]:
    """The numbers the long-tail section cites (prefix LT); ``published_rows``: the published baselines that
    match the setting (:func:`nclab.published.longtail_matches`)."""
    ratios = sorted(final["ratio"].unique())
    low, high = ratios[0], ratios[-1]
    base_loss = settings["losses"][0]
    schedule, seeds = settings["schedule"], final["seed"].nunique()
    effects = strategy_effects(final)
    m = {
        "LTImbalance": (
            f"a training set long-tailed as published, imbalance ratio {_ratio(high)}"
            if settings["profile"] == "given"
            else f"{settings['profile']} profile, imbalance ratios {', '.join(map(_ratio, ratios))}"
        ),
        "LTMaxRatio": _ratio(high),
        "LTMinRatio": _ratio(low),
        "LTManyThreshold": str(settings["shot_thresholds"]["many"]),
        "LTFewThreshold": str(settings["shot_thresholds"]["few"]),
        "LTArch": names.ARCHITECTURES[settings["model"]["arch"]],
        "LTSubsetDescription": SUBSET_DESCRIPTIONS[settings["profile"]],
        "LTWidth": str(settings["model"]["width"]),
        "LTFeatureDim": str(settings["feature_dim"]),
        "LTEpochs": str(schedule["epochs"]),
        "LTWarmup": str(schedule["warmup_epochs"]),
        "LTMilestones": " and ".join(str(round(f * schedule["epochs"])) for f in schedule["milestones"]),
        "LTGamma": fmt_sci(schedule["gamma"]),
        "LTSeeds": seeds_phrase(seeds),
        **spread_macros("LT", seeds),
        "LTNumRuns": str(len(final)),
        "LTLosses": ", ".join(names.LOSSES[x] for x in settings["losses"]),
        "LTStrategies": ", ".join(names.STRATEGIES[x] for x in settings["strategies"]),
        "LTMomentum": fmt_sci(settings["alignment"]["momentum"]),
        "LTRegStrength": fmt_sci(settings["alignment"]["reg"]["strength"]),
        "LTProjGamma": fmt_sci(settings["alignment"]["proj"]["gamma"]),
        "LTSlerpT": fmt_sci(settings["alignment"]["slerp"]["t"]),
        "LTTrainSizes": ", ".join(
            f"{thousands(n)} (IR {_ratio(r)})" for r, n in sorted(settings["train_sizes"].items())
        ),
        "LTSmallestClass": str(settings["smallest_class"]),
        "LTBaseLoss": names.LOSSES[base_loss],
        "LTStrategyEffects": effects_sentence(effects),
        "LTVerdict": verdict(effects, evidence=False),
        "LTVerdictWithEvidence": verdict(effects),
        "LTHeadlineOOD": escape(settings["headline_ood"]),
        "LTIDDescription": id_description(settings["dataset"], settings["image_size"]),
        "LTComputeDevice": compute_sentence(settings["compute"]),
        "LTNumClasses": str(settings["num_classes"]),
        "LTTestSize": thousands(settings["test_size"]),
    }
    setting = published.setting_label(settings["dataset"], settings["model"]["arch"], longtail=True)
    notes = published.differences(published_rows, lambda row: [schedule["epochs"]])
    m["LTPublishedNote"] = published_note(published_rows, final, setting, notes)
    m["LTBelowChanceSentence"] = below_chance_sentence(
        ood, KEYS, lambda key: f"IR {_ratio(key[0])}, {names.LOSSES[key[1]]}, {names.STRATEGIES[key[2]]}"
    )
    for name, ratio in (("Low", low), ("High", high)):
        for column, label in (
            ("network_accuracy_test", "Acc"),
            ("accuracy_many", "ManyAcc"),
            ("accuracy_few", "FewAcc"),
        ):
            value = _mean(final, ratio, base_loss, "none", column)
            m[f"LTBase{label}{name}"] = percent(value) if np.isfinite(value) else "--"
        for column, label in (
            ("alignment_many", "AlignMany"),
            ("alignment_few", "AlignFew"),
            ("minority_collapse", "Minority"),
            ("nc1", "NCOne"),
            ("nc3", "NCThree"),
        ):
            value = _mean(final, ratio, base_loss, "none", column)
            m[f"LTBase{label}{name}"] = fmt(value) if np.isfinite(value) else "--"
        baseline = _rows(ood, ratio, base_loss, "none")
        baseline = baseline[baseline["method"].isin(settings["headline_methods"])]
        best = baseline[baseline["ood"] == settings["headline_ood"]].groupby("method")["auroc"].mean()
        m[f"LTBaseBestAuroc{name}"] = fmt(best.max())
        m[f"LTBaseBestMethod{name}"] = names.SCORES[best.idxmax()]
    m["LTHeadlineDetectors"] = ", ".join(names.SCORES[x] for x in settings["headline_methods"])
    per_class = _rows(classes, high, base_loss, "none").groupby("class")[["train_count", "alignment"]].mean()
    m["LTSizeAlignmentSpearman"] = fmt(float(spearmanr(per_class["train_count"], per_class["alignment"])[0]), 2)
    return m
