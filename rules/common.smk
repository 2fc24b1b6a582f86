# Helpers shared by the workflow modules (run layout, per-job parameters, code dependencies).

from nclab.data import IMAGE_SIZES
from nclab.models import feature_dim
from nclab.training import checkpoint_schedule

DATASET = config["data"]["dataset"]
OOD_SETS = list(config["data"]["ood_sets"])
SCORES = list(config["ood"]["scores"])
SCHEDULES = list(config["schedules"])
SEEDS = config["training"]["seeds"]
RUN_ID = "runs/{schedule}/seed{seed}"
RUN = f"results/{RUN_ID}"
FIRST_SEED = SEEDS[0]  # figures of single runs (ROC, histograms, t-SNE) show the first seed


def code(*modules):
    """The nclab modules a job's script imports, as inputs (Snakemake does not track imports)."""
    return [f"src/nclab/{m}.py" for m in ("__init__", "io", *modules)]


def checkpoint_epochs(schedule):
    spec = config["schedules"][schedule]
    return checkpoint_schedule(spec["epochs"], spec["checkpoints"])


def final_epoch(schedule):
    return config["schedules"][schedule]["epochs"]


def run_dir(wildcards):
    return RUN.format(schedule=wildcards.schedule, seed=wildcards.seed)


def run_dirs():
    return expand(RUN, schedule=SCHEDULES, seed=SEEDS)


def run_files(pattern):
    """``pattern`` (relative to a run folder) for every schedule and seed."""
    return [f"{run}/{pattern}" for run in run_dirs()]


def recipe(schedule, seed):
    """Everything the training of one run depends on (its params: a change reruns it, and only it)."""
    spec = config["schedules"][schedule]
    training = {k: v for k, v in config["training"].items() if k != "seeds"}
    return {
        **training,
        "seed": seed,
        "scheduler": spec["scheduler"],
        "epochs": spec["epochs"],
        "milestones": spec.get("milestones", []),
        "checkpoints": checkpoint_epochs(schedule),
    }


def first_seed_scores(methods):
    return [f"results/runs/{s}/seed{FIRST_SEED}/ood/scores/{m}.npz" for s in SCHEDULES for m in methods]
