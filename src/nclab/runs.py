"""The study's runs, one entry each, built from the validated config (torch-free: the Snakefile reads it).

A run is one network trained once per seed: a balanced schedule (``standard``) or a long-tail setting
(``longtail/ir10/ce/proj``: imbalance ratio, loss, alignment strategy); or a model trained elsewhere
(``external/<name>``), analysed from its checkpoints as one seed, 0. Its id names its folder under
``results/<name>/runs`` and is the workflow's ``run`` wildcard; its entry holds everything its training and feature
extraction depend on, and its identity as table columns (``keys``), which the jobs write into every table, so
that nothing is parsed back from a path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from nclab.config import external_checkpoints
from nclab.plan import LOSS_HEADS, checkpoint_schedule, longtail_grid, network

if TYPE_CHECKING:
    import pandas as pd

RUN_KEYS = {
    "balanced": ("schedule",),
    "longtail": ("ratio", "loss", "strategy"),
    "external": ("model",),
}  # a study's identity columns


@dataclass(frozen=True)
class Run:
    study: str  # "balanced", "longtail" or "external"
    keys: Mapping[str, Any]  # its identity as table columns: schedule; ratio (float), loss and strategy; model
    data: str  # the training data file (the test set comes with it)
    recipe: Mapping[str, Any]  # nclab.training.Recipe's fields and the checkpoint epochs; the seed comes apart
    model: Mapping[str, Any]  # nclab.models.build_model's arch, width, head (and the normed head's scale); for
    # an external model its config entry, with ``checkpoints`` a list
    seeds: tuple[int, ...]

    @property
    def checkpoints(self) -> list[int]:
        return list(self.recipe["checkpoints"])

    @property
    def final_epoch(self) -> int:
        return int(self.recipe["epochs"])


def external_run(name: str, model: Mapping[str, Any], data_file: str) -> Run:
    """A model trained elsewhere: its checkpoints at their epochs (1, 2, ... unless given), one seed."""
    files = external_checkpoints(dict(model))
    epochs = list(model["epochs"] or range(1, len(files) + 1))
    recipe = {"checkpoints": epochs, "epochs": epochs[-1]}
    return Run("external", {"model": name}, data_file, recipe, {**model, "checkpoints": files, "epochs": epochs}, (0,))


def longtail_id(ratio: str, loss: str, strategy: str) -> str:
    return f"longtail/ir{ratio}/{loss}/{strategy}"


def schedule_recipe(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A schedule's part of a recipe, its checkpoint epochs included (the final one always)."""
    return {
        "scheduler": spec["scheduler"],
        "epochs": spec["epochs"],
        "milestones": spec["milestones"],
        "gamma": spec["gamma"],
        "warmup_epochs": spec["warmup_epochs"],
        "final_lr": spec["final_lr"],
        "checkpoints": checkpoint_schedule(spec["epochs"], spec["checkpoints"]),
    }


def _training(*sections: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for section in sections:
        merged.update(section)
    return {k: v for k, v in merged.items() if k != "seeds"}


def longtail_model(config: Mapping[str, Any], loss: str) -> dict[str, Any]:
    """The long-tail network with the classifier head that ``loss`` needs."""
    lt = config["longtail"]
    head = LOSS_HEADS.get(loss, "linear")
    scale = {"scale": lt["loss_options"]["ldam_drw"]["scale"]} if head == "normed" else {}
    return {**network(lt["model"]), "head": head, **scale}


def run_table(config: Mapping[str, Any], data_file: str, longtail_data: str) -> dict[str, Run]:
    """Every run of the configured studies, balanced schedules first (their config order), then the long-tail
    grid. ``data_file`` is the balanced training data; ``longtail_data`` the long-tail subsets' path, with
    ``{ratio}`` in it."""
    runs: dict[str, Run] = {}
    seeds = tuple(config["training"]["seeds"])
    if "balanced" in config["studies"]:
        for name, spec in config["schedules"].items():
            recipe = {**_training(config["training"]), **schedule_recipe(spec)}
            keys = dict(zip(RUN_KEYS["balanced"], [name]))
            runs[name] = Run("balanced", keys, data_file, recipe, network(config["model"]), seeds)
    if "longtail" in config["studies"]:
        lt = config["longtail"]
        lt_seeds = tuple(lt["training"].get("seeds", seeds))  # longtail.training overrides training
        for ratio, loss, strategy in longtail_grid(lt["ratios"], lt["losses"], lt["strategies"]):
            recipe = {
                **_training(config["training"], lt["training"]),
                **schedule_recipe(lt["schedule"]),
                "loss": loss,
                "loss_options": lt["loss_options"].get(loss, {}),
                "strategy": strategy,
                "strategy_options": lt["alignment"].get(strategy, {}),
            }
            if strategy != "none":
                recipe["momentum_centres"] = lt["alignment"]["momentum"]
            keys = dict(zip(RUN_KEYS["longtail"], [float(ratio), loss, strategy]))
            runs[longtail_id(ratio, loss, strategy)] = Run(
                "longtail", keys, longtail_data.format(ratio=ratio), recipe, longtail_model(config, loss), lt_seeds
            )
    if "external" in config["studies"]:
        for name, model in config["external"]["models"].items():
            runs[f"external/{name}"] = external_run(name, model, data_file)
    return runs


def single_layers(layers: pd.DataFrame) -> pd.DataFrame:
    """The rows of a ``layers.csv`` table that belong to one layer each: the rows of the detectors combined over
    all layers have no collapse measures (docs/methods.md, section 9)."""
    return layers[layers["nc1"].notna()]


def layer_order(layers: pd.DataFrame) -> list[str]:
    """The layers of a ``layers.csv`` table by name, from the input side."""
    return list(single_layers(layers).sort_values("depth")["layer"].drop_duplicates())


def final_only(layers: pd.DataFrame) -> list[str]:
    """The per-layer detectors of a ``layers.csv`` table measured at fewer checkpoints than the table holds: those
    of ``layers.final_only``, at the runs' final checkpoints only (in the table's order)."""
    single = single_layers(layers)
    checkpoints = single.groupby("method", sort=False)["epoch"].nunique()
    return [m for m, count in checkpoints.items() if count < single["epoch"].nunique()]


def final_epochs(table: pd.DataFrame, study: str) -> pd.DataFrame:
    """The rows of each run's final epoch (every seed) of a table of ``study``'s runs."""
    keys = list(RUN_KEYS[study])
    return table[table["epoch"] == table.groupby(keys)["epoch"].transform("max")]
