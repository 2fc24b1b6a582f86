"""Never lose or corrupt a result: bad configs stop before any job, kills restart cleanly, runs reproduce.

Interruption scenarios run the real workflow: every kind of job is interrupted while it runs, with Ctrl-C
(SIGINT to the whole process group, as a terminal sends it) or, for feature extraction, SIGKILL (as the OOM
killer or a cluster preemption would), and each time the same command is started again. The result must be
byte-identical to the uninterrupted session run, which ran two runs in parallel on 2 cores while this one runs
on 1 core: that also checks determinism and concurrency. It runs the balanced study only (the runs it compares;
the long-tail runs go through the same rules).
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
from conftest import ROOT, TINY, running, tiny_workdir
from scratch import copy_workflow

from nclab import report
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
        "data.dataset: 'imagenet' is not allowed; allowed: "
        "['digits', 'mnist', 'fashionmnist', 'kmnist', 'cifar10', 'cifar100', 'imagenet_lt', 'synthetic_cifar']",
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


def test_coinciding_class_means_give_infinite_cdnv_and_gnc2_not_an_error():
    """A dead network's classes 0 and 1 share one mean: CDNV and GNC2 divide by their zero distance (infinite by
    definition), and every other measure stays finite."""
    rng = np.random.default_rng(0)
    labels = np.arange(40) % 4
    means = np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 2.0, 0], [0, 0, 3.0]])
    features = means[labels] + 0.1 * rng.normal(size=(40, 3))
    features[labels == 1] = features[labels == 0]  # the same samples, so the same mean to the last bit
    dump = {f"{split}_{k}": v for split in ("train", "test") for k, v in (("features", features), ("labels", labels))}
    dump.update(train_logits=features @ means.T, test_logits=features @ means.T, weight=means, head=np.array("linear"))
    metrics = collapse_metrics(dump, 4, [])
    assert metrics["cdnv"] == metrics["gnc2"] == math.inf
    assert all(math.isfinite(v) for k, v in metrics.items() if k not in ("cdnv", "gnc2"))
    assert report.mean_std([metrics["cdnv"], 0.5]) == r"$\infty$"
    with pytest.raises(ValueError, match="non-finite"):
        report.mean_std([math.nan, 0.5])


def start(workdir: Path, *args: str, cores: int = 1) -> subprocess.Popen:
    """The workflow on the tiny config in its own process group, as a terminal starts it."""
    env = {**os.environ, "TMPDIR": str(workdir / "tmp")}
    output = workdir / "tmp" / "snakemake.out"  # a file, not a pipe: an undrained pipe blocks snakemake once full
    with open(output, "a") as sink:  # SIGINT acts as in a terminal even where the tests run as a background
        # job of a non-interactive shell, which ignores it (snakemake would inherit that and finish regardless)
        return subprocess.Popen(
            [sys.executable, "-m", "snakemake", "--cores", str(cores), "--configfile", "tiny.yaml", *args],
            cwd=workdir,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )


def interrupt_first(run: subprocess.Popen, workdir: Path, kinds: dict[bytes, Callable]) -> bytes | None:
    """Wait until a job of one of ``kinds`` (a command-line pattern -> how to interrupt it) runs, interrupt it,
    and return its kind; None when the run ended first."""
    deadline = time.time() + 600
    while run.poll() is None:
        found = running(list(kinds), workdir)
        for kind, interrupt in kinds.items():  # in the order given, as found in one pass over /proc
            if pids := found.get(kind):
                interrupt(run, pids)
                run.wait(timeout=300)
                return kind
        assert time.time() < deadline
        time.sleep(0.02)
    return None


def ctrl_c(run: subprocess.Popen, pids: list[int]) -> None:
    """Ctrl-C in a terminal: SIGINT to the workflow's whole process group."""
    os.killpg(run.pid, signal.SIGINT)


def ctrl_c_twice(run: subprocess.Popen, pids: list[int]) -> None:
    """Ctrl-C, then Ctrl-C again while Snakemake cleans up."""
    ctrl_c(run, pids)
    time.sleep(0.2)
    if run.poll() is None:
        ctrl_c(run, pids)


def sigkill_job(run: subprocess.Popen, pids: list[int]) -> None:
    """The OOM killer or a preemption: SIGKILL to the job's processes only."""
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


def dumps(workdir: Path) -> list[Path]:
    return sorted((workdir / "results/tiny/runs").glob("*/seed0/features/*.npz"))


