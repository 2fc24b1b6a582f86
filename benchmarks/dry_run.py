"""Time `snakemake -n` on every preset: how long planning the full paper-scale DAG takes on the submit host.

Each preset runs in a scratch copy of the workflow with its local data stubbed (empty folders and split
lists), as tests/test_paper_scale.py does. Prints, per preset, the jobs planned, the best wall-clock time of
`--repeat` runs and the cost per job; a slow input function or an import at planning time shows here.

Usage: python benchmarks/dry_run.py [--repeat 3] [preset ...]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from scratch import copy_workflow, stub_local_data

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    presets = sorted(p.stem for p in (ROOT / "presets").glob("*.yaml"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("presets", nargs="*", default=presets, help=f"any of {', '.join(presets)} (default: all)")
    args = parser.parse_args()
    if unknown := sorted(set(args.presets) - set(presets)):
        parser.error(f"no preset {', '.join(unknown)} in presets/")
    print(f"snakemake -n per preset, best of {args.repeat} ({os.cpu_count()} CPUs)")
    for preset in args.presets:
        with tempfile.TemporaryDirectory(prefix="nclab-dryrun-") as scratch:
            workdir = Path(scratch)
            copy_workflow(ROOT, workdir)
            stub_local_data(workdir, yaml.safe_load((ROOT / "presets" / f"{preset}.yaml").read_text()))
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                result = subprocess.run(
                    [sys.executable, "-m", "snakemake", "-n", "--configfile", f"presets/{preset}.yaml"],
                    cwd=workdir,
                    capture_output=True,
                    text=True,
                )
                times.append(time.perf_counter() - start)
                if result.returncode != 0:
                    sys.exit(f"{preset}: dry run failed:\n{result.stderr[-3000:]}")
            jobs = int(re.search(r"^total\s+(\d+)$", result.stdout + result.stderr, re.M).group(1))
            best = min(times)
            print(f"  {preset:14s} {jobs:5d} jobs  {best:5.1f} s  ({1000 * best / jobs:.1f} ms a job)")


if __name__ == "__main__":
    main()
