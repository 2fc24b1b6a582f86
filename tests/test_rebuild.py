"""Rebuild only what changed: each edit must make Snakemake plan exactly the listed jobs, nothing more or less.

The planned jobs are read from `snakemake -n` against the finished tiny workflow (two balanced runs: standard
and extended, seed 0; two long-tail runs: IR 5, cross-entropy, strategies none and proj); every edit is undone
afterwards. The table of docs/reruns.md is generated from CASES and checked here.
"""

import copy
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import yaml
from conftest import ROOT, TINY, snakemake

from nclab.contents import study_figures, study_tables

pytestmark = pytest.mark.workflow  # every test here runs Snakemake (or SLURM)

RUNS = [("standard", "0"), ("extended", "0")]
FIGURES = study_figures("balanced")
LT_STRATEGIES = TINY["longtail"]["strategies"]
LT_RUNS = [(f"longtail/ir5/ce/{strategy}", "0") for strategy in LT_STRATEGIES]
LT_FIGURES = study_figures("longtail")
Job = tuple[str, frozenset]  # (rule, {(wildcard, value)})


def job(rule: str, **wildcards: str) -> Job:
    return rule, frozenset(wildcards.items())


RUN_RULES = ("train", "extract_features", "collapse_metrics", "ood_scores", "ood_metrics", "ood_trajectory")


def run_jobs(run: str, seed: str) -> set[Job]:
    """Everything downstream of one run's training, up to its own tables."""
    return {job(rule, run=run, seed=seed) for rule in RUN_RULES}


def balanced_run_jobs(schedule: str, seed: str) -> set[Job]:
    """A balanced run's jobs: those of any run, and its t-SNE."""
    return run_jobs(schedule, seed) | {job("tsne", run=schedule, seed=seed)}


def lt_run_jobs(strategy: str) -> set[Job]:
    return run_jobs(f"longtail/ir5/ce/{strategy}", "0")


def figures(*names: str) -> set[Job]:
    return {job("figure", figure=n) for n in names}


def tables(study: str) -> set[Job]:
    """The study's tables typeset alone for the HTML report."""
    return {job("typeset_table", table=t) for t in study_tables(study)}


REPORT = {job("tables_and_macros"), job("paper"), job("all")} | tables("balanced")
LT_REPORT = {job("longtail_tables_and_macros"), job("paper"), job("all")} | tables("longtail")
EVERY_RUN = (
    balanced_run_jobs("standard", "0")
    | balanced_run_jobs("extended", "0")
    | lt_run_jobs("none")
    | lt_run_jobs("proj")
    | figures(*FIGURES, *LT_FIGURES)
    | REPORT
    | LT_REPORT
)


def planned_jobs(workdir: Path, *args: str) -> set[Job]:
    """The jobs `snakemake -n` plans, with their wildcards."""
    result = snakemake(workdir, "-n", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs, rule, wildcards = set(), None, frozenset()
    for line in (result.stdout + "\n" + result.stderr).splitlines() + ["rule end:"]:
        start = re.match(r"^\s*(?:local)?rule (\w+):", line)
        if start:
            if rule is not None:
                jobs.add((rule, wildcards))
            rule, wildcards = start.group(1), frozenset()
        elif rule is not None and (match := re.match(r"^\s*wildcards: (.*)$", line)):
            wildcards = frozenset(tuple(w.split("=", 1)) for w in match.group(1).split(", "))
    return jobs


def edit_config(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(workdir: Path) -> None:
        config = copy.deepcopy(TINY)
        change(config)
        (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))

    return apply


def append_to(relative: str, text: str) -> Callable[[Path], None]:
    def apply(workdir: Path) -> None:
        path = workdir / relative
        path.write_text(path.read_text() + text)

    return apply


def replace_in(relative: str, old: str, new: str) -> Callable[[Path], None]:
    def apply(workdir: Path) -> None:
        path = workdir / relative
        assert old in path.read_text(), (relative, old)
        path.write_text(path.read_text().replace(old, new))

    return apply


def swap_lines(relative: str, first: str, second: str) -> Callable[[Path], None]:
    """Swap the lines of ``relative`` that start with ``first`` and ``second`` (a reordering, no new value)."""

    def apply(workdir: Path) -> None:
        path = workdir / relative
        lines = path.read_text().splitlines(keepends=True)
        i, j = (next(k for k, line in enumerate(lines) if line.startswith(p)) for p in (first, second))
        lines[i], lines[j] = lines[j], lines[i]
        path.write_text("".join(lines))

    return apply


def move_to_second_configfile(section: str) -> Callable[[Path], None]:
    """Take ``section`` out of tiny.yaml into second.yaml, given after it on the command line."""

    def apply(workdir: Path) -> None:
        config = copy.deepcopy(TINY)
        moved = {section: config.pop(section)}
        (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))
        (workdir / "second.yaml").write_text(yaml.safe_dump(moved))

    return apply


