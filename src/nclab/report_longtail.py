"""Tables and macros of the long-tail section: accuracy per shot group beside the published baselines,
alignment and NC geometry, OOD detection under imbalance, and the strategies' effects against their baselines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from nclab import names, published
from nclab.longtail import GROUPS
from nclab.plan import AFFINE_HEADS, CLASSIFIER_STRATEGIES, FIXED_CLASSIFIER_LOSSES, LOSS_HEADS
from nclab.ranking import leader, t_interval
from nclab.report import (
    CHANCE_FACTOR,
    ID_DESCRIPTIONS,
    MINIATURE_DATASETS,
    MINIATURE_LIMITATION,
    and_list,
    below_chance_sentence,
    compute_sentence,
    count_phrase,
    epochs_phrase,
    escape,
    fmt,
    fmt_sci,
    leader_sentence,
    mean_std,
    network_size,
    percent,
    presence_flags,
    seeds_limitation,
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


ACCURACY_DIGITS = 1  # decimals of the accuracy table (in %), and of the text that quotes it
GEOMETRY_DIGITS = 2  # decimals of the geometry table, and of the text that quotes it


def accuracy_table(final: pd.DataFrame, published_rows: pd.DataFrame) -> str:
    """Test accuracy (%) overall and per shot group; where published baselines match the setting
    (:func:`nclab.published.longtail_matches`), the published overall accuracy and ours minus it."""
    columns = [("network_accuracy_test", 100, ACCURACY_DIGITS)] + [
        (f"accuracy_{g}", 100, ACCURACY_DIGITS) for g in GROUPS
    ]
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
    d = GEOMETRY_DIGITS
    columns = (
        [("alignment_mean", 1, d)]
        + [(f"alignment_{g}", 1, d) for g in GROUPS]
        + [("minority_collapse", 1, d), ("nc1", 1, d), ("nc2_equiangular_classifier", 1, d), ("nc3", 1, d)]
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

    def interval(self) -> tuple[float, float] | None:
        """95 % Student-t confidence interval of the mean difference over the pairs (a paired t-test across
        settings and seeds); None with one seed, where a run's noise cannot be told from the strategy's effect."""
        return t_interval(self.deltas) if self.seeds >= 2 else None

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


def effects_table(effects: Mapping[str, Mapping[str, Effect]]) -> str:
    """Each strategy's paired changes against its baselines (same IR, loss and seed): overall and few-shot accuracy
    (points) with their 95 % interval over the pairs (their range with one seed), the pairs it raises, the worst
    few-shot change, and the mean changes of few-shot alignment and NC3; the verdict of :func:`verdict`."""
    several = any(e["overall"].seeds > 1 for e in effects.values())
    spread = "interval" if several else "range"
    lines = [
        r"\begin{tabular}{lcccccccl}",
        r"\toprule",
        rf"Strategy & pairs & $\Delta$ overall & {spread} & $\Delta$ few & {spread} & lowest $\Delta$ few & "
        r"$\Delta a$ few & $\Delta$ NC3 \\",
        r"\midrule",
    ]
    for strategy, e in effects.items():
        cells = [str(len(e["overall"].deltas))]
        for key in ("overall", "few"):
            interval = e[key].interval() or (e[key].deltas.min(), e[key].deltas.max())
            cells += [_signed(e[key].mean), f"[{_signed(interval[0])}, {_signed(interval[1])}]"]
        worst, where = e["few"].worst()
        cells += [
            f"{_signed(worst)} ({_setting(where)})",
            _signed(e["alignment_few"].mean, GEOMETRY_DIGITS),
            _signed(e["nc3"].mean, GEOMETRY_DIGITS),
        ]
        lines.append(f"{names.STRATEGIES[strategy]} & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def outcome(effect: Effect) -> str:
    """'raises', 'lowers' or 'not resolved' from the confidence interval; 'not tested' with one seed."""
    interval = effect.interval()
    if interval is None:
        return "not tested"
    return "raises" if interval[0] > 0 else "lowers" if interval[1] < 0 else "not resolved"


def verdict(effects: Mapping[str, Mapping[str, Effect]]) -> str:
    """The test of the claim of Wang et al. (accuracy up, mostly on tail classes), worded by a rule that cannot
    overclaim: with one seed, no claim is tested; otherwise a strategy supports the claim when the 95 % CIs of
    its overall and few-shot changes are above zero and its few-shot gain is the larger, contradicts it when
    the overall CI is below zero, and leaves it not resolved otherwise. The changes themselves are in
    :func:`effects_table`."""
    if not effects:
        return r"No alignment strategy is configured, so the claim of \citet{spa2025} is not tested"
    first = next(iter(effects.values()))["overall"]
    settings, seeds = len(set(first.settings)), first.seeds
    if seeds < 2:
        return (
            rf"With one seed per run, no claim about the strategies can be tested (the claim of "
            rf"\citet{{spa2025}}, over {count_phrase(settings, 'setting')})"
        )
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
    return (
        rf"Over {count_phrase(settings, 'setting')} $\times$ {seeds} seeds (paired with the same seed's baseline), "
        rf"the claim of \citet{{spa2025}} is {found}"
    )


HEAD_WORDS = {"normed": "normalised head", "etf": "fixed ETF head"}  # the heads of nclab.plan.LOSS_HEADS


def non_affine_heads(losses: Sequence[str]) -> list[str]:
    """'normalised head of LDAM-DRW', ...: the heads among ``losses`` whose logits are not W h + b."""
    heads = {loss: LOSS_HEADS.get(loss, "linear") for loss in losses}
    return [f"{HEAD_WORDS[h]} of {names.LOSSES[loss]}" for loss, h in heads.items() if h not in AFFINE_HEADS]


def line_styles_note(losses: Sequence[str], strategies: Sequence[str]) -> str:
    """What colour and line style mean in the long-tail figures, naming only what varies."""
    keys = []
    if len(strategies) > 1:
        keys.append("colour: strategy")
    if len(losses) > 1:
        keys.append("line style: loss")
    if len(losses) == 1:
        keys.append(f"loss: {names.LOSSES[losses[0]]}")
    if len(strategies) == 1:
        keys.append(f"strategy: {names.STRATEGIES[strategies[0]]}")
    return "; ".join(keys)


def threshold_note(thresholds: Mapping[str, int]) -> str:
    """The shot groups' thresholds beside the published ones (100 and 20 on CIFAR-LT and ImageNet-LT)."""
    if (thresholds["many"], thresholds["few"]) == (100, 20):
        return "as on CIFAR-LT and ImageNet-LT"
    return "CIFAR-LT and ImageNet-LT use 100 and 20; this build sets its own for its class sizes"


