"""Config validation messages and the report's formatting of numbers."""

import copy
import inspect
import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scratch import stub_local_data

from nclab import depth, ood, published, relation, report, report_depth, report_external, report_longtail
from nclab.config import ConfigError, canonical, make_canonical, validate
from nclab.data import image_size
from nclab.plan import nclab_imports
from nclab.runs import final_epochs, run_table

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "config.schema.yaml"
SCHEMA_DOC = yaml.safe_load(SCHEMA.read_text())
DEFAULT = yaml.safe_load((ROOT / "config.yaml").read_text())


def test_default_config_is_valid():
    validate(copy.deepcopy(DEFAULT), SCHEMA)


@pytest.mark.parametrize(
    "edit,message",
    [
        (
            lambda c: c["data"].update(dataset="imagenet"),
            r"data.dataset: 'imagenet' is not allowed; allowed: "
            r"\['digits', 'mnist', 'fashionmnist', 'kmnist', 'cifar10', 'cifar100', 'imagenet_lt', 'synthetic_cifar'\]",
        ),
        (
            lambda c: c["data"].update(dataset="cifar100", ood_sets=["svhn"]),
            r"data.root: required by \['cifar100', 'svhn'\]",
        ),
        (
            lambda c: c["data"].update(ood_sets=["photos", "svhn"], root="raw"),
            r"data.ood_sets: 'svhn' does not match the format of 'digits'; allowed: \['photos', 'noise'\]",
        ),
        (
            lambda c: c["data"].update(dataset="cifar10", root="raw", ood_sets=["cifar10", "tinyimagenet"]),
            r"(?s)'cifar10' is the in-distribution dataset.*data.folders.tinyimagenet: required",
        ),
        (
            lambda c: c["data"].update(ood_sets=["photos", "places"]),
            r"data.ood_sets.1: 'places' is not allowed; allowed: \[",
        ),
        (
            lambda c: c["training"].update(device="tpu"),
            r"training.device: 'tpu' is not allowed; allowed: \['auto', 'cpu', 'cuda'\]",
        ),
        (
            lambda c: c["ood"].update(methods=["msp", "odin"]),
            r"ood.methods.1: 'odin' is not allowed; allowed: \['msp', 'maxlogit'",
        ),
        (
            lambda c: c["ood"]["hyperparameters"].update(odin={}),
            r"ood.hyperparameters: unknown keys \['odin'\]; allowed: \['ash_b', 'ash_p'",
        ),
        (
            lambda c: c["ood"].update(methods=["entropy", "gen"]),
            r"paper.headline_methods: none of \['msp', 'maxlogit', .*\] is among ood.methods \['entropy', 'gen'\]",
        ),
        (
            lambda c: c["ood"]["hyperparameters"].update(react={"percentile": 100}),
            r"ood.hyperparameters.react.percentile: 100 is greater than or equal to the maximum of 100",
        ),
        (
            lambda c: c["ood"]["hyperparameters"].update(dice={"percentile": 0}),
            r"ood.hyperparameters.dice.percentile: 0 is less than or equal to the minimum of 0",
        ),
        (
            lambda c: c["ood"]["hyperparameters"].update(gen={"top_m": 100}),
            r"ood.hyperparameters.gen.top_m: 100 must be an integer in 1..10 \(the class count\)",
        ),
        (
            lambda c: c["schedules"]["standard"].update(epochs=0),
            r"schedules.standard.epochs: 0 is less than the minimum",
        ),
        (
            lambda c: c["schedules"]["standard"].update(epochs="ten"),
            r"schedules.standard.epochs: 'ten' is not of type 'integer'",
        ),
        (
            lambda c: c["training"].update(lr_warmup=5),
            r"training: unknown keys \['lr_warmup'\]; allowed: \['batch_size'",
        ),
        (
            lambda c: c["schedules"]["standard"].update(checkpoints=[50]),
            r"schedules.standard.checkpoints: epochs \[50\] are beyond",
        ),
        (
            lambda c: c["ood"]["hyperparameters"]["vim"].update(dim=64),
            r"ood.hyperparameters.vim.dim: 64 must be an integer in 1..31 \(feature dimension 32",
        ),
        (
            lambda c: c["ood"]["hyperparameters"].update(knn={"kk": 3}),
            r"ood.hyperparameters.knn: unknown keys \['kk'\]; allowed: \['k'\]",
        ),
        (lambda c: c["paper"].update(headline_ood="svhn"), r"paper.headline_ood: 'svhn' is not among data.ood_sets"),
        (lambda c: c["longtail"].update(ratios=[10, 0.5]), r"longtail.ratios.1: 0.5 is less than the minimum of 1"),
        (
            lambda c: c["longtail"].update(losses=["ce", "focal"]),
            r"longtail.losses.1: 'focal' is not allowed; allowed: \['ce'",
        ),
        (
            lambda c: c["longtail"]["alignment"].update(proj={"gama": 0.6}),
            r"longtail.alignment.proj: unknown keys \['gama'\]",
        ),
        (
            lambda c: c["longtail"].update(losses=["etf"], strategies=["proj"]),
            r"longtail.strategies: no strategy applies",
        ),
        (
            lambda c: c["longtail"]["model"].update(width=2),
            r"ood.hyperparameters.vim.dim: 16 must be an integer in 1..7",
        ),
        (
            lambda c: c["longtail"]["schedule"].update(warmup_epochs=0),
            r"longtail.schedule.warmup_epochs: scheduler 'warmup_multistep' needs",
        ),
        (
            lambda c: c["longtail"]["shot_thresholds"].update(few=80),
            r"longtail.shot_thresholds: few \(80\) must not exceed many",
        ),
    ],
)
def test_broken_configs_name_the_key(edit, message):
    config = copy.deepcopy(DEFAULT)
    edit(config)
    with pytest.raises(ConfigError, match=message):
        validate(config, SCHEMA)


