"""Time the test suite as `make test` and `make test-fast` run it, and name its slowest tests with what each one
proves (the first sentence of its docstring), so that the cost of every slow test is stated beside its worth.

Budgets: `make test` at most 6 minutes of pytest on 2 cores, `make test-fast` at most 60 s. A test's time is
its setup, call and teardown (the first test to use a shared fixture, such as the tiny workflow run, pays for
it). Run it with nothing else busy on the machine.

Usage: python benchmarks/test_suite.py [--slowest N] [--workers N] [--select PYTEST_ARGS...]
"""

from __future__ import annotations

import argparse
import ast
import os
import shlex
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def makefile_pytest_arguments(target: str) -> list[str]:
    """The pytest arguments of ``target``'s ``python -m pytest`` line in the Makefile."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    recipe = lines[next(i for i, line in enumerate(lines) if line.startswith(f"{target}:")) + 1 :]
    command = next(line for line in recipe if "python -m pytest" in line).split("#")[0]
    return shlex.split(command.split("python -m pytest", 1)[1])


SUITES = {  # name -> pytest arguments, as the Makefile gives them; budget in seconds
    "make test": (makefile_pytest_arguments("test"), 360),
    "make test-fast": (makefile_pytest_arguments("test-fast"), 60),
}


def first_sentence(path: Path, function: str) -> str:
    """The first sentence of test ``function``'s docstring in ``path`` (its name in words when it has none)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef) and node.name == function:
            doc = " ".join((ast.get_docstring(node) or "").split())
            return doc.split(". ")[0].rstrip(".") if doc else function.removeprefix("test_").replace("_", " ")
    return function


def timed_suite(arguments: list[str]) -> tuple[float, int, list[tuple[float, str]]]:
    """Wall-clock seconds of pytest, the number of tests, and each test's seconds by its id."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "junit.xml"
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *arguments],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        seconds = time.perf_counter() - start
        if result.returncode not in (0, 5):  # 5: no test selected
            sys.exit(f"pytest {' '.join(arguments)} failed:\n{result.stdout[-3000:]}")
        cases = ElementTree.parse(report).getroot().iter("testcase")
        times = [(float(c.get("time", 0)), f"{c.get('classname')}::{c.get('name')}") for c in cases]
    return seconds, len(times), sorted(times, reverse=True)


def described(test_id: str) -> str:
    """``test_id`` (tests.test_x::test_y[param]) with the first sentence of its docstring."""
    module, _, name = test_id.partition("::")
    name = name.split("@")[0]  # pytest-xdist's group suffix
    path = ROOT / (module.replace(".", "/") + ".py")
    function = name.split("[")[0]
    return f"{path.relative_to(ROOT)}::{name}: {first_sentence(path, function)}" if path.is_file() else test_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slowest", type=int, default=8, help="how many of the slowest tests to name")
    parser.add_argument("--workers", type=int, help="pytest-xdist workers instead of the Makefile's (0: none)")
    parser.add_argument("--select", nargs="*", default=[], help="pytest arguments that narrow both suites")
    args = parser.parse_args()
    for name, (arguments, budget) in SUITES.items():
        workers = [] if args.workers is None else ["-n", str(args.workers)]  # the last -n given counts
        seconds, count, times = timed_suite([*arguments, *workers, *args.select])
        print(f"{name}: {count} tests, {seconds:.0f} s of pytest on {os.cpu_count()} CPUs (budget {budget} s)")
        if name == "make test":
            for test_seconds, test_id in times[: args.slowest]:
                print(f"  {test_seconds:6.1f} s  {described(test_id)}")


if __name__ == "__main__":
    main()