def longtail_chance(final: pd.DataFrame, num_classes: int) -> str:
    """A warning when run groups end near chance (below twice 1/C on test); '' otherwise."""
    means = final.groupby(KEYS, sort=False)["network_accuracy_test"].mean()
    near = int((means < CHANCE_FACTOR / num_classes).sum())
    if not near:
        return ""
    return (
        f"{near} of the {len(means)} run groups end below {CHANCE_FACTOR:g} times chance on test "
        f"({percent(1 / num_classes)} for {num_classes} classes): those networks have barely learned, and their "
        "geometry and detection numbers describe such networks."
    )


DOMINANCE = 10.0  # one seed's value this many times every other seed's dominates the mean


def outlier_sentence(final: pd.DataFrame) -> str:
    """The cells of the geometry table (NC1, NC3) whose mean one seed dominates (its value over
    :data:`DOMINANCE` times every other seed's), named with each seed's value; '' where none."""
    cases = []
    for (ratio, loss, strategy), rows in final.groupby(KEYS, sort=False):
        for column, label in (("nc1", "NC1"), ("nc3", "NC3")):
            values = rows.set_index("seed")[column].dropna().sort_index()
            if len(values) < 2:
                continue
            top = values.idxmax()
            if (values.drop(top) * DOMINANCE < values[top]).all():
                seeds = and_list([f"{fmt(v, GEOMETRY_DIGITS)} (seed {s})" for s, v in values.items()])
                cases.append(
                    f"{label} of {names.STRATEGIES[strategy]} with {names.LOSSES[loss]} at IR {_ratio(ratio)}: {seeds}"
                )
    if not cases:
        return ""
    where = "this cell of" if len(cases) == 1 else f"{len(cases)} cells of"
    return f"One seed dominates the mean of {where} \\cref{{tab:lt-geometry}}: " + "; ".join(cases) + "."