def test_macro_names_are_tex_command_names():
    assert report.macro_name("extended", "Auroc", "max_logit") == "ExtendedAurocMaxLogit"
    assert report.macro_name("run2", "nc1") == "RunTwoNcOne"


def test_nan_never_reaches_the_paper():
    with pytest.raises(ValueError, match="non-finite"):
        report.fmt(math.nan)
    with pytest.raises(ValueError, match="non-finite"):
        report.fmt_sci(math.inf)


def test_auroc_table_bolds_the_best_and_reports_seed_spread():
    metrics = pd.DataFrame(
        {
            "schedule": ["standard"] * 4,
            "seed": [0, 1, 0, 1],
            "method": ["msp", "msp", "energy", "energy"],
            "ood": ["photos"] * 4,
            "auroc": [0.80, 0.82, 0.90, 0.94],
        }
    )
    table = report.ood_auroc_table(metrics, ["standard"], ["photos"], ["msp", "energy"])
    assert r"Energy & \textbf{92.0 $\pm$ 2.8}" in table
    assert "MSP & 81.0 $\\pm$ 1.4" in table
    assert report.mean_std(np.array([0.5]), 100) == "50.0"


def fake_tables(config):
    """Measured-looking tables for every run of ``config`` (the shapes the workflow writes)."""
    rng = np.random.default_rng(0)
    ood_sets, seeds = config["data"]["ood_sets"], config["training"]["seeds"]
    collapse, history, metrics = [], [], []
    for schedule, spec in config["schedules"].items():
        for seed in seeds:
            for epoch in sorted(set(spec["checkpoints"]) | {spec["epochs"]}):
                row = {"schedule": schedule, "seed": seed, "epoch": epoch, "network_accuracy_train": 1.0}
                for column, _, _ in report.COLLAPSE_ROWS:
                    row[column] = rng.uniform(0.01, 0.99)
                row.update({f"nc5{c}_{o}": rng.uniform() for o in ood_sets for c in ("", "_centred")})
                collapse.append(row)
            history += [
                {"schedule": schedule, "seed": seed, "epoch": e, "train_loss": rng.uniform()}
                for e in range(1, spec["epochs"] + 1)
            ]
            metrics += [
                {"schedule": schedule, "seed": seed, "method": m, "ood": o, "auroc": rng.uniform()}
                for m in config["ood"]["methods"]
                for o in ood_sets
            ]
    return pd.DataFrame(history), pd.DataFrame(collapse), pd.DataFrame(metrics)


GPU_SETUP = {
    "device": "cuda",
    "device_name": "NVIDIA H100 80GB HBM3",
    "precision": "bf16 autocast",
    "compile": True,
    "channels_last": True,
    "torch": "2.13.0+cu128",
    "threads": 1,
}
CPU_SETUP = {
    "device": "cpu",
    "device_name": "AMD EPYC 7B13 & co_",
    "precision": "fp32",
    "compile": False,
    "channels_last": False,
    "torch": "2.13.0+cpu",
    "threads": 1,
}


def test_the_paper_states_where_the_runs_were_computed():
    assert report.compute_sentence([GPU_SETUP] * 3) == (
        "Training ran on one NVIDIA H100 80GB HBM3 GPU (bf16 autocast, channels-last tensors, torch.compile), with "
        "PyTorch 2.13.0+cu128; features were extracted in fp32 on the same device"
    )
    mixed = report.compute_sentence([GPU_SETUP, CPU_SETUP, CPU_SETUP])
    assert r"the CPU (AMD EPYC 7B13 \& co\_, 1 thread, fp32) (2 runs)" in mixed and "GPU (bf16 autocast" in mixed
    assert "PyTorch 2.13.0+cpu, 2.13.0+cu128" in mixed


CONFIG_FILES = [
    "config.yaml",
    "tests/tiny.yaml",
    *sorted(f"presets/{p.name}" for p in (ROOT / "presets").glob("*.yaml")),
]


