"""Never lose or corrupt a result: bad configs stop before any job, kills restart cleanly, runs reproduce.

Kill scenarios run the real workflow: the feature-extraction job is SIGKILLed (as the OOM killer or a
cluster preemption would), then the LaTeX compile is interrupted with Ctrl-C (SIGINT to the whole process
group, as a terminal sends it); each time the same command is started again. The result must be
byte-identical to the uninterrupted session run, which ran two runs in parallel on 2 cores while this one
trains on 1 core until the first kill: that also checks determinism and concurrency. It runs the balanced study
only (the runs it compares; the long-tail runs go through the same rules).
"""

import math
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import yaml
from conftest import ROOT, TINY, processes, tiny_workdir
from scratch import copy_workflow

from nclab.collapse import collapse_metrics

IMAGENET_LT = {
    "dataset": "imagenet_lt",
    "root": "data",
    "ood_sets": ["textures"],
    "imagenet_lt": {"root": "no/imagenet", "lists": "no/lists", "image_size": 64},
}
BROKEN = [  # (edit of the default config, what the error must say)
    (
        {"data": {"dataset": "imagenet"}},
        "data.dataset: 'imagenet' is not allowed; "
        "allowed: ['digits', 'cifar10', 'cifar100', 'imagenet_lt', 'synthetic_cifar']",
    ),
    ({"ood": {"methods": ["msp", "odin"]}}, "ood.methods.1: 'odin' is not allowed"),
    (
        {"figures": {"histograms": {"methods": ["odin"]}}},
        "figures.histograms.methods: none of ['odin'] is among ood.methods",
    ),
    ({"schedules": {"standard": {"epochs": -5}}}, "schedules.standard.epochs: -5 is less than the minimum of 1"),
    ({"schedules": {"extended": {"epochs": 0}}}, "schedules.extended.epochs: 0 is less than the minimum of 1"),
    (
        {"schedules": {"standard": {"checkpoints": [45]}}},
        "schedules.standard.checkpoints: epochs [45] are beyond the schedule's 30 epochs",
    ),
    ({"training": {"lr": "fast"}}, "training.lr: 'fast' is not of type 'number'"),
    ({"training": {"batch_size": 12.5}}, "training.batch_size: 12.5 is not of type 'integer'"),
    ({"training": {"warmup": 5}}, "training: unknown keys ['warmup']; allowed: ['batch_size'"),
    (
        {"data": {"dataset": "cifar10", "ood_sets": ["svhn"], "folders": {}}},
        "data.root: required by ['cifar10', 'svhn']",
    ),
    ({"ood": {"hyperparameters": {"vim": {"dim": 64}}}}, "ood.hyperparameters.vim.dim: 64 must be an integer in 1..31"),
    ({"longtail": {"ratios": [10, 0.5]}}, "longtail.ratios.1: 0.5 is less than the minimum of 1"),
    ({"longtail": {"losses": ["ce", "focal"]}}, "longtail.losses.1: 'focal' is not allowed; allowed: ['ce'"),
    ({"longtail": {"schedule": {"checkpoints": [21]}}}, "longtail.schedule.checkpoints: epochs [21] are beyond"),
    (
        {
            "studies": ["longtail"],
            "data": {**IMAGENET_LT, "ood_sets": ["svhn"]},
            "longtail": {"profile": "given", "ratios": [256]},
        },
        "data.imagenet_lt.root: folder no/imagenet does not exist",
    ),
    (
        {"data": IMAGENET_LT, "longtail": {"profile": "given", "ratios": [256]}},
        "studies: 'balanced' needs a balanced training set; ImageNet-LT is long-tailed",
    ),
    (
        {"studies": ["longtail"], "data": {**IMAGENET_LT, "ood_sets": ["svhn"]}, "longtail": {"ratios": [10, 100]}},
        "data.ood_sets: 'svhn' does not match the format of 'imagenet_lt'; allowed: ['textures', 'places365']",
    ),
]