def restate_defaults(section: str) -> Callable[[Path], None]:
    """A third config file restating the run's ``section`` (config.yaml's, with tiny.yaml's values over it), its
    keys in reverse order (as a preset may)."""

    def apply(workdir: Path) -> None:
        defaults = {**yaml.safe_load((workdir / "config.yaml").read_text())[section], **TINY.get(section, {})}
        restated = {section: dict(reversed(list(defaults.items())))}
        (workdir / "second.yaml").write_text(yaml.safe_dump(restated, sort_keys=False))

    return apply


EXTERNAL_RULES = ("extract_external_features", "collapse_metrics", "ood_scores", "ood_metrics", "ood_trajectory")


def add_external_model(workdir: Path) -> None:
    """An nclab network for the digits saved elsewhere, added to the study as a model trained elsewhere."""
    from external_checkpoints import save_nclab_checkpoint

    save_nclab_checkpoint(workdir / "elsewhere" / "digits.pt", in_channels=1)
    model = {
        "architecture": "nclab.resnet18",
        "width": 4,
        "num_classes": 10,
        "checkpoints": "elsewhere/digits.pt",
        "image_size": 8,
        "mean": [0.3],
        "std": [0.4],
    }
    edit_config(lambda c: c.update(studies=["balanced", "longtail", "external"], external={"models": {"net": model}}))(
        workdir
    )


@dataclass(frozen=True)
class Case:
    change: str  # as docs/reruns.md states it
    apply: Callable[[Path], None]
    expected: set[Job]
    args: tuple[str, ...] = ()  # snakemake's arguments besides `--configfile tiny.yaml -n`


def _set(section: str, key: str, value: object) -> Callable[[dict], None]:
    return lambda c: c.setdefault(section, {}).update({key: value})