@pytest.mark.parametrize("config_file", CONFIG_FILES)
def test_every_macro_the_paper_uses_is_defined(config_file, tmp_path, monkeypatch):
    """The paper compiles for the miniature, the tiny study and every preset: each command it cites gets a value,
    and each TeX conditional it tests (``\\ifLTLossEtf``) is defined as one."""
    config = merge(DEFAULT, yaml.safe_load((ROOT / config_file).read_text()))  # as Snakemake merges config files
    monkeypatch.chdir(tmp_path)  # the local data and checkpoints it names, relative to the working directory
    stub_local_data(tmp_path, config)
    validate(config, SCHEMA)
    used = {
        study: set(re.findall(r"\\([A-Z][A-Za-z]+)", (ROOT / "paper" / f"{study}.tex").read_text()))
        for study in ("balanced", "depth", "longtail", "external")
    }
    used["paper"] = set(re.findall(r"\\([A-Z][A-Za-z]+)", (ROOT / "paper" / "paper.tex").read_text()))
    conditionals = {
        study: set(re.findall(r"\\if([A-Z][A-Za-z]+)", (ROOT / "paper" / f"{study}.tex").read_text()))
        for study in ("balanced", "longtail", "paper")
    }
    defined = set()
    if "longtail" in config["studies"]:
        longtail = fake_longtail_macros(config)
        defined |= set(longtail)
        assert used["longtail"] - {"Cref", "Citet", "Delta", "Sigma"} <= defined
        assert conditionals["longtail"] <= {name for name, value in longtail.items() if isinstance(value, bool)}
        assert {m for m in used["paper"] if m.startswith("LT")} <= defined
    if "external" in config["studies"]:
        defined |= set(fake_external_macros(config))
        assert used["external"] - {"FloatBarrier"} <= defined
        assert {m for m in used["paper"] if m.startswith("Ext") and not m.startswith("Extended")} <= defined
    if "balanced" not in config["studies"]:
        return
    history, collapse, metrics = fake_tables(config)
    settings = {
        **{k: v for k, v in config["training"].items() if k != "seeds"},
        "width": config["model"]["width"],
        "feature_dim": 8 * config["model"]["width"],
        "schedule_specs": config["schedules"],
        "ood_hyperparameters": {m: config["ood"]["hyperparameters"].get(m, {}) for m in config["ood"]["methods"]},
        "methods": config["ood"]["methods"],
        "families": {m: ood.SCORES[m].family for m in config["ood"]["methods"]},
        "headline_methods": config["paper"]["headline_methods"],
        "dataset": config["data"]["dataset"],
        "arch": config["model"]["arch"],
        "num_classes": 10,
        "train_size": 50_000,
        "test_size": 10_000,
        "ood_sizes": {o: 1000 for o in config["data"]["ood_sets"]},
        "skipped_ood_sets": {},
        "headline_ood": config["paper"]["headline_ood"],
        "schedules": list(config["schedules"]),
        "compute": [CPU_SETUP],
    }
    macros = report.paper_macros(history, collapse, metrics, settings)
    trajectory = fake_trajectory(collapse, config["ood"]["methods"], config["data"]["ood_sets"])
    macros |= report.relation_macros(
        relation.relation(trajectory, ["schedule"], relation.MEASURES, settings["headline_ood"])
    )
    assert used["balanced"] - {"Cref", "Sigma"} <= set(macros)
    if config["layers"]["enabled"]:  # the depth part of the balanced runs
        assert used["depth"] - {"Cref", "Citet", "FloatBarrier"} <= set(macros) | set(fake_depth_macros(config))
    assert conditionals["balanced"] <= {name for name, value in macros.items() if isinstance(value, bool)}
    # paper.tex reads no macros file in every build: TeX skipping an \if-branch must know every \if in it
    declared = set(re.findall(r"\\newif\\if([A-Za-z]+)", (ROOT / "paper" / "paper.tex").read_text()))
    assert conditionals["paper"] <= declared
    external = {m for m in used["paper"] if m.startswith("Ext") and not m.startswith("Extended")}
    assert {m for m in used["paper"] if not m.startswith("LT")} - external - {"FloatBarrier"} <= set(macros)
    assert "{,}" in report.ood_sets_table(settings["dataset"], settings["ood_sizes"], {})
    collapse_table = report.collapse_table(collapse, settings["schedules"])
    for schedule in settings["schedules"]:  # the text quotes the table at the table's precision
        for name in ("NCOne", "NCThree"):
            assert quoted(macros[report.macro_name(schedule, name, "Final")], collapse_table)


def test_final_epochs_are_each_runs_last_epoch_for_every_seed():
    """Runs of different lengths: each keeps its own last epoch, not the table's."""
    balanced = pd.DataFrame(
        [
            {"schedule": s, "seed": seed, "epoch": e}
            for s, epochs in (("standard", [1, 2, 3]), ("extended", [2, 4]))
            for seed in (0, 1)
            for e in epochs
        ]
    )
    final = final_epochs(balanced, "balanced")
    assert sorted(map(tuple, final[["schedule", "epoch", "seed"]].values)) == [
        ("extended", 4, 0),
        ("extended", 4, 1),
        ("standard", 3, 0),
        ("standard", 3, 1),
    ]
    longtail = pd.DataFrame(
        [
            {"ratio": r, "loss": "ce", "strategy": s, "seed": 0, "epoch": e}
            for r in (10.0, 100.0)
            for s in ("none", "proj")
            for e in (1, 2 if r == 10 else 5)
        ]
    )
    final = final_epochs(longtail, "longtail")
    assert final.groupby("ratio")["epoch"].unique().map(list).to_dict() == {10.0: [2], 100.0: [5]}
    assert len(final) == 4