@pytest.mark.workflow
def test_broken_configs_fail_before_any_job_with_the_key_named(tmp_path):
    def check(cases: list[tuple[int, tuple[dict, str]]], workdir: Path) -> None:
        workdir.mkdir()
        copy_workflow(ROOT, workdir)
        for i, (edit, message) in cases:
            (workdir / f"bad{i}.yaml").write_text(yaml.safe_dump(edit))
            result = subprocess.run(
                [sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", f"bad{i}.yaml"],
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode != 0, edit
            assert message in result.stdout + result.stderr, (edit, result.stderr[-2000:])
            assert not (workdir / "results").exists(), f"a job ran for {edit}"

    cases = list(enumerate(BROKEN))
    with ThreadPoolExecutor(2) as pool:  # two scratch copies, one Snakemake at a time in each (2 cores)
        for done in [pool.submit(check, cases[k::2], tmp_path / f"copy{k}") for k in range(2)]:
            done.result()


def test_nan_in_any_nc_metric_is_an_error():
    rng = np.random.default_rng(0)
    features = rng.random((40, 6)).astype(np.float32)
    dump = {
        f"{split}_{k}": v
        for split in ("train", "test")
        for k, v in (("features", features), ("labels", np.arange(40) % 4), ("logits", rng.random((40, 4))))
    }
    dump.update(
        weight=rng.random((4, 6)), bias=np.zeros(4), head=np.array("linear"), noise_features=rng.random((30, 6)) + 0.5
    )
    assert math.isfinite(collapse_metrics(dump, 4, ["noise"])["nc1"])
    dump["noise_features"][3, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite collapse metrics.*nc5_noise"):
        collapse_metrics(dump, 4, ["noise"])


def run_until(
    workdir: Path, pattern: bytes, cwd_prefix: Path, interrupt: Callable, ready=lambda: True, cores: int = 1
) -> int:
    """Start the workflow; once a process matching ``pattern`` runs and ``ready()`` holds, ``interrupt`` it."""
    env = {**os.environ, "TMPDIR": str(workdir / "tmp")}
    output = workdir / "tmp" / "snakemake.out"  # a file, not a pipe: an undrained pipe blocks snakemake once full
    with open(output, "w") as sink:  # SIGINT acts as in a terminal even where the tests run as a background
        # job of a non-interactive shell, which ignores it (snakemake would inherit that and finish regardless)
        run = subprocess.Popen(
            [sys.executable, "-m", "snakemake", "--cores", str(cores), "--configfile", "tiny.yaml"],
            cwd=workdir,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    deadline = time.time() + 600
    while not (pids := processes(pattern, cwd_prefix)) or not ready():
        assert run.poll() is None, f"finished before {pattern!r} could be interrupted:\n{output.read_text()[-3000:]}"
        assert time.time() < deadline
        time.sleep(0.02)
    interrupt(run, pids)
    run.wait(timeout=300)
    return run.returncode


def dumps(workdir: Path) -> list[Path]:
    return sorted((workdir / "results/runs").glob("*/seed0/features/*.npz"))


CHECKPOINTS = {"standard": {"epoch1.npz", "epoch2.npz", "epoch3.npz"}, "extended": {"epoch2.npz", "epoch4.npz"}}


@pytest.mark.workflow
def test_killed_jobs_restart_to_the_numbers_of_an_uninterrupted_run(workflow, tmp_path):
    workdir = tiny_workdir(tmp_path / "killed", {**TINY, "studies": ["balanced"]})  # the runs it compares
    (workdir / "tmp").mkdir()
    started = {}

    def extraction_under_way() -> bool:
        started.setdefault("at", time.time())
        return bool(dumps(workdir)) or time.time() - started["at"] > 2.5

    def sigkill_job(run, pids):
        for pid in pids:
            os.kill(pid, signal.SIGKILL)

    rc = run_until(workdir, b"extract_features.py", workdir, sigkill_job, extraction_under_way)
    assert rc != 0
    for schedule, expected in CHECKPOINTS.items():  # a run's dumps are all there (job done) or none (killed job)
        present = {p.name for p in (workdir / "results/runs" / schedule / "seed0" / "features").glob("*.npz")}
        assert present in (set(), expected), (schedule, present)

    def ctrl_c(run, pids):
        os.killpg(run.pid, signal.SIGINT)

    rc = run_until(workdir, b"latexmk", workdir / "tmp", ctrl_c, cores=2)
    assert rc != 0
    assert not (workdir / "results/paper/paper.pdf").exists()

    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "tiny.yaml"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for table in ("history.csv", "collapse.csv", "ood/metrics.csv"):
        for schedule in ("standard", "extended"):
            ours, theirs = (w / "results/runs" / schedule / "seed0" / table for w in (workdir, workflow))
            assert ours.read_bytes() == theirs.read_bytes(), f"{schedule}/{table} differs"
    for ours, theirs in zip(dumps(workdir), dumps(workflow), strict=True):
        a, b = np.load(ours), np.load(theirs)
        assert all(np.array_equal(a[k], b[k]) for k in b.files), ours.name
    assert (workdir / "results/report/macros.tex").read_text() == (workflow / "results/report/macros.tex").read_text()
