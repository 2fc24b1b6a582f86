"""How many jobs each preset submits to a SLURM cluster through profiles/slurm, from Snakemake's dry run.

Usage: python tools/cluster_jobs.py [PRESET ...]   (default: every paper-scale file of presets/, that is all but
       external-example, whose checkpoint a user saves first; a few seconds each)

Per preset: the jobs of the whole workflow, the ones that run on the login node (localrules), and the
submissions, one per job without job groups, and with the profile's per-run analysis groups (the OOD scores,
OOD metrics and collapse tables of one run in one submission). The count follows from the dry run's job
table; tests/test_slurm.py checks the grouping itself on a real scheduler.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "presets" / "external-example.yaml"
LOCAL_RULES = ("fetch_raw", "paper", "typeset_table", "all")
# grouped per run (one submission each); collapse_metrics: 1 per run
ANALYSIS_RULES = ("ood_scores", "ood_metrics", "ood_trajectory", "collapse_metrics")


def stand_in_imagenet(folder: Path) -> list[str]:
    """An empty ImageNet folder and empty split lists: the DAG does not depend on their contents."""
    (folder / "imagenet").mkdir()
    for split in ("train", "val", "test"):
        (folder / f"ImageNet_LT_{split}.txt").touch()
    return ["--config", f"data={{imagenet_lt: {{root: {folder / 'imagenet'}, lists: {folder}}}}}"]


def job_counts(preset: Path) -> dict[str, int]:
    """Rule -> number of jobs in a dry run of the whole workflow for ``preset`` (nothing run or written)."""
    with tempfile.TemporaryDirectory() as scratch:
        extra = stand_in_imagenet(Path(scratch)) if "imagenet_lt" in preset.read_text() else []
        result = subprocess.run(
            [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--configfile", str(preset), *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    if result.returncode != 0:
        raise SystemExit(f"dry run of {preset} failed:\n{result.stderr[-3000:]}")
    table = result.stdout.split("Job stats:")[1].split("total")[0]
    return {rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)}


def main(presets: list[str]) -> None:
    paths = [Path(p) for p in presets] or sorted(set((ROOT / "presets").glob("*.yaml")) - {EXAMPLE})
    print(f"{'preset':<18} {'runs':>5} {'jobs':>6} {'local':>6} {'submitted':>10} {'grouped':>8}")
    for path in paths:
        counts = job_counts(path)
        runs = counts.get("collapse_metrics", 0)
        total = sum(counts.values())
        local = sum(counts.get(rule, 0) for rule in LOCAL_RULES)
        grouped = total - local - sum(counts.get(rule, 0) for rule in ANALYSIS_RULES) + runs
        print(f"{path.stem:<18} {runs:>5} {total:>6} {local:>6} {total - local:>10} {grouped:>8}")


if __name__ == "__main__":
    main(sys.argv[1:])