def fake_external_macros(config: dict) -> dict[str, str]:
    """The external section's macros from made-up metrics of the configured models, OOD sets and detectors."""
    models, methods = list(config["external"]["models"]), config["ood"]["methods"]
    provenance = [
        {"model": m, "architecture": "resnet18", "checkpoints": [{"epoch": 1, "path": "a.pt", "sha256": "0" * 64}]}
        for m in models
    ]
    metrics = pd.DataFrame(
        [
            {"model": m, "method": d, "ood": o, "auroc": 0.7}
            for m in models
            for d in methods
            for o in config["data"]["ood_sets"]
        ]
    )
    settings = {
        "dataset": config["data"]["dataset"],
        "ood_sets": config["data"]["ood_sets"],
        "headline_ood": config["paper"]["headline_ood"],
        "families": {m: ood.SCORES[m].family for m in methods},
    }
    macros = report_external.external_macros(provenance, {m: None for m in models}, metrics, settings)
    return macros | report_external.layers_macros(pd.DataFrame(), settings["headline_ood"], config["layers"]["grid"])


def fake_depth_macros(config: dict) -> dict[str, str | bool]:
    """The depth part's macros from a made-up layers table of the configured schedules, seeds and OOD sets."""
    rng = np.random.default_rng(0)
    rows = [
        {"schedule": s, "seed": seed, "epoch": e, "layer": f"l{d}", "depth": d, "nc1": 4.0 / (d + 1)}
        | {"method": m, "ood": o, "auroc": rng.uniform(0.5, 1), "fpr95": rng.uniform(0, 0.5)}
        for s in config["schedules"]
        for seed in config["training"]["seeds"]
        for e in (1, 2)
        for d in range(5)
        for m in depth.LAYER_DETECTORS
        if e == 2 or m not in config["layers"]["final_only"]
        for o in config["data"]["ood_sets"]
    ]
    layers = pd.DataFrame(rows)
    combined = layers.drop_duplicates(["schedule", "seed", "epoch", "ood"]).assign(
        layer=depth.ALL_LAYERS, depth=5, nc1=np.nan, method=next(iter(depth.COMBINED_DETECTORS))
    )
    layers = pd.concat([layers, combined], ignore_index=True)
    ood_set = config["paper"]["headline_ood"]
    table = report_depth.correlations(layers, ood_set)
    final = relation.depth_relation(final_epochs(table, report_depth.STUDY))
    settings = {"headline_ood": ood_set, "schedules": list(config["schedules"]), "grid": 2, "knn_k": 10}
    return report_depth.depth_macros(layers, table, final, pd.DataFrame(), settings)


def quoted(value: str, table: str) -> bool:
    """Whether ``value`` is a cell of ``table`` (alone or as the mean of 'mean $\\pm$ std'), digit for digit."""
    return re.search(rf"& (\\textbf{{)?{re.escape(value)}( \$\\pm\$| &| \\\\|}})", table) is not None


def fake_longtail_macros(config: dict) -> dict[str, str]:
    """The long-tail macros from random tables shaped like the config's grid."""
    lt, rng = config["longtail"], np.random.default_rng(0)
    rows, classes, ood = [], [], []
    for run in run_table({**config, "studies": ["longtail"]}, "data.npz", "ir{ratio}.npz").values():
        keys = dict(run.keys)
        for seed in run.seeds:
            row = {**keys, "seed": seed, "epoch": lt["schedule"]["epochs"]}
            row.update(
                {
                    k: rng.uniform()
                    for k in (
                        "network_accuracy_test",
                        "nc1",
                        "nc3",
                        "alignment_mean",
                        "nc2_equiangular_classifier",
                        "minority_collapse",
                    )
                }
            )
            row.update(
                {f"{k}_{g}": rng.uniform() for k in ("accuracy", "alignment") for g in ("many", "medium", "few")}
            )
            rows.append(row)
            classes += [
                {**keys, "seed": seed, "class": c, "train_count": 100 - c, "alignment": rng.uniform()}
                for c in range(10)
            ]
            ood += [
                {**keys, "seed": seed, "method": m, "ood": o, "auroc": rng.uniform()}
                for m in config["ood"]["methods"]
                for o in config["data"]["ood_sets"]
            ]
    final, classes, ood = (pd.DataFrame(t) for t in (rows, classes, ood))
    matches = published.longtail_matches(
        published.load(ROOT / "paper" / "published_results.csv"),
        config["data"]["dataset"],
        lt["model"]["arch"],
        [float(r) for r in lt["ratios"]],
        lt["losses"],
    )
    for table in (
        report_longtail.accuracy_table(final, matches),
        report_longtail.geometry_table(final),
        report_longtail.ood_table(ood, config["paper"]["headline_ood"], config["paper"]["headline_methods"]),
    ):
        assert table.count(r"\\") == len(final[report_longtail.KEYS].drop_duplicates()) + 1  # a row per group
    settings = {
        **{k: lt[k] for k in ("profile", "shot_thresholds", "model", "schedule", "losses", "strategies", "alignment")},
        "feature_dim": 64,
        "headline_ood": config["paper"]["headline_ood"],
        "headline_methods": config["paper"]["headline_methods"],
        "dataset": config["data"]["dataset"],
        "num_classes": 10,
        "test_size": 10_000,
        "image_size": image_size(config["data"]),
        "train_sizes": {float(r): 1000 for r in lt["ratios"]},
        "smallest_class": 5,
        "compute": [GPU_SETUP],
    }
    macros = report_longtail.longtail_macros(final, classes, ood, settings, matches)
    if ("none" in lt["strategies"]) and lt["losses"][0] in lt["losses"]:  # the text quotes the tables' digits
        assert quoted(macros["LTBaseAlignFewHigh"], report_longtail.geometry_table(final))
        assert quoted(macros["LTBaseAccHigh"].removesuffix(r"\,\%"), report_longtail.accuracy_table(final, matches))
    trajectory = fake_trajectory(final, config["ood"]["methods"], config["data"]["ood_sets"])
    macros |= report.relation_macros(
        relation.relation(trajectory, report_longtail.KEYS, ["nc1"], settings["headline_ood"]), "LT"
    )
    macros["LTAlignmentAurocSentence"] = report.across_runs_sentence(
        final.assign(alignment_mean=rng.uniform(size=len(final))),
        ood,
        report_longtail.KEYS,
        "alignment_mean",
        "the mean alignment",
        settings["headline_ood"],
        settings["headline_methods"],
    )
    return macros


