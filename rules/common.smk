# Helpers shared by the workflow modules (run layout, per-job parameters, code dependencies).

import math
import sys
from pathlib import Path

from nclab.contents import (
    FIGURES as FIGURE_TABLE,
    FIRST_SEED_SOURCES,
    SOURCES,
    STUDY_TITLES,
    TABLES,
    part_runs,
    study_figures,
    study_tables,
)
from nclab.data import (
    FOLDER_OOD,
    IMAGENET_LT,
    SYNTHETIC_CIFAR,
    TORCHVISION_SETS,
    image_format,
    image_size,
    imagenet_lt_lists,
    needs_root,
)
from nclab.ood import SCORES as DETECTORS
from nclab.plan import TRAJECTORY_MEASURES, feature_dim, nclab_imports
from nclab.runs import run_table
from nclab.slurm_compat import run_group

DATASET = config["data"]["dataset"]
PUBLISHED = "paper/published_results.csv"  # published numbers set beside ours (docs/methods.md, section 6)


def skipped_ood_sets():
    """The configured optional folder OOD sets whose folder is absent, with the reason (warned here, and named in
    the paper and the HTML report)."""
    skipped = {}
    for name in config["data"]["ood_sets"]:
        folder = config["data"]["folders"].get(name)
        if name in FOLDER_OOD and not Path(folder).is_dir():
            skipped[name] = f"folder {folder} not found"
            print(f"nclab: optional OOD set {name!r} skipped: {skipped[name]}", file=sys.stderr)
    return skipped


STUDIES = config["studies"]
DEPTH = config["layers"]["enabled"] and "balanced" in STUDIES  # the paper's depth part: the balanced runs' layers
PARTS = [*STUDIES, *(["depth"] if DEPTH else [])]  # the paper's parts (nclab.contents.STUDY_TITLES)
SKIPPED_OOD_SETS = skipped_ood_sets()
OOD_SETS = [name for name in config["data"]["ood_sets"] if name not in SKIPPED_OOD_SETS]
METHODS = config["ood"]["methods"]  # the detectors, in the order of the tables
DETECTOR_HYPERPARAMETERS = {m: config["ood"]["hyperparameters"].get(m, {}) for m in METHODS}  # a job's params
DETECTOR_FAMILIES = {m: DETECTORS[m].family for m in METHODS}  # params of the figures and tables that group them


def among_methods(listed):
    """The detectors of ``listed`` that ood.methods runs (a file that narrows ood.methods narrows these too)."""
    return [m for m in listed if m in METHODS]


HEADLINE_METHODS = among_methods(config["paper"]["headline_methods"])  # the main OOD table, ROC figure
TRAJECTORY = config["ood"]["trajectory"]
TRAJECTORY_HYPERPARAMETERS = {  # the detectors measured at every checkpoint (ood.trajectory.methods: all if null)
    m: DETECTOR_HYPERPARAMETERS[m] for m in (TRAJECTORY["methods"] or METHODS)
}


def trajectory_epochs(wildcards):
    """The checkpoints whose OOD metrics the trajectory holds: every ood.trajectory.every-th, and the last."""
    checkpoints = run_spec(wildcards).checkpoints
    return sorted(set(checkpoints[:: TRAJECTORY["every"]]) | {checkpoints[-1]})


SCHEDULES = list(config["schedules"])
SEEDS = config["training"]["seeds"]
RUN_ID = "runs/{run}/seed{seed}"  # run: an id of the run table (RUNS, below)
RUN = f"{ROOT}/{RUN_ID}"
FIRST_SEED = SEEDS[0]  # figures of single runs (ROC, histograms, t-SNE) show the first seed


GPUS_PER_JOB = 0 if config["training"]["device"] == "cpu" else 1  # training and feature extraction


def memory_mb(key):
    """A job's memory: cluster.``key`` (mem_mb for GPU jobs, cpu_mem_mb for CPU jobs holding a dataset or a
    dump), multiplied by the attempt."""
    return lambda wildcards, attempt: config["cluster"][key] * attempt


def train_priority(wildcards):
    """A training job's priority: its epochs, so that the longest runs start first and the cores finish their
    training together, with the analysis jobs filling the gaps (Snakemake prefers higher priorities)."""
    return run_spec(wildcards).final_epoch


def train_minutes(wildcards, attempt):
    """Time limit of a training job: the run's epochs at cluster.seconds_per_epoch, more on a retry."""
    epochs = run_spec(wildcards).final_epoch
    return (10 + math.ceil(epochs * config["cluster"]["seconds_per_epoch"] / 60)) * attempt


def raw_manifest(name):
    """The fetch rule's manifest of ``name``'s verified raw files, for datasets read from the data root.

    Marked ancient: pointing data.root at another verified copy re-runs the check, not the study.
    """
    return [ancient(f"{ROOT}/data/raw/{name}.json")] if needs_root(name) else []


def id_split(dataset):
    """How the in-distribution set is split (or generated): the digits' stratified split, synthetic_cifar's
    construction, or the dataset's official split."""
    if dataset == "digits":
        return {"test_fraction": config["data"]["test_fraction"], "seed": config["data"]["split_seed"]}
    if dataset == SYNTHETIC_CIFAR:
        return {**config["data"]["synthetic"][SYNTHETIC_CIFAR], "seed": config["data"]["split_seed"]}
    return "official"


def imagenet_lt_spec():
    """What ImageNet-LT's arrays depend on besides its split lists: ImageNet's folder and the image size
    (empty for the other datasets)."""
    return config["data"].get("imagenet_lt", {}) if DATASET == IMAGENET_LT else {}