RECONSTRUCTED = ("reg", "slerp")  # strategies whose formulas were not public
STRATEGY_HYPERPARAMETERS = {"reg": r"$\lambda$", "proj": r"$\gamma$", "slerp": "$t$"}


def reconstruction_sentence(strategies: Sequence[str], losses: Sequence[str]) -> str:
    """Which configured strategies are our reconstructions, and which do not combine with the fixed ETF head."""
    ours = [names.STRATEGIES[s] for s in strategies if s in RECONSTRUCTED]
    text = ""
    if ours:
        text = (
            rf"\textbf{{{and_list(ours)} {'is our reconstruction' if len(ours) == 1 else 'are our reconstructions'}}}: "
            "the paper's formulas were not public when this workflow was written, so "
            f"{'its' if len(ours) == 1 else 'their'} numbers test our reading of the idea, not the authors' code."
        )
    moving = [names.STRATEGIES[s] for s in strategies if s in CLASSIFIER_STRATEGIES]
    fixed = [names.LOSSES[x] for x in losses if x in FIXED_CLASSIFIER_LOSSES]
    if moving and fixed:
        verb = "moves" if len(moving) == 1 else "move"
        text += (
            f" {and_list(moving)} {verb} the classifier, which {and_list(fixed)} keeps fixed; those runs do not exist."
        )
    return text.strip()


def normalised_heads_sentence(losses: Sequence[str]) -> str:
    """How the classifier quantities are computed on heads whose logits depend on the directions of W only."""
    heads = non_affine_heads(losses)
    if not heads:
        return ""
    return (
        f"The logits of the {and_list(heads)} depend on the directions of the $w_c$ only, so for "
        f"{'this head' if len(heads) == 1 else 'these heads'} every classifier quantity (NC2's classifier equinorm, "
        r"NC3, $\|w_c\|$) is computed on the row-normalised $W$: the raw row norms of a normalised head are an "
        "optimisation artefact, not geometry the network uses."
    )


def discussion(settings: Mapping[str, object], published_rows: pd.DataFrame, differences: str) -> str:
    """The long-tail discussion: what the published comparison means at this scale, what our reconstructions and
    untuned hyperparameters imply; only what applies to this build."""
    parts = []
    if settings["dataset"] in MINIATURE_DATASETS:
        parts.append(
            "The comparison with published numbers is only meaningful for the paper-scale presets: the miniature's "
            "data and schedules are too small for absolute numbers to transfer, but the mechanisms (how the "
            "misalignment depends on imbalance, which strategies move it) are measured the same way."
        )
    elif not published_rows.empty:
        parts.append(rf"Published baselines are set beside ours in \cref{{tab:lt-accuracy}}{differences}.")
    ours = [names.STRATEGIES[s] for s in settings["strategies"] if s in RECONSTRUCTED]
    if ours:
        parts.append(
            f"Our {and_list(ours)} may differ from the authors' version{'s' if len(ours) > 1 else ''}; a negative "
            f"result for {'it' if len(ours) == 1 else 'them'} is a result about our reconstruction."
        )
    tuned = [STRATEGY_HYPERPARAMETERS[s] for s in settings["strategies"] if s in STRATEGY_HYPERPARAMETERS]
    if tuned:
        parts.append(f"The strategies add hyperparameters ({', '.join(tuned)}, the EMA momentum) that we did not tune.")
    return " ".join(parts)