def fake_trajectory(collapse: pd.DataFrame, methods: list[str], ood_sets: list[str]) -> pd.DataFrame:
    """A trajectory table (ood/trajectory.csv) for every checkpoint row of ``collapse``: random AUROCs and NC
    measures."""
    rng = np.random.default_rng(1)
    rows = []
    for _, checkpoint in collapse.iterrows():
        measures = {m: rng.uniform(0.01, 1) for m in relation.MEASURES if m != "nc5"}
        measures |= {f"nc5_{o}": rng.uniform() for o in ood_sets}
        rows += [
            {**checkpoint.to_dict(), **measures, "method": m, "ood": o, "auroc": rng.uniform()}
            for m in methods
            for o in ood_sets
        ]
    return pd.DataFrame(rows)


def test_code_inputs_are_the_transitive_nclab_imports_of_the_script(tmp_path):
    package = tmp_path / "nclab"
    package.mkdir()
    (package / "a.py").write_text("from nclab.b import thing\n")
    (package / "b.py").write_text("def f():\n    import nclab.c\n")
    (package / "c.py").write_text("import numpy\n")
    (package / "unused.py").write_text("")
    script = tmp_path / "script.py"
    script.write_text("import os\nif os.environ:\n    from nclab import a as alias, missing\n")
    assert nclab_imports(script, package) == ["a", "b", "c"]


def test_every_rule_running_a_script_declares_that_scripts_code():
    """Each rule's `code` input is computed from the script it runs (rules/common.smk: code)."""
    for path in (ROOT / "rules").glob("*.smk"):
        for block in re.split(r"(?m)^(?=rule |use rule )", path.read_text())[1:]:
            script = re.search(r'script:\s+"\.\./scripts/(\w+)\.py"', block)
            if script:
                assert f'code("{script.group(1)}")' in block, (path.name, block[:60])


def test_canonical_config_sorts_named_values_and_keeps_the_presentation_orders():
    config = {
        "training": {"momentum": 0.9, "lr": 0.1},
        "schedules": {"standard": {"epochs": 2, "checkpoints": [3, 1]}, "extended": {}},
        "ood": {"hyperparameters": {"vim": {"dim": 2}, "msp": {}}},
        "data": {"ood_sets": ["b", "a"]},
    }
    result = canonical(config)
    assert list(result) == ["data", "ood", "schedules", "training"] and list(result["training"]) == ["lr", "momentum"]
    assert list(result["schedules"]) == ["standard", "extended"] and list(result["ood"]["hyperparameters"]) == [
        "msp",
        "vim",
    ]
    assert list(result["schedules"]["standard"]) == ["checkpoints", "epochs"]
    assert result["schedules"]["standard"]["checkpoints"] == [3, 1] and result["data"]["ood_sets"] == ["b", "a"]
    assert result == config  # same values
    make_canonical(config)
    assert repr(config) == repr(result)


def merge(base: dict, update: dict) -> dict:
    """``update`` deep-merged into a copy of ``base``, as Snakemake merges --configfile files."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        merged[key] = (
            merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


def leaves(tree: dict, path: tuple = ()):
    """The paths of a config file's values (scalars, lists, empty mappings)."""
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, (*path, key))
        else:
            yield (*path, key)


def wrong_type(value: object) -> object:
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, (int, float)):
        return "1.0"
    if isinstance(value, str):
        return 12  # not [value]: a single path may also be given as a list of paths (external checkpoints)
    if isinstance(value, list):
        return value[0] if value else 1
    return 12  # None or an empty mapping