CASES = [
    Case(
        "one detector's hyperparameter (`ood.hyperparameters.vim.dim`)",
        edit_config(lambda c: c["ood"]["hyperparameters"]["vim"].update(dim=12)),
        {
            job(rule, run=s, seed=seed)
            for s, seed in RUNS + LT_RUNS
            for rule in ("ood_scores", "ood_metrics", "ood_trajectory")
        }
        | figures("roc", "histograms", "detector_families", "ood_over_training", "collapse_vs_auroc")
        | REPORT
        | LT_REPORT,
    ),
    Case(
        "one figure's option (`figures.histograms.bins`)",
        edit_config(_set("figures", "histograms", {"bins": 30})),
        figures("histograms") | {job("paper"), job("all")},
    ),
    Case(
        "the figure style (`figures.style.font_size`)",
        edit_config(_set("figures", "style", {"font_size": 9})),
        figures(*FIGURES, *LT_FIGURES) | {job("paper"), job("all")},
    ),
    Case(
        "the paper's LaTeX text (`paper/paper.tex`)",
        append_to("paper/paper.tex", "\n% an edit\n"),
        {job("paper"), job("all")},
    ),
    Case(
        "a published number (a row of `paper/published_results.csv`)",
        append_to(
            "paper/published_results.csv",
            "cao2019ldam,an added row,cifar10,resnet32,200,100,,balanced_softmax,top1,80.0,\n",
        ),
        REPORT | LT_REPORT,
    ),
    Case(
        "one schedule's recipe (`schedules.extended.milestones`)",
        edit_config(lambda c: c["schedules"]["extended"].update(milestones=[0.5])),
        balanced_run_jobs("extended", "0") | figures(*FIGURES) | REPORT,
    ),
    Case(
        "a training hyperparameter shared by all runs (`training.weight_decay`)",
        edit_config(_set("training", "weight_decay", 1e-3)),
        EVERY_RUN,
    ),
    Case(
        "one alignment strategy's option (`longtail.alignment.proj.gamma`)",
        edit_config(lambda c: c["longtail"].update(alignment={"momentum": 0.9, "proj": {"gamma": 0.5}})),
        lt_run_jobs("proj") | figures(*LT_FIGURES) | LT_REPORT,
    ),
    Case(
        "a cluster job size (`cluster.mem_mb`: resources, not params)",
        edit_config(_set("cluster", "mem_mb", 9000)),
        set(),
    ),
    Case(
        "the code of one stage (`src/nclab/collapse.py`)",
        append_to("src/nclab/collapse.py", "\n# an edit\n"),
        {job(rule, run=s, seed=seed) for s, seed in RUNS + LT_RUNS for rule in ("collapse_metrics", "ood_trajectory")}
        | figures("collapse_progression", "ncc_agreement", "nc5", "ood_over_training", "collapse_vs_auroc", *LT_FIGURES)
        | REPORT
        | LT_REPORT,
    ),
    Case(
        "a score's display name (`src/nclab/names.py`: MaxLogit)",
        replace_in("src/nclab/names.py", '"MaxLogit"', '"Max-Logit"'),
        figures(*FIGURES, *LT_FIGURES) | REPORT | LT_REPORT,
    ),
    Case(
        "a strategy's display name (`src/nclab/names.py`: SpA-Proj)",
        replace_in("src/nclab/names.py", '"SpA-Proj"', '"SpA-Projection"'),
        figures(*FIGURES, *LT_FIGURES) | REPORT | LT_REPORT,
    ),
    Case(
        "an HTML-report caption (`report/figure.rst`)",
        replace_in("report/figure.rst", "one line per schedule", "one line for each schedule"),
        set(),
    ),
    Case("the training code (`src/nclab/training.py`)", append_to("src/nclab/training.py", "\n# an edit\n"), EVERY_RUN),
    Case(
        "a model trained elsewhere added (`studies`, `external.models`)",
        add_external_model,
        {job(rule, run="external/net", seed="0") for rule in EXTERNAL_RULES}
        | {job("external_tables_and_macros"), job("paper"), job("all")}
        | tables("external"),
    ),
    Case(
        "the configuration's name (`name`: another results root, empty)",
        edit_config(lambda c: c.update(name="tiny-copy")),
        EVERY_RUN
        | {job("prepare_id", dataset="digits"), job("prepare_longtail", ratio="5")}
        | {job("prepare_ood", ood=ood) for ood in ("photos", "noise")},
    ),
    Case(
        "config.yaml reordered (`training.lr` and `training.momentum` lines swapped)",
        swap_lines("config.yaml", "  lr:", "  momentum:"),
        set(),
    ),
    Case(
        "a section moved to a second `--configfile` (`longtail`)",
        move_to_second_configfile("longtail"),
        set(),
        ("--configfile", "tiny.yaml", "second.yaml"),
    ),
    Case(
        "a config file that restates the defaults in another order (`training`)",
        restate_defaults("training"),
        set(),
        ("--configfile", "tiny.yaml", "second.yaml"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.change for c in CASES])
def test_a_change_reruns_exactly_what_depends_on_it(workflow, case):
    """Each edit a user makes (docs/reruns.md's table) reruns exactly the jobs that depend on it, no more, no
    less: the first case pays for the tiny workflow run the workflow tests share."""
    edited = (
        "tiny.yaml",
        "config.yaml",
        "paper/paper.tex",
        "paper/published_results.csv",
        "src/nclab/collapse.py",
        "src/nclab/training.py",
        "src/nclab/names.py",
        "report/figure.rst",
    )
    saved = {workflow / p: (workflow / p).read_text() for p in edited}
    try:
        case.apply(workflow)
        planned = planned_jobs(workflow, *case.args)
    finally:
        for path, text in saved.items():
            path.write_text(text)
        (workflow / "second.yaml").unlink(missing_ok=True)
    assert planned == case.expected, (
        f"unexpected: {sorted(planned - case.expected)}; missing: {sorted(case.expected - planned)}"
    )


def test_undoing_an_edit_leaves_nothing_to_do(workflow):
    assert planned_jobs(workflow) == set()


def _describe(jobs: set[Job]) -> str:
    """`rule` ×count per rule; the figures by name when not all of them rerun."""
    by_rule: dict[str, list[dict]] = {}
    for rule, wildcards in jobs:
        if rule != "all":
            by_rule.setdefault(rule, []).append(dict(wildcards))
    parts = []
    for rule, items in sorted(by_rule.items()):
        part = f"`{rule}`" + (f" ×{len(items)}" if len(items) > 1 else "")
        if rule == "figure" and len(items) < len(FIGURES + LT_FIGURES):
            part += " (" + ", ".join(sorted(w["figure"] for w in items)) + ")"
        parts.append(part)
    return ", ".join(parts) or "nothing"


def rerun_table() -> str:
    lines = [
        "| change | jobs Snakemake reruns (tiny test config: 2 balanced + 2 long-tail runs, every detector) |",
        "|---|---|",
    ]
    lines += [f"| {case.change} | {_describe(case.expected)} |" for case in CASES]
    return "\n".join(lines) + "\n"


def test_the_docs_table_matches_the_tested_cases():
    assert rerun_table() in (ROOT / "docs" / "reruns.md").read_text(), "regenerate with: python tests/test_rebuild.py"


def test_scripts_get_every_value_through_params_or_inputs():
    """A value read from the global config inside a script would not be tracked by Snakemake."""
    for script in (ROOT / "scripts").glob("*.py"):
        assert "snakemake.config" not in script.read_text(), script.name


def test_nothing_executes_code_from_an_artifact():
    """Checkpoints load with weights_only=True, arrays without pickle."""
    for path in (ROOT / "src").rglob("*.py"):
        text = path.read_text()
        assert "weights_only=False" not in text and "allow_pickle=True" not in text, path.name
        assert not re.search(r"torch\.load\((?![^)]*weights_only=True)", text), path.name
        assert "pickle.load" not in text, path.name


def test_the_repository_cites_only_itself():
    """The methods are docs/methods.md; nothing points outside the repository: every Markdown document a file
    names is one of the repository's, and every relative path that climbs (../) names something inside it."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    documents = {name for name in tracked if name.endswith(".md")} | {
        Path(n).name for n in tracked if n.endswith(".md")
    }
    for name in tracked:
        path = ROOT / name
        if path.suffix in {".py", ".md", ".yaml", ".smk", ".tex", ".sh", ".bib"} or path.name in {
            "Snakefile",
            "Makefile",
        }:
            text = path.read_text()
            for cited in re.findall(r"[\w./-]*\w\.md\b", text):
                assert cited in documents, f"{name} cites {cited}, which is not in the repository"
            for climb in re.findall(r"(?<![\w.])(?:\.\./)+[\w.-]*", text):
                target = (path.parent / climb).resolve()
                assert target.is_relative_to(ROOT) and target.exists(), f"{name} points outside the repository: {climb}"


if __name__ == "__main__":
    print(rerun_table(), end="")
