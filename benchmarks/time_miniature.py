"""Time the built-in miniature study from an empty results/ folder to the compiled PDF.

Copies the workflow into a scratch folder (so the repository's results/ is left alone), runs
`snakemake --cores all` there and prints the wall-clock time, the number of jobs and the slowest jobs
(from the rules' benchmark files). Usage: python benchmarks/time_miniature.py [--cores N] [--configfile F]
[--target FILE] (the tests run it on tests/tiny.yaml up to one run's history).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scratch import copy_workflow

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", default="all")
    parser.add_argument("--configfile", type=Path, help="a config over config.yaml (default: none)")
    parser.add_argument("--target", nargs="*", default=[], help="the files to build (default: the paper)")
    args = parser.parse_args()
    extra = ["--configfile", str(args.configfile.resolve())] if args.configfile else []
    with tempfile.TemporaryDirectory(prefix="nclab-bench-") as scratch:
        workdir = Path(scratch)
        copy_workflow(ROOT, workdir)
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "snakemake", *args.target, "--cores", args.cores, *extra],
            cwd=workdir,
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - start
        if result.returncode != 0:
            sys.exit(f"workflow failed:\n{result.stderr[-3000:]}")
        jobs = result.stderr.count("Finished jobid")
        target = " ".join(args.target) or "the paper"
        print(
            f"{args.configfile or 'miniature study'}, empty results/ -> {target}: {elapsed:.1f} s wall-clock, "
            f"{jobs} jobs, --cores {args.cores} ({os.cpu_count()} CPUs)"
        )
        timings = []
        for tsv in (workdir / "results").glob("*/benchmarks/**/*.tsv"):  # the configuration's results root
            seconds = float(tsv.read_text().splitlines()[1].split("\t")[0])
            timings.append((seconds, tsv.relative_to(workdir / "results")))
        for seconds, name in sorted(timings, reverse=True)[:5]:
            print(f"  {seconds:7.1f} s  {name}")


if __name__ == "__main__":
    main()