CHECKPOINTS = {"standard": {"epoch1.npz", "epoch2.npz", "epoch3.npz"}, "extended": {"epoch2.npz", "epoch4.npz"}}
JOB_KINDS = {  # every kind of job of the workflow, as its command line shows it, and how it is interrupted
    b"prepare_id.py": ctrl_c,
    b"prepare_ood.py": ctrl_c,
    b"train.py": ctrl_c,
    b"extract_features.py": sigkill_job,
    b"layer_analysis.py": ctrl_c,
    b"collapse_metrics.py": ctrl_c,
    b"ood_score.py": ctrl_c,
    b"ood_metrics.py": ctrl_c,
    b"ood_trajectory.py": ctrl_c,
    b"tsne.py": ctrl_c,
    b"figure.py": ctrl_c,
    b"tables.py": ctrl_c,
    b"depth_tables.py": ctrl_c,
    b"wrapper.tex": ctrl_c,  # a table typeset alone for the HTML report
    b"latexmk": ctrl_c,
}


@pytest.mark.workflow
def test_interrupted_at_every_kind_of_job_the_same_command_ends_with_an_uninterrupted_runs_artifacts(
    workflow, tmp_path
):
    """Each kind of job is interrupted once while it runs (Ctrl-C; SIGKILL for feature extraction), each time
    followed by the same command, until one ends; then Snakemake itself is killed outright during the report stage
    (`make paper` releases the lock it leaves), and the report stage it left is interrupted again on the restart,
    with a second Ctrl-C during Snakemake's clean-up.
    Every restart must go on, and the end must be byte-identical to the session's uninterrupted run (2 cores,
    both studies; here 1 core, the balanced study)."""
    config = {**TINY, "studies": ["balanced"], "layers": {"enabled": True}}  # the runs it compares, and their
    workdir = tiny_workdir(tmp_path / "interrupted", config)  # depth analysis (not in the session's run)
    (workdir / "tmp").mkdir()
    remaining = dict(JOB_KINDS)
    while True:
        kind = interrupt_first(start(workdir), workdir, remaining)
        if kind is None:
            break
        del remaining[kind]
        if kind == b"extract_features.py":  # a run's dumps are all there (job done) or none (killed job)
            for schedule, expected in CHECKPOINTS.items():
                present = {
                    p.name for p in (workdir / "results/tiny/runs" / schedule / "seed0" / "features").glob("*.npz")
                }
                assert present in (set(), expected), (schedule, present)
    assert not remaining, f"never seen running: {sorted(remaining)}"
    assert (workdir / "results/tiny/paper/paper.pdf").is_file()
    for table in ("history.csv", "collapse.csv", "ood/metrics.csv", "ood/trajectory.csv"):
        for schedule in ("standard", "extended"):
            ours, theirs = (w / "results/tiny/runs" / schedule / "seed0" / table for w in (workdir, workflow))
            assert ours.read_bytes() == theirs.read_bytes(), f"{schedule}/{table} differs"
    for ours, theirs in zip(dumps(workdir), dumps(workflow), strict=True):
        a, b = np.load(ours), np.load(theirs)
        assert all(np.array_equal(a[k], b[k]) for k in b.files), ours.name
    assert (workdir / "results/tiny/report/macros.tex").read_text() == (
        workflow / "results/tiny/report/macros.tex"
    ).read_text()
    killed = start(workdir, "--forcerun", "tables_and_macros", cores=2)  # Snakemake itself killed outright:
    assert interrupt_first(killed, workdir, {b"wrapper.tex": lambda run, pids: os.kill(run.pid, signal.SIGKILL)})
    assert (workdir / ".snakemake/locks").is_dir() and any((workdir / ".snakemake/locks").iterdir())  # left behind
    subprocess.run([sys.executable, ROOT / "tools/unlock_if_stale.py", workdir], check=True)  # as make paper does
    report = {b"wrapper.tex": ctrl_c_twice, b"latexmk": ctrl_c_twice}  # the report stage it left, where typeset
    assert interrupt_first(start(workdir, cores=2), workdir, report)  # tables and the compile run side by side
    assert start(workdir, cores=2).wait(timeout=600) == 0, (workdir / "tmp/snakemake.out").read_text()[-3000:]
    assert (workdir / "results/tiny/paper/paper.pdf").is_file()


def test_a_lock_is_released_only_when_no_snakemake_works_in_the_folder(tmp_path):
    """tools/unlock_if_stale.py: a lock without a live Snakemake in the folder is stale; with one, it is not."""
    sys.path.insert(0, str(ROOT / "tools"))
    from unlock_if_stale import stale_lock

    assert not stale_lock(tmp_path)
    (tmp_path / ".snakemake" / "locks").mkdir(parents=True)
    (tmp_path / ".snakemake" / "locks" / "0.input.lock").write_text("x\n")
    assert stale_lock(tmp_path)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "snakemake"], cwd=tmp_path)
    try:
        deadline = time.time() + 10
        while stale_lock(tmp_path) and time.time() < deadline:  # until the process shows in /proc
            time.sleep(0.05)
        assert not stale_lock(tmp_path)
    finally:
        live.kill()
