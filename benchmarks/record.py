"""`make benchmark`: run every benchmark of this folder and write what each printed to one page.

The page (docs/performance.md by default) is one table: per command line, the date it was measured and the
figures it printed, under the machine (CPU model, cores, memory, GPU) and the torch version. Timings drift
between machines; the page says where they come from rather than quoting them in prose.

Usage: python benchmarks/record.py [PAGE] [--only NAME ...] [--args NAME=ARGS ...] [--printed NAME=FILE ...]
(--only reruns those and keeps the page's other rows, those of the same benchmark with other arguments
included; --printed records what a separate run printed)
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROGRESS = re.compile(r": \d+/\d+ \w+")  # a progress line ("2 worker(s): 60/600 images read"), not a figure
COMMANDS = {  # name -> arguments of `python benchmarks/<name>.py`
    "time_miniature": [],
    "train_throughput": [],
    "lenet_epoch": [],
    "metrics_scale": [],
    "imagenet_lt_decode": [],
    "dry_run": [],
    "time_presets": [],
    "test_suite": [],
}


def machine() -> str:
    """CPU model, cores, memory and GPU of this machine, and the torch version (no host name)."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
        platform.processor() or platform.machine(),
    )
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    probe = (
        "import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() "
        "else 'no GPU')"
    )
    torch_line = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip()
    version, _, gpu = torch_line.partition(" ")
    return f"{model}, {os.cpu_count()} CPUs, {memory_gb:.0f} GB memory, {gpu or 'no GPU'}; torch {version}"


def run(name: str, arguments: list[str]) -> tuple[str, list[str]]:
    """The command line and the lines it printed (its error, if it failed)."""
    command = ["python", f"benchmarks/{name}.py", *arguments]
    print(f"running: {' '.join(command)}", flush=True)
    result = subprocess.run([sys.executable, *command[1:]], cwd=ROOT, capture_output=True, text=True)
    lines = [line.rstrip() for line in result.stdout.splitlines() if line.strip() and not PROGRESS.search(line)]
    if result.returncode != 0:
        lines.append(f"FAILED (exit {result.returncode}): {result.stderr.strip().splitlines()[-1:]}")
    print("\n".join(lines), flush=True)
    return " ".join(command), lines


def recorded(name: str, arguments: list[str], output: Path) -> tuple[str, list[str]]:
    """The command line and the lines that an earlier run of it printed to ``output``."""
    lines = [line.rstrip() for line in output.read_text().splitlines() if line.strip() and not PROGRESS.search(line)]
    return " ".join(["python", f"benchmarks/{name}.py", *arguments]), lines


def row(command: str, date: str, lines: list[str]) -> str:
    cell = "<br>".join(line.strip().replace("|", "\\|") for line in lines)
    return f"| `{command}` | {date} | {cell} |"


ROW = re.compile(r"\| `(python benchmarks/(\w+)\.py[^`]*)` \|")


def kept_rows(page: Path) -> dict[str, tuple[str, str]]:
    """The table rows of an existing page, by command line, with their benchmark's name: an `--only` run keeps
    the others."""
    text = page.read_text() if page.exists() else ""
    return {m.group(1): (m.group(2), line) for line in text.splitlines() if (m := ROW.match(line))}


def page(rows: list[str], measured_on: str) -> str:
    return "\n".join(
        [
            "# Performance",
            "",
            "Written by `make benchmark` (`python benchmarks/record.py`); do not edit by hand. Each command's own",
            "docstring says what it measures. Timings drift between machines and runs: rerun it on yours.",
            "",
            f"- machine: {measured_on}",
            "",
            "| command | date | measured |",
            "|---|---|---|",
            *rows,
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", nargs="?", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--only", nargs="*", choices=sorted(COMMANDS), help="run these benchmarks only")
    parser.add_argument(
        "--args",
        nargs="*",
        default=[],
        metavar="NAME=ARGS",
        help='extra arguments of one benchmark, e.g. "metrics_scale=--train 600"',
    )
    parser.add_argument(
        "--printed",
        nargs="*",
        default=[],
        metavar="NAME=FILE",
        help="record what a run of one benchmark printed to FILE (with its --args) instead of running it again: "
        "for those that take hours, run on their own",
    )
    args = parser.parse_args()
    extra = {name: value.split() for name, _, value in (item.partition("=") for item in args.args)}
    printed = {name: Path(value) for name, _, value in (item.partition("=") for item in args.printed)}
    measured = {
        name: recorded(name, COMMANDS[name] + extra.get(name, []), printed[name])
        if name in printed
        else run(name, COMMANDS[name] + extra.get(name, []))
        for name in (args.only or COMMANDS)
    }
    date = datetime.date.today().isoformat()
    fresh = {command: (name, row(command, date, lines)) for name, (command, lines) in measured.items()}
    rows = {**(kept_rows(args.page) if args.only else {}), **fresh}
    ordered = sorted(rows.items(), key=lambda item: (list(COMMANDS).index(item[1][0]), item[0]))
    args.page.write_text(page([line for _, (_, line) in ordered], machine()))
    print(f"wrote {args.page}")
    if any(lines and lines[-1].startswith("FAILED") for _, lines in measured.values()):
        sys.exit("some benchmarks failed (see the page)")


if __name__ == "__main__":
    main()