def mangled(config: dict, path: tuple) -> list[tuple[str, dict, str]]:
    """(what, mangled config, text the refusal must contain) for the value at ``path``."""

    def at(edit) -> dict:
        copied = copy.deepcopy(config)
        parent = copied
        for key in path[:-1]:
            parent = parent[key]
        edit(parent)
        return copied

    key, value, name = path[-1], config, ".".join(map(str, path))
    for part in path:
        value = value[part]
    cases = [
        ("wrong type", at(lambda p: p.update({key: wrong_type(value)})), name),
        ("unknown key beside it", at(lambda p: p.update(zz_unknown=1)), "zz_unknown"),
    ]
    if isinstance(value, (int, float)) and not isinstance(value, bool):  # every number of a config is >= 0
        cases.append(("out of range", at(lambda p: p.update({key: -1})), name))
    return cases


@pytest.mark.parametrize("config_file", CONFIG_FILES)
def test_every_value_of_every_config_is_type_and_range_checked(config_file, tmp_path, monkeypatch):
    """Each value a config file sets, given the wrong type, a negative number or an unknown key beside it, is
    refused before any job runs, with the key named (a bad
    ood.hyperparameters.energy.temperature would otherwise fail only in the OOD-score jobs, after training)."""
    own = yaml.safe_load((ROOT / config_file).read_text())
    config = merge(DEFAULT, own)
    monkeypatch.chdir(tmp_path)
    stub_local_data(tmp_path, config)
    validate(copy.deepcopy(config), SCHEMA)
    passed = []
    for path in leaves(own):
        for what, broken, named in mangled(config, path):
            try:
                validate(broken, SCHEMA)
                passed.append(f"{'.'.join(map(str, path))} ({what})")
            except ConfigError as err:
                assert named in str(err), (path, what, str(err))
    assert not passed, f"accepted: {passed}"


def keyword_options(*functions) -> set[str]:
    """The keyword-only parameters of ``functions``: their hyperparameters, passed by name from the config."""
    return {
        p.name for f in functions if f for p in inspect.signature(f).parameters.values() if p.kind is p.KEYWORD_ONLY
    }


def test_no_computing_job_imports_the_display_names():
    """Renaming a label must replan only figures, tables and the paper: the scripts of data, training, feature,
    collapse and OOD jobs import nclab.names neither directly nor through another module."""
    from nclab.plan import nclab_imports

    drawing = {"figure", "tables", "depth_tables", "longtail_tables", "external_tables"}
    for script in sorted((ROOT / "scripts").glob("*.py")):
        imported = nclab_imports(script, ROOT / "src" / "nclab")
        assert ("names" in imported) == (script.stem in drawing), script.name


def test_every_registry_is_named_as_the_schema_names_it():
    """Each name a config may use (score, loss, strategy, dataset, OOD set, architecture, profile, scheduler) is
    a registry entry of the code with its label, and the schema's list is exactly the registry's."""
    from nclab import alignment, data, longtail, losses, models, names, plan, training

    schema, lt = SCHEMA_DOC["properties"], SCHEMA_DOC["properties"]["longtail"]["properties"]
    assert schema["ood"]["properties"]["methods"]["items"]["enum"] == list(ood.SCORES) == list(names.SCORES)
    assert list(names.SCORE_CITATIONS) == list(ood.SCORES)
    assert list(names.DEPTH_SCORES) == [*depth.LAYER_DETECTORS, *depth.COMBINED_DETECTORS]
    assert set(names.NC_MEASURES) == set(relation.MEASURES)  # the table orders them as relation.MEASURES does
    assert {score.family for score in ood.SCORES.values()} <= set(names.SCORE_FAMILIES)
    assert lt["losses"]["items"]["enum"] == list(losses.LOSSES) == list(names.LOSSES)
    assert lt["strategies"]["items"]["enum"] == list(alignment.STRATEGIES) == list(names.STRATEGIES)
    assert set(plan.LOSS_HEADS) <= set(losses.LOSSES)
    assert schema["data"]["properties"]["dataset"]["enum"] == list(data.ID_DATASETS)
    assert set(data.ID_DATASETS) <= set(names.DATASETS)
    assert schema["data"]["properties"]["ood_sets"]["items"]["enum"] == list(data.OOD_SETS) == list(names.OOD_SETS)
    model = SCHEMA_DOC["$defs"]["model"]["properties"]
    assert model["arch"]["enum"] == list(models.ARCHITECTURES) == [*plan.FEATURES_PER_WIDTH, *plan.FIXED_WIDTHS]
    assert list(names.ARCHITECTURES) == list(models.ARCHITECTURES)
    assert lt["profile"]["enum"] == list(longtail.PROFILES)
    assert lt["model"] == schema["model"] == {"$ref": "#/$defs/model"}
    assert SCHEMA_DOC["$defs"]["schedule"]["properties"]["scheduler"]["enum"] == list(training.SCHEDULERS)


def _options(spec: dict) -> dict:
    spec = SCHEMA_DOC["$defs"][spec["$ref"].split("/")[-1]] if "$ref" in spec else spec
    return spec


