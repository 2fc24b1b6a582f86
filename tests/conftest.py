"""The real workflow on a tiny config, run once per session from an empty results/ and shared by the tests
that inspect its artifacts or plan changes against it (each restores what it edits)."""

import hashlib
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml
from external_checkpoints import (
    NCLAB,
    TV,
    save_nclab_checkpoint,
    save_timm,
    save_torchvision_checkpoints,
    timm_entry,
    timm_model,
)
from scratch import copy_workflow

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")  # torch, numpy/scipy, sklearn
if "PYTEST_XDIST_WORKER" in os.environ:  # make test, make test-fast: the workers share 2 cores, so each computes
    for variable in THREAD_VARIABLES:  # (and so do the jobs it starts) with one thread, unless the caller set a
        os.environ.setdefault(variable, "1")  # count (.ci/run checks the tolerances with two: docs/conventions.md)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # where it did, idle OpenMP threads sleep, not spin

# Snakemake's SLURM plugin runs `scontrol show config` at every start; an empty configuration makes it fail at
# once, where a site's slurm.conf whose controller does not answer costs 10 s (docs/slurm.md). The SLURM tests
# give their jobs the test cluster's own configuration.
os.environ["SLURM_CONF"] = os.devnull

ROOT = Path(__file__).resolve().parents[1]

TINY = yaml.safe_load((ROOT / "tests" / "tiny.yaml").read_text())  # the tiny study, also runnable by hand


def report_caption(kind: str, key: str) -> str:
    """The HTML report's caption of figure or table ``key`` (``kind``), rendered from report/<kind>.rst as
    Snakemake renders it (a missing key renders empty)."""
    import jinja2

    wildcards = types.SimpleNamespace(**{kind: key})
    template = jinja2.Template((ROOT / "report" / f"{kind}.rst").read_text())
    return template.render(snakemake=types.SimpleNamespace(wildcards=wildcards)).strip()


RUNNING: list[pytest.Item] = []  # the test whose body runs now (see _running_test)


@pytest.fixture(autouse=True)
def _running_test(request):
    RUNNING[:] = [request.node]
    yield
    RUNNING.clear()


# `make test` runs three pytest-xdist workers on two cores (--dist loadgroup --no-loadscope-reorder), which take
# work units in the order below: one the tests that share the tiny workflow run (the group "workflow"); one the
# SLURM tests, which mostly wait on the scheduler's status checks and so leave their core to the others (the group
# "slurm"); one the training tests, then `make gpu-check` (whose compiled loop reuses the compiled test's graph
# from inductor's cache) and the ImageNet-LT run (the group "cluster"). Each paper configuration build is a unit
# (with the tests that read it), and every other file is one (its module-scoped fixtures run once), handed to
# whichever worker is free, the slowest first, so that all end together. pytest-xdist gives each worker two units
# at the start: three quick files (SECOND_UNITS) come right after the groups, so that no slow unit waits behind a
# group. benchmarks/test_suite.py names the slowest tests.
SLURM_WORKER = ("test_slurm.py",)
CLUSTER_WORKER = ("test_data_models_training.py", "test_gpu_path.py", "test_imagenet_lt.py")
SECOND_UNITS = ("test_roots.py", "test_published.py", "test_relation.py")
SLOWEST = ("builds", "test_reliability.py", "test_paper_scale.py", "test_benchmarks.py", "test_config_report.py")
BUILDS = "test_paper_configurations.py"  # one unit per build (a module fixture named *_build) and its tests


def xdist_group(item: pytest.Item) -> str:
    """The work unit of ``item`` (above): the tiny workflow's users, the SLURM tests, the cluster worker's files,
    one paper configuration build and its tests, or its file."""
    if "workflow" in getattr(item, "fixturenames", ()):
        return "workflow"
    if item.path.name == BUILDS:  # the build it reads (a module fixture): its tests share one unit
        return next(name for name in item.fixturenames if name.endswith("_build"))
    if item.path.name in SLURM_WORKER:
        return "slurm"
    return "cluster" if item.path.name in CLUSTER_WORKER else item.path.name


def place(item: pytest.Item) -> str:
    """The name of ``item``'s place in the order above: its work unit's, the builds sharing one."""
    unit = xdist_group(item)
    return "builds" if item.path.name == BUILDS and unit != "workflow" else unit


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(items):
    """Every test that uses the tiny workflow run is a workflow test; the work units and their order (above)."""
    for item in items:
        if "workflow" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.workflow)
        item.add_marker(pytest.mark.xdist_group(xdist_group(item)))
    if "PYTEST_XDIST_WORKER" in os.environ:
        rank = {unit: i for i, unit in enumerate(("workflow", "slurm", "cluster", *SECOND_UNITS, *SLOWEST))}
        items.sort(key=lambda item: rank.get(place(item), len(rank)))


