"""Paper-scale paths that run here: every preset's full DAG, and training killed and resumed for real."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import TINY, processes, tiny_workdir
from scratch import copy_workflow, stub_local_data

from nclab.data import TORCHVISION_SETS
from nclab.plan import longtail_grid

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted(p.stem for p in (ROOT / "presets").glob("*.yaml"))


def test_presets_exist():
    assert {"cifar100-ood", "cifar10-ood", "cifar10-lt", "cifar100-lt", "imagenet-lt", "synthetic-cifar"} <= set(
        PRESETS
    )


LAPTOP_PRESETS = (  # for any machine: the README's example (a small model on generated data) and the 28x28 studies
    "external-example",
    "mnist-ood",
    "fashionmnist-ood",
    "fashionmnist-lt",
)


@pytest.mark.parametrize("preset", sorted(set(PRESETS) - set(LAPTOP_PRESETS)))
def test_presets_train_on_cuda_or_stop(preset):
    """No paper-scale run falls back to the CPU without a word: every paper-scale preset asks for cuda."""
    assert yaml.safe_load((ROOT / "presets" / f"{preset}.yaml").read_text())["training"]["device"] == "cuda"


@pytest.mark.workflow
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_dry_run_plans_the_full_dag(tmp_path, preset):
    """Every preset plans its whole study, under its own results root alone (so no two presets plan each other's
    jobs): one job per run, score and OOD set (its planning time is a figure of benchmarks/dry_run.py, not an
    assertion here)."""
    copy_workflow(ROOT, tmp_path)
    config = yaml.safe_load((ROOT / "presets" / f"{preset}.yaml").read_text())
    stub_local_data(tmp_path, config)
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", f"presets/{preset}.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    planned = re.findall(r"^\s+(?:output|log|benchmark): (.+)$", out, re.M)
    assert planned and all(path.startswith(f"results/{preset}/") for line in planned for path in line.split(", "))
    counts = {
        line.split()[0]: int(line.split()[1])
        for line in out.splitlines()
        if len(line.split()) == 2 and line.split()[1].isdigit()
    }
    seeds = len(config.get("training", {}).get("seeds", [0]))
    if config["studies"] == ["external"]:
        runs = len(config["external"]["models"])
        assert counts["extract_external_features"] == runs and "train" not in counts
    elif config["studies"] == ["balanced"]:
        runs = seeds * len(config["schedules"])
        assert counts["train"] == counts["extract_features"] == runs
    else:
        lt = config["longtail"]
        groups = len(longtail_grid(lt["ratios"], lt["losses"], lt["strategies"]))
        runs = seeds * groups
        assert counts["train"] == counts["extract_features"] == runs
        assert counts["prepare_longtail"] == len(lt["ratios"])
        assert "tsne" not in counts and "tables_and_macros" not in counts
        if "etf" in lt["losses"]:  # etf keeps its classifier fixed: no proj / slerp runs on it
            assert groups == len(lt["ratios"]) * (len(lt["losses"]) * len(lt["strategies"]) - 2)
    present_ood = [s for s in config["data"]["ood_sets"] if s != "places365"]
    assert counts["collapse_metrics"] == runs
    assert counts["ood_scores"] == runs
    assert counts["prepare_ood"] == len(present_ood)
    downloaded = [s for s in [config["data"]["dataset"], *config["data"]["ood_sets"]] if s in TORCHVISION_SETS]
    assert counts.get("fetch_raw", 0) == len(downloaded)  # once each, on the submit host
    if "places365" in config["data"]["ood_sets"]:
        assert "optional OOD set 'places365' skipped" in out


RESUME_CONFIG = {  # the tiny network, a longer schedule to kill it in
    **TINY,
    "schedules": {
        "standard": {"scheduler": "cosine", "epochs": 2, "checkpoints": [1]},
        "extended": {"scheduler": "multistep", "epochs": 16, "milestones": [0.5], "checkpoints": [5, 12]},
    },
}
TARGET = "results/tiny/runs/extended/seed0/history.csv"
RUN = "results/tiny/runs/extended/seed0"


def train_only(workdir: Path, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "snakemake", TARGET, "--cores", "1", "--configfile", "tiny.yaml"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )


def saved_epochs(workdir: Path) -> int:
    state = workdir / "results/tiny/resume/runs/extended/seed0/state.pt"
    try:
        return len(torch.load(state, weights_only=True)["history"])
    except (FileNotFoundError, RuntimeError, EOFError):
        return 0


@pytest.mark.workflow
def test_training_killed_mid_run_resumes_to_identical_weights(tmp_path):
    """The job is SIGKILLed as a cluster preemption or the OOM killer would; the same command then resumes it."""
    reference = tiny_workdir(tmp_path / "reference", RESUME_CONFIG)
    done = train_only(reference)
    killed = tiny_workdir(tmp_path / "killed", RESUME_CONFIG)
    run = train_only(killed)
    deadline = time.time() + 300
    while saved_epochs(killed) < 6:  # killed past a checkpoint (epoch 5), aimed before the milestone (epoch 8)
        assert run.poll() is None and time.time() < deadline, run.stdout.read()
        time.sleep(0.2)
    pids = processes(b"train.py", killed)
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    assert run.wait(timeout=60) != 0
    assert not (killed / RUN / "checkpoints" / "epoch5.pt").exists()  # outputs appear only when training ends
    assert not (killed / TARGET).exists()
    assert done.wait(timeout=600) == 0, done.stdout.read()

    restarted = train_only(killed)  # the same command again
    assert restarted.wait(timeout=600) == 0, restarted.stdout.read()
    log = (killed / "results/tiny/logs/runs/extended/seed0/train.log").read_text()
    assert "resuming after epoch" in log
    assert not (killed / "results/tiny/resume/runs/extended/seed0").exists()  # state removed once finished
    pd.testing.assert_frame_equal(pd.read_csv(killed / TARGET), pd.read_csv(reference / TARGET))
    for epoch in (5, 12, 16):
        ours, theirs = (
            torch.load(w / RUN / "checkpoints" / f"epoch{epoch}.pt", weights_only=True)["state_dict"]
            for w in (killed, reference)
        )
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs), f"epoch {epoch} differs"
