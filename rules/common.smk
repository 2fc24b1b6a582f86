# Helpers shared by the rule modules: run layout, per-rule parameters, code dependencies.

import os

# Jobs import the nclab package from src/ (also on cluster nodes, which inherit the environment).
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(Path(workflow.basedir) / "src"), os.environ.get("PYTHONPATH")) if p
)

DATASET = config["data"]["dataset"]
OOD_SETS = list(config["data"]["ood_sets"])
SCORES = list(config["ood"]["scores"])
SCHEDULES = list(config["schedules"])
SEEDS = config["training"]["seeds"]
RUN = "results/runs/{schedule}/seed{seed}"


wildcard_constraints:
    schedule="|".join(SCHEDULES),
    seed=r"\d+",
    dataset=DATASET,
    epoch=r"\d+",
    method="|".join(SCORES),
    ood="|".join(OOD_SETS),


def code(*modules):
    """The nclab modules a rule's script imports: Snakemake does not track imports, so they are inputs."""
    return [f"src/nclab/{m}.py" for m in ("__init__", "io", *modules)]


def checkpoint_epochs(schedule):
    spec = config["schedules"][schedule]
    return sorted(set(spec["checkpoints"]) | {spec["epochs"]})


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
