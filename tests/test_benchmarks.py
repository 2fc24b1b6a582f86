"""Every script of benchmarks/ runs, at a tiny size: a smoke test of its code path (its figures are not
asserted: timings belong to docs/performance.md, written by `make benchmark`)."""

import datetime
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY_ARGUMENTS = {  # benchmark -> arguments that make it run in seconds
    "metrics_scale": [
        "--train",
        "600",
        "--test",
        "200",
        "--ood",
        "200",
        "--dim",
        "16",
        "--classes",
        "5",
        "--layer-dims",
        "8,16,8,16,8",
    ],
    "train_throughput": ["--width", "2", "--batch-size", "16", "--batches", "2", "--warmup", "1", "--threads", "1"],
    "imagenet_lt_decode": ["--images", "4", "--size", "16", "--threads", "1"],
    "test_suite": ["--slowest", "2", "--workers", "0", "--select", "tests/test_roots.py"],
    "lenet_epoch": ["--images", "512", "--threads", "1", "--rounds", "1"],
    "time_presets": ["--scale", "0.002", "--dry-run"],  # the files of every set, each preset planned on them
}
WORKFLOW_ARGUMENTS = {  # those that run Snakemake
    "dry_run": ["--repeat", "1", "synthetic-cifar"],
    "time_miniature": [
        "--cores",
        "2",
        "--configfile",
        "tests/tiny.yaml",
        "--target",
        "results/tiny/runs/standard/seed0/history.csv",
    ],
}
ELSEWHERE = {"scratch": "a module the tests import", "gpu_check": "tests/test_gpu_path.py runs make gpu-check"}


def run(name: str, arguments: list[str]) -> str:
    result = subprocess.run(
        [sys.executable, f"benchmarks/{name}.py", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_every_benchmark_has_a_smoke_test():
    scripts = {path.stem for path in (ROOT / "benchmarks").glob("*.py")}
    assert scripts == {*TINY_ARGUMENTS, *WORKFLOW_ARGUMENTS, *ELSEWHERE, "record"}


@pytest.mark.parametrize("name", TINY_ARGUMENTS)
def test_benchmark_runs_at_a_tiny_size(name):
    assert run(name, TINY_ARGUMENTS[name]).strip()


@pytest.mark.workflow
@pytest.mark.parametrize("name", WORKFLOW_ARGUMENTS)
def test_workflow_benchmark_runs_at_a_tiny_size(name):
    assert run(name, WORKFLOW_ARGUMENTS[name]).strip()


def test_make_benchmark_writes_one_table_with_date_machine_and_command(tmp_path):
    """One table under the machine, a date per row; `--only` reruns one row and keeps the page's others."""
    page = tmp_path / "performance.md"
    earlier = "| `python benchmarks/dry_run.py` | 2026-01-02 | an earlier figure |"
    page.write_text(f"# Performance\n\n| command | date | measured |\n|---|---|---|\n{earlier}\n")
    arguments = " ".join(TINY_ARGUMENTS["metrics_scale"])
    run("record", [str(page), "--only", "metrics_scale", "--args", f"metrics_scale={arguments}"])
    text = page.read_text()
    assert "- machine: " in text and "CPUs" in text and "torch " in text
    rows = [line for line in text.splitlines() if line.startswith("| `python benchmarks/")]
    assert len(rows) == 2 and rows[1] == earlier  # in the order of `make benchmark`
    assert f"| {datetime.date.today().isoformat()} |" in rows[0]
    assert "--train 600" in rows[0] and "total" in rows[0] and "peak RSS" in rows[0]


def test_make_benchmark_records_what_a_separate_run_printed(tmp_path):
    """`--printed` records the lines a run of hours printed on its own, under its command line, running nothing;
    a row of the same benchmark with other arguments stays."""
    page, output = tmp_path / "performance.md", tmp_path / "printed.txt"
    other = "| `python benchmarks/time_presets.py --presets fashionmnist-lt` | 2026-01-02 | fashionmnist-lt: 80 min |"
    page.write_text(f"# Performance\n\n| command | date | measured |\n|---|---|---|\n{other}\n")
    output.write_text("mnist-ood: raw files -> PDF 50.0 min\n\n  CPU time 90.0 min\n")
    run("record", [str(page), "--only", "time_presets", "--args", "time_presets=--presets mnist-ood"]
        + ["--printed", f"time_presets={output}"])  # fmt: skip
    rows = [line for line in page.read_text().splitlines() if line.startswith("| `python benchmarks/")]
    today = datetime.date.today().isoformat()
    assert rows == [
        other,
        f"| `python benchmarks/time_presets.py --presets mnist-ood` | {today} | mnist-ood: raw files -> PDF 50.0 min"
        "<br>CPU time 90.0 min |",
    ]