def longtail_macros(
    final: pd.DataFrame,
    classes: pd.DataFrame,
    ood: pd.DataFrame,
    settings: Mapping[str, object],
    published_rows: pd.DataFrame,
) -> dict[str, str | bool]:
    """The numbers the long-tail section cites (prefix LT); ``published_rows``: the published baselines that
    match the setting (:func:`nclab.published.longtail_matches`)."""
    ratios = sorted(final["ratio"].unique())
    low, high = ratios[0], ratios[-1]
    base_loss = settings["losses"][0]
    schedule, seed_ids = settings["schedule"], sorted(final["seed"].unique())
    effects = strategy_effects(final)
    m: dict[str, str | bool] = {
        "LTImbalance": (
            f"a training set long-tailed as published, imbalance ratio {_ratio(high)}"
            if settings["profile"] == "given"
            else f"{settings['profile']} profile, imbalance ratio{'s' if len(ratios) > 1 else ''} "
            + ", ".join(map(_ratio, ratios))
        ),
        "LTMaxRatio": _ratio(high),
        "LTMinRatio": _ratio(low),
        "LTManyThreshold": str(settings["shot_thresholds"]["many"]),
        "LTFewThreshold": str(settings["shot_thresholds"]["few"]),
        "LTArch": names.ARCHITECTURES[settings["model"]["arch"]],
        "LTSubsetDescription": SUBSET_DESCRIPTIONS[settings["profile"]],
        "LTNetworkSize": network_size(settings["model"]["arch"], settings["model"]["width"], settings["feature_dim"]),
        "LTEpochs": str(schedule["epochs"]),
        "LTWarmup": str(schedule["warmup_epochs"]),
        "LTMilestones": epochs_phrase([round(f * schedule["epochs"]) for f in schedule["milestones"]]),
        "LTSeveralRatios": len(ratios) > 1,
        "LTSeveralLosses": len(settings["losses"]) > 1,
        "LTMarkerNote": f" Markers: mean over {len(seed_ids)} seeds." if len(seed_ids) > 1 else "",
        "LTRunsDiffer": and_list(
            [
                what
                for what, key in (("imbalance ratio", "ratio"), ("loss", "loss"), ("alignment strategy", "strategy"))
                if final[key].nunique() > 1
            ]
            or ["seed only"]
        ),
        "LTPublishedBeside": (
            ", beside the published numbers of the baselines where their setting matches ours"
            if not published_rows.empty
            else ""
        ),
        "LTLossesPhrase": "the baseline loss" if len(settings["losses"]) == 1 else "the baseline losses",
        "LTChanceSentence": longtail_chance(final, settings["num_classes"]),
        "LTGamma": fmt_sci(schedule["gamma"]),
        "LTSeeds": seeds_phrase(len(seed_ids)),
        **spread_macros("LT", seed_ids),
        "LTScaleLimitation": MINIATURE_LIMITATION["longtail"] if settings["dataset"] in MINIATURE_DATASETS else "",
        "LTSeedsLimitation": seeds_limitation(len(seed_ids), "The long-tail study"),
        "LTSeedsCount": seeds_limitation(len(seed_ids), "The long-tail study", short=True),
        "LTLineStyles": line_styles_note(settings["losses"], settings["strategies"]),
        "LTThresholdNote": threshold_note(settings["shot_thresholds"]),
        "LTOutlierSentence": outlier_sentence(final),
        "LTNumRuns": str(len(final)),
        "LTLosses": ", ".join(names.LOSSES[x] for x in settings["losses"]),
        "LTStrategies": ", ".join(names.STRATEGIES[x] for x in settings["strategies"]),
        "LTAlignedStrategies": and_list(
            [names.STRATEGIES[x] for x in settings["strategies"] if x != "none"] or ["none"]
        ),
        "LTMomentum": fmt_sci(settings["alignment"]["momentum"]),
        "LTRegStrength": fmt_sci(settings["alignment"]["reg"]["strength"]),
        "LTProjGamma": fmt_sci(settings["alignment"]["proj"]["gamma"]),
        "LTSlerpT": fmt_sci(settings["alignment"]["slerp"]["t"]),
        "LTTrainSizes": ", ".join(
            f"{thousands(n)} (IR {_ratio(r)})" for r, n in sorted(settings["train_sizes"].items())
        ),
        "LTSmallestClass": str(settings["smallest_class"]),
        "LTBaseLoss": names.LOSSES[base_loss],
        "LTVerdict": verdict(effects),
        "LTEffectsInterval": (
            r"its 95\,\% $t$-interval over the pairs" if len(seed_ids) > 1 else "its range over the pairs (one seed)"
        ),
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
        ood, KEYS, "of the long-tail runs (every detector, OOD set and run group)"
    )
    differences = (
        r"; the differences that remain are listed under it" if not published_rows.empty and any(notes.values()) else ""
    )
    m["LTDiscussion"] = discussion(settings, published_rows, differences)
    m["LTReconstructionSentence"] = reconstruction_sentence(settings["strategies"], settings["losses"])
    m["LTNormalisedHeadsSentence"] = normalised_heads_sentence(settings["losses"])
    for name, ratio in (("Low", low), ("High", high)):
        for column, label in (
            ("network_accuracy_test", "Acc"),
            ("accuracy_many", "ManyAcc"),
            ("accuracy_few", "FewAcc"),
        ):
            value = _mean(final, ratio, base_loss, "none", column)
            m[f"LTBase{label}{name}"] = fmt(100 * value, ACCURACY_DIGITS) + r"\,\%" if np.isfinite(value) else "--"
        for column, label in (
            ("alignment_many", "AlignMany"),
            ("alignment_few", "AlignFew"),
            ("minority_collapse", "Minority"),
            ("nc1", "NCOne"),
            ("nc3", "NCThree"),
        ):
            value = _mean(final, ratio, base_loss, "none", column)
            m[f"LTBase{label}{name}"] = fmt(value, GEOMETRY_DIGITS) if np.isfinite(value) else "--"
    leaders = {}
    for ratio in dict.fromkeys((low, high)):
        baseline = _rows(ood, ratio, base_loss, "none")
        baseline = baseline[baseline["method"].isin(settings["headline_methods"])]
        headline = baseline[baseline["ood"] == settings["headline_ood"]]
        leaders[ratio] = leader(headline.pivot_table(index="seed", columns="method", values="auroc"))
    m["LTBaseLeaderSentence"] = leader_sentence(leaders, lambda ratio: f"IR {_ratio(ratio)}", "detector")
    m |= presence_flags("LTLoss", settings["losses"], names.LOSSES)
    m |= presence_flags("LTStrategy", settings["strategies"], names.STRATEGIES)
    m["LTAnyStrategy"] = any(x != "none" for x in settings["strategies"])
    m["LTHeadlineDetectors"] = ", ".join(names.SCORES[x] for x in settings["headline_methods"])
    heads = non_affine_heads(settings["losses"])
    m["LTOODCaptionNote"] = (
        r" ViM assumes logits $z=Wh+b$ (its origin is $u=-W^{+}b$); it is not computed (--) on the "
        + and_list(heads)
        + ", whose logits are not of that form."
        if "vim" in settings["headline_methods"] and heads
        else ""
    )
    per_class = _rows(classes, high, base_loss, "none").groupby("class")[["train_count", "alignment"]].mean()
    m["LTSizeAlignmentSpearman"] = fmt(float(spearmanr(per_class["train_count"], per_class["alignment"])[0]), 2)
    return m
