"""A copy of the workflow in a scratch folder, for tests and benchmarks that must not touch results/."""

from __future__ import annotations

import shutil
from pathlib import Path

WORKFLOW_FILES = ["Snakefile", "config.yaml", "rules", "scripts", "schemas", "envs", "paper", "src", "presets",
                  "profiles"]


def copy_workflow(source: Path, destination: Path) -> None:
    """Copy everything ``snakemake`` needs to run the workflow of ``source`` inside ``destination``."""
    for name in WORKFLOW_FILES:
        (shutil.copytree if (source / name).is_dir() else shutil.copy)(source / name, destination / name)
