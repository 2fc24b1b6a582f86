"""A copy of the workflow in a scratch folder, for tests and benchmarks that must not touch results/ (not part
of the nclab package: the workflow never copies itself)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from nclab.data import imagenet_lt_lists

WORKFLOW_FILES = [
    "Snakefile",
    "config.yaml",
    "rules",
    "scripts",
    "schemas",
    "envs",
    "paper",
    "src",
    "presets",
    "profiles",
    "report",
]


def copy_workflow(source: Path, destination: Path) -> None:
    """Copy everything ``snakemake`` needs to run the workflow of ``source`` inside ``destination``."""
    for name in WORKFLOW_FILES:
        (shutil.copytree if (source / name).is_dir() else shutil.copy)(source / name, destination / name)


def stub_local_data(workdir: Path, config: dict[str, Any]) -> None:
    """Create, empty, the local data a preset's config names (the folders of the optional OOD sets, ImageNet-LT's
    folder and split lists, the checkpoints of models trained elsewhere), so that ``snakemake -n`` plans its
    whole DAG without the data; Places365 stays absent."""
    for name, folder in config["data"].get("folders", {}).items():
        if name != "places365":
            (workdir / folder).mkdir(parents=True, exist_ok=True)
    if config["data"]["dataset"] == "imagenet_lt":
        (workdir / config["data"]["imagenet_lt"]["root"]).mkdir(parents=True, exist_ok=True)
        for path in imagenet_lt_lists(workdir / config["data"]["imagenet_lt"]["lists"]).values():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    for model in config.get("external", {}).get("models", {}).values():
        files = model["checkpoints"]
        for path in [files] if isinstance(files, str) else files:
            (workdir / path).parent.mkdir(parents=True, exist_ok=True)
            (workdir / path).touch()