@pytest.mark.parametrize("kind", ["ood score", "loss", "strategy"])
def test_each_hyperparameter_is_named_once_with_its_type_range_and_default(kind):
    """The schema states each method's hyperparameters (type, range, and a default unless required) and they are
    exactly its function's keyword-only parameters, which have no default of their own: the schema is the one
    place of every default (the config gets them filled in before any job runs)."""
    from nclab import alignment, losses

    lt = SCHEMA_DOC["properties"]["longtail"]["properties"]
    if kind == "ood score":
        specs = SCHEMA_DOC["properties"]["ood"]["properties"]["hyperparameters"]["properties"]
        functions = {name: [score.fit] for name, score in ood.SCORES.items()}
    elif kind == "loss":
        specs, functions = lt["loss_options"]["properties"], {name: [f] for name, f in losses.LOSSES.items()}
    else:
        specs = {k: v for k, v in lt["alignment"]["properties"].items() if k != "momentum"}
        functions = {name: [s.penalty, s.on_gradient, s.on_step] for name, s in alignment.STRATEGIES.items()}
    assert set(specs) <= set(functions)
    for name, hooks in functions.items():
        spec = _options(specs.get(name, {"properties": {}}))
        assert set(spec.get("properties", {})) == keyword_options(*hooks), name
        for key, option in spec.get("properties", {}).items():
            assert "default" in option or key in spec.get("required", []), f"{name}.{key}: no default"
            assert {"type", "$ref"} & set(option), f"{name}.{key}: no type"
        for hook in filter(None, hooks):
            assert all(
                p.default is p.empty for p in inspect.signature(hook).parameters.values() if p.kind is p.KEYWORD_ONLY
            ), f"{name}: a default outside the schema"


def test_the_schemas_defaults_are_filled_in():
    config = copy.deepcopy(DEFAULT)
    config["ood"]["hyperparameters"].pop("knn", None)
    config["ood"]["hyperparameters"].update(energy={})
    config["longtail"].update(alignment={"momentum": 0.9}, loss_options={})
    validate(config, SCHEMA)
    hyper = config["ood"]["hyperparameters"]
    assert (
        hyper["knn"] == {"k": 50} and hyper["energy"] == {"temperature": 1.0} and hyper["react"] == {"percentile": 90}
    )
    assert config["longtail"]["alignment"]["proj"] == {"gamma": 0.6}
    assert config["longtail"]["loss_options"]["ldam_drw"]["scale"] == 30.0
    assert config["schedules"]["standard"]["milestones"] == [] and config["schedules"]["standard"]["gamma"] == 0.1


def test_sacct_states_with_a_suffix_end_a_job_for_the_slurm_executor(monkeypatch):
    """sacct's 'CANCELLED by 0' is reduced to 'CANCELLED', a state the executor plugin ends a job on."""
    import asyncio
    import types

    from nclab import slurm_compat

    async def query(command, logger):
        return {"1": "CANCELLED by 0", "2": "COMPLETED", "3": "RUNNING", "4": ""}, 0.01

    plugin = types.ModuleType(slurm_compat.PLUGIN)
    plugin.query_job_status = query
    monkeypatch.setitem(sys.modules, slurm_compat.PLUGIN, plugin)
    assert slurm_compat.first_word_states() and slurm_compat.first_word_states()  # installed once
    states, _ = asyncio.run(plugin.query_job_status("sacct ...", None))
    assert states == {"1": "CANCELLED", "2": "COMPLETED", "3": "RUNNING", "4": ""}
    monkeypatch.delitem(sys.modules, slurm_compat.PLUGIN)
    assert not slurm_compat.first_word_states()


def test_the_installed_slurm_plugin_still_queries_states_through_the_wrapped_name():
    """The wrapper replaces the name the plugin's status check calls; a plugin that renamed it would need a
    new look (this test then fails rather than the workaround silently lapsing)."""
    import inspect as inspect_module

    plugin = pytest.importorskip("snakemake_executor_plugin_slurm")
    source = inspect_module.getsource(plugin.Executor.check_active_jobs)
    assert "await query_job_status(" in source and hasattr(plugin, "query_job_status")


def test_run_group_names_one_group_per_run_without_slashes_as_an_instance_of_the_pattern():
    """A group job's name may not hold "/" (its job script is named after it); group-components set for
    "analysis" must apply to every run's group, as Snakemake does for a wildcard pattern."""
    import types

    from nclab import slurm_compat

    workflow = types.SimpleNamespace(parent_groupids={})
    names = [
        slurm_compat.run_group(workflow, "analysis", run)
        for run in ("standard/seed0", "longtail/ir10/ce/proj/seed0", "longtail/ir10/ce/proj/seed1")
    ]
    assert names == [
        "analysis_standard-seed0",
        "analysis_longtail-ir10-ce-proj-seed0",
        "analysis_longtail-ir10-ce-proj-seed1",
    ]
    assert workflow.parent_groupids == dict.fromkeys(names, "analysis")


def test_the_installed_snakemake_still_spans_group_components_through_parent_groupids():
    """run_group registers names in the mapping Snakemake reads for --group-components; a release that renamed
    it would make each run two submissions (this test then fails first)."""
    import inspect as inspect_module

    import snakemake.api  # noqa: F401  (the entry point: it imports the modules below in an order that works)
    from snakemake import dag, workflow

    assert "parent_groupids.get(" in inspect_module.getsource(dag.DAG._update_group_components)
    assert isinstance(workflow.Workflow.parent_groupids, property)