def imagenet_lt_inputs():
    """ImageNet-LT's three split lists (a changed list rebuilds the arrays); the ImageNet images are not
    inputs: 1.3 million files would slow every DAG build."""
    return (
        list(map(str, imagenet_lt_lists(config["data"]["imagenet_lt"]["lists"]).values())) if imagenet_lt_spec() else []
    )


def code(script):
    """The nclab modules that scripts/``script``.py imports, directly or not, as inputs: Snakemake does not track
    imports, so this is how a change to a module reruns exactly the jobs whose code it is."""
    modules = nclab_imports(Path(workflow.basedir) / "scripts" / f"{script}.py", Path(SRC) / "nclab")
    return [f"src/nclab/{m}.py" for m in ("__init__", *modules)]


# The runs of both studies, one entry each (nclab.runs): training, features and the per-run analysis of a run
# read its entry through the `run` wildcard ("standard", "longtail/ir10/ce/proj").
LT = config["longtail"]
LT_DATA = f"{ROOT}/data/longtail/{DATASET}/{LT['profile']}-ir{{ratio}}-seed{LT['subset_seed']}.npz"
RUNS = run_table(config, f"{ROOT}/data/{DATASET}.npz", LT_DATA)
LT_RUNS = [run for run, spec in RUNS.items() if spec.study == "longtail"]
EXTERNAL = config["external"]["models"] if "external" in STUDIES else {}  # models trained elsewhere, by name
EXTERNAL_RUN_PATTERN = "|".join(re.escape(r) for r, s in RUNS.items() if s.study == "external") or "(?!)"
EXTERNAL_LAYER_RUNS = [  # the models trained elsewhere whose entry names layers: their depth analysis
    r for r, s in RUNS.items() if s.study == "external" and s.model["layers"] and config["layers"]["enabled"]
]
EXTERNAL_LAYER_RUN_PATTERN = "|".join(map(re.escape, EXTERNAL_LAYER_RUNS)) or "(?!)"
TRAINED_RUN_PATTERN = "|".join(re.escape(r) for r, s in RUNS.items() if s.study != "external") or "(?!)"
LT_RATIOS = sorted({f"{RUNS[run].keys['ratio']:g}" for run in LT_RUNS}, key=float)  # as named in paths


def run_spec(wildcards):
    return RUNS[wildcards.run]


def external_network(wildcards):
    """A model trained elsewhere as its jobs depend on it: its entry without the description (quoted by the paper
    only) and the layers (the depth analysis's alone)."""
    return {k: v for k, v in run_spec(wildcards).model.items() if k not in ("description", "layers")}


def analysis_group(wildcards):
    """One group per run for its CPU analysis (OOD scores and metrics, collapse tables): one submission on a
    cluster (profiles/slurm merges its two unconnected parts, `group-components: analysis=2`); local runs ignore
    groups."""
    return run_group(workflow, "analysis", f"{wildcards.run}/seed{wildcards.seed}")


def run_files(pattern, study="balanced"):
    """``pattern`` (relative to a run folder) for every run and seed of ``study``."""
    return [
        f"{RUN.format(run=run, seed=seed)}/{pattern}"
        for run, spec in RUNS.items()
        if spec.study == study
        for seed in spec.seeds
    ]


def figure_options(name):
    """The configured values figure ``name`` depends on (its table entry's options): the study's schedules, OOD
    sets, headline detectors (every detector and its family for the families figure), losses and strategies,
    with the figure's own section of `figures` (if any) over them."""
    shared = {
        "schedules": SCHEDULES,
        "ood_sets": OOD_SETS,
        "methods": HEADLINE_METHODS,
        "families": DETECTOR_FAMILIES,
        "headline_ood": config["paper"]["headline_ood"],
        "losses": LT["losses"],
        "strategies": LT["strategies"],
    }
    values = {**shared, **config["figures"].get(name, {})}
    values["methods"] = among_methods(values["methods"])
    return {key: values[key] for key in FIGURE_TABLE[name].options}


def figure_inputs(wildcards):
    """The files figure ``wildcards.figure`` draws, named: its source in every run of its study ("run/seedN"), or,
    for arrays, in the first seed of each schedule (OOD scores: "schedule/method"; t-SNE: "schedule")."""
    spec = FIGURE_TABLE[wildcards.figure]
    pattern = SOURCES[spec.source]
    if spec.source == "scores":
        methods = figure_options(wildcards.figure)["methods"]
        return {
            f"{s}/{m}": f"{RUN.format(run=s, seed=FIRST_SEED)}/{pattern.format(method=m)}"
            for s in SCHEDULES
            for m in methods
        }
    if spec.source in FIRST_SEED_SOURCES:
        return {s: f"{RUN.format(run=s, seed=FIRST_SEED)}/{pattern}" for s in SCHEDULES}
    return {
        f"{run}/seed{seed}": f"{RUN.format(run=run, seed=seed)}/{pattern}"
        for run, spec in RUNS.items()
        if spec.study == part_runs(FIGURE_TABLE[wildcards.figure].study)
        for seed in spec.seeds
    }


def paper_inputs():
    """The generated files the paper includes: those of its parts, the studies listed in `studies` and the depth
    analysis of the balanced runs where `layers` is enabled (nclab.contents)."""
    inputs = []
    for study in PARTS:
        macros = "macros.tex" if study == "balanced" else f"{study}/macros.tex"
        inputs += [f"paper/{study}.tex", f"{ROOT}/report/{macros}"]
        inputs += [f"{ROOT}/report/{table}.tex" for table in study_tables(study)]
        inputs += [f"{ROOT}/report/figures/{name}.pdf" for name in study_figures(study)]
    return inputs


def typeset_tables():
    """Every table of the paper typeset on its own (a PDF per table) for Snakemake's HTML report."""
    return [f"{ROOT}/report/{table}.pdf" for study in PARTS for table in study_tables(study)]