def snakemake(
    workdir: Path, *args: str, cores: str = "2", configfile: str | None = "tiny.yaml"
) -> subprocess.CompletedProcess:
    """Snakemake on ``workdir`` with ``configfile`` over config.yaml (the tiny config by default; None: config.yaml
    alone, the miniature); only a test marked ``workflow`` may call it, so that ``make test-fast``
    (``-m "not workflow"``) runs no workflow."""
    if RUNNING and RUNNING[0].get_closest_marker("workflow") is None:
        raise RuntimeError(f"{RUNNING[0].nodeid} runs Snakemake: mark it @pytest.mark.workflow")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--cores",
            cores,
            *(["--configfile", configfile] if configfile else []),
            *args,
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=900,
    )


def tiny_workdir(path: Path, config: dict = TINY) -> Path:
    """A scratch copy of the workflow with ``config`` as tiny.yaml (the tiny config by default), nothing run yet."""
    path.mkdir(parents=True, exist_ok=True)
    copy_workflow(ROOT, path)
    (path / "tiny.yaml").write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="session")
def workflow(tmp_path_factory) -> Path:
    workdir = tiny_workdir(tmp_path_factory.mktemp("workflow"))
    result = snakemake(workdir)  # two runs in parallel on 2 cores
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir


def digests(folder: Path, patterns: tuple[str, ...] = ("data/**/*", "runs/**/*", "report/**/*.tex")) -> dict:
    """SHA-256 of the files under ``folder`` matching ``patterns`` (by default a results root's data stores, its
    runs (checkpoints, dumps, tables of metrics) and the paper's tables and macros), by relative path."""
    files = sorted({p for pattern in patterns for p in folder.glob(pattern) if p.is_file()})
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


EXTERNAL_MODELS = {  # a torchvision model (two checkpoints) and an nclab network, saved as a researcher would
    "tv-resnet18": {  # and four layers before h: the depth analysis (where layers.enabled)
        **TV,
        "checkpoints": ["checkpoints/tv_epoch1.pt", "checkpoints/tv_epoch2.pt"],
        "layers": ["conv1", "layer1", "layer2", "layer3"],
    },
    "nclab-net": {**NCLAB, "checkpoints": "checkpoints/nclab.pt", "epochs": [5], "description": "ours"},
    "timm-convnext": {  # a timm model in a folder as timm saves one, its layers its forward_intermediates
        **timm_entry("convnext_atto", "checkpoints/convnext_atto"),
        "layers": "intermediates",
    },
}
EXTERNAL = {  # models trained elsewhere, on generated CIFAR-shaped data: the tiny cousin of the external example
    **TINY,
    "name": "external",
    "studies": ["external"],
    "data": {
        "dataset": "synthetic_cifar",
        "ood_sets": ["photos", "noise"],
        "synthetic": {
            "synthetic_cifar": {"num_classes": 10, "train_per_class": 20, "test_per_class": 10},
            "photos": {"count": 60, "patch_size": 32},
            "noise": {"count": 60},
        },
    },
    "external": {"models": EXTERNAL_MODELS},
    "layers": {"enabled": True},
}


@pytest.fixture(scope="session")
def external_run(workflow) -> tuple[Path, dict]:
    """The external configuration (external.yaml, root results/external) run to its PDF in the tiny study's
    folder, beside the tiny study's results; with the digests of the tiny study's results from before it ran."""
    before = digests(workflow / "results" / "tiny")
    save_torchvision_checkpoints(workflow / "checkpoints")
    save_nclab_checkpoint(workflow / "checkpoints" / "nclab.pt")
    save_timm(timm_model("convnext_atto"), workflow / "checkpoints" / "convnext_atto")
    (workflow / "external.yaml").write_text(yaml.safe_dump(EXTERNAL))
    result = snakemake(workflow, configfile="external.yaml")
    assert result.returncode == 0, result.stderr[-5000:]
    return workflow, before


def processes(pattern: bytes, cwd_prefix: Path) -> list[int]:
    """PIDs whose command line contains ``pattern`` and whose working directory lies under ``cwd_prefix``."""
    return running([pattern], cwd_prefix).get(pattern, [])


def running(patterns: list[bytes], cwd_prefix: Path) -> dict[bytes, list[int]]:
    """The PIDs of each of ``patterns`` found in a command line, among the processes working under
    ``cwd_prefix``: one pass over /proc for all of them (a test that polls for many kinds of job at once would
    otherwise spend a core reading /proc)."""
    found: dict[bytes, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes()
            matched = [pattern for pattern in patterns if pattern in command]
            if matched and Path(os.readlink(proc / "cwd")).is_relative_to(cwd_prefix):
                for pattern in matched:
                    found.setdefault(pattern, []).append(int(proc.name))
        except OSError:  # the process ended meanwhile
            continue
    return found


# NCLAB_TEST_SEED (default 0) shifts the seeds of the random data the reference tests compare on, so that
# `NCLAB_TEST_SEED=3 pytest -m "not workflow"` checks every tolerance on other data (docs/conventions.md).
TEST_SEED = int(os.environ.get("NCLAB_TEST_SEED", "0"))


def data_seed(seed: int) -> int:
    """A test's data seed ``seed``, shifted by 1000 NCLAB_TEST_SEED (unchanged by default)."""
    return seed + 1000 * TEST_SEED


def pytest_report_header() -> str:
    return f"NCLAB_TEST_SEED={TEST_SEED}: data seeds shifted by {1000 * TEST_SEED}"