def test_auroc_below_chance_is_counted_as_a_finding_or_named_as_a_sign_error():
    rows = [
        {"schedule": "standard", "seed": seed, "method": method, "ood": ood, "auroc": auroc + 0.01 * seed}
        for seed in (0, 1)
        for method, ood, auroc in (
            ("msp", "svhn", 0.41),
            ("msp", "noise", 0.9),
            ("knn", "svhn", 0.2),
            ("knn", "noise", 0.3),
            ("energy", "svhn", 0.8),
            ("energy", "noise", 0.7),
        )
    ]
    text = report.below_chance_sentence(pd.DataFrame(rows), ["schedule"], "in Table 5")
    assert text.startswith(
        "3 of the 6 mean AUROCs in Table 5 lie below 0.5, against svhn (2) and noise (1), for MSP and KNN:"
    )
    assert "Energy" not in text
    assert text.endswith(
        "KNN is below 0.5 on every OOD set in every setting, with the sign of the published score (tested against "
        "a reference implementation), so this describes these networks."
    )
    # below chance everywhere in one setting only is still a finding, not a sign error
    other = pd.DataFrame(rows).assign(schedule="extended", auroc=0.8)
    both = report.below_chance_sentence(pd.concat([pd.DataFrame(rows), other]), ["schedule"], "in Table 5")
    assert both.startswith("3 of the 12 mean AUROCs") and "published score" not in both
    above = pd.DataFrame(rows).assign(auroc=0.7)
    assert report.below_chance_sentence(above, ["schedule"], "in Table 5") == "No mean AUROC in Table 5 lies below 0.5."


def test_negative_numbers_get_a_true_minus_sign():
    assert report.fmt(-0.5234) == r"\ensuremath{-}0.523" and report.fmt(0.5) == "0.500"
    assert report.fmt(-0.0001) == "0.000"  # no "-0.000"
    assert report.mean_std([-1.0, -3.0]) == r"\ensuremath{-}2.0 $\pm$ 1.4"
    assert report.fmt_sci(-0.25) == r"\ensuremath{-}0.25"


def test_captions_promise_a_spread_only_when_there_are_several_seeds():
    """A caption's 'mean +- std' and 'bands' come from the seed count, never from the LaTeX text."""
    assert not any("\\pm" in (ROOT / "paper" / f).read_text() for f in ("paper.tex", "balanced.tex", "longtail.tex"))
    one, two = report.spread_macros("LT", [3]), report.spread_macros("LT", [1, 0])
    assert one == {"LTSpread": "one seed", "LTBandNote": "", "LTFirstSeedNote": ""}
    assert two["LTSpread"] == r"mean $\pm$ std over 2 seeds" and "bands: their range" in two["LTBandNote"]
    assert two["LTFirstSeedNote"] == ", seed 0"  # a figure of one run names its seed


def test_the_configuration_reference_is_current():
    """docs/configuration.md is generated from the schema: a key added, removed or redescribed shows here."""
    sys.path.insert(0, str(ROOT / "tools"))
    from config_reference import reference

    assert (ROOT / "docs" / "configuration.md").read_text() == reference(), "run: python tools/config_reference.py"


def test_a_second_config_file_narrows_the_detectors():
    """Snakemake merges config files key by key and a list replaces a list: a file that lists only MSP runs MSP
    alone, and the hyperparameters of the others stay available unused."""
    from snakemake.utils import update_config

    config = copy.deepcopy(DEFAULT)
    update_config(config, {"ood": {"methods": ["msp"]}, "figures": {"histograms": {"methods": ["msp"]}}})
    validate(config, SCHEMA)  # the paper's headline detectors are those of paper.headline_methods it runs
    assert config["ood"]["methods"] == ["msp"] and config["ood"]["hyperparameters"]["vim"] == {"dim": 16}


def test_the_detector_table_groups_by_family_and_bolds_the_best_per_column():
    rows = []
    for seed in (0, 1):
        for method, (auroc, fpr) in {"msp": (0.8, 0.5), "knn": (0.9, 0.6), "react": (0.7, 0.3)}.items():
            rows.append(
                {
                    "schedule": "standard",
                    "seed": seed,
                    "method": method,
                    "ood": "photos",
                    "auroc": auroc,
                    "fpr95": fpr,
                    "fpr95_ood": fpr,
                }
            )
    families = {"msp": "logit", "knn": "feature", "react": "shaping"}
    table = report.detectors_table(pd.DataFrame(rows), ["standard"], ["photos"], families)
    lines = table.splitlines()
    order = [next(i for i, line in enumerate(lines) if line.startswith(label)) for label in ("MSP", "KNN", "ReAct")]
    assert order == sorted(order) and r"\textit{activation shaping}" in table
    assert r"KNN & \textbf{90.0 $\pm$ 0.0} & 60.0" in table  # best AUROC: the highest
    assert r"ReAct & 70.0 $\pm$ 0.0 & \textbf{30.0 $\pm$ 0.0}" in table  # best FPR: the lowest
