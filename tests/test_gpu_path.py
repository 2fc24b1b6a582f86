"""The GPU path where it can run without a GPU: the torch build setup picks, and `make gpu-check`'s CPU version."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY, snakemake, tiny_workdir

ROOT = Path(__file__).resolve().parents[1]


def torch_build(tmp_path: Path, nvidia_smi: str | None = None, **env: str) -> subprocess.CompletedProcess:
    """What tools/setup.sh would install, with a stand-in nvidia-smi (a shell script body) on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if nvidia_smi is not None:
        (bin_dir / "nvidia-smi").write_text(f"#!/bin/sh\n{nvidia_smi}\n")
        (bin_dir / "nvidia-smi").chmod(0o755)
    environment = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), **env}
    return subprocess.run(
        ["bash", "tools/setup.sh", "--print-torch-build"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


GPU_LISTED = 'echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-5e1f2c3a-0000-0000-0000-000000000000)"'
DRIVER_DOWN = 'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver."; exit 9'


@pytest.mark.parametrize(
    "nvidia_smi, env, build",
    [
        (GPU_LISTED, {}, "cuda"),
        (DRIVER_DOWN, {}, "cpu"),  # a driver that does not answer is no GPU
        ("exit 0", {}, "cpu"),  # answers, lists nothing
        (None, {}, "cpu"),  # no nvidia-smi at all
        (GPU_LISTED, {"NCLAB_TORCH": "cpu"}, "cpu"),
        (None, {"NCLAB_TORCH": "cuda"}, "cuda"),
    ],
)
def test_setup_picks_the_torch_build_from_nvidia_smi_or_the_override(tmp_path, nvidia_smi, env, build):
    result = torch_build(tmp_path, nvidia_smi, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == build


def test_setup_refuses_an_unknown_torch_build(tmp_path):
    result = torch_build(tmp_path, None, NCLAB_TORCH="rocm")
    assert result.returncode != 0 and "NCLAB_TORCH must be cuda or cpu" in result.stderr


@pytest.mark.workflow  # its CPU version runs the synthetic preset's workflow
def test_gpu_check_without_a_gpu_says_so_and_runs_its_cpu_version(tmp_path):
    """`make gpu-check` as a user without a GPU runs it: it says so first, then its CPU version (the loops,
    the dumps, the workflow's GPU jobs) completes, so the command a GPU session relies on is known to work."""
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: make gpu-check runs the GPU version")
    figures = tmp_path / "gpu-check.json"
    result = subprocess.run(
        [
            "make",
            "--silent",
            "--no-print-directory",
            "gpu-check",  # also under `make test`
            f"GPU_CHECK_ARGS=--json {figures}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert out.startswith("NO GPU FOUND (this torch is a CPU build")
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("gpu-check: ") and "NO GPU" in summary and "img/s" in summary
    report = json.loads(figures.read_text())
    assert set(report["training"]) == {"fast", "fast, compiled", "reference"}
    assert all(loop["images_per_second"] > 0 for loop in report["training"].values())
    assert report["features"]["images"] == 3_500 and report["features"]["dump_seconds"] > 0
    assert report["workflow"]["ok"] and report["workflow"]["devices"] == ["cpu"]
    assert report["cpu_vs_gpu"]["test_accuracy"]["cpu"] > 0.5  # the synthetic classes are learnable


@pytest.mark.workflow
def test_a_cuda_run_without_cuda_stops_at_its_first_job_naming_the_key(tmp_path):
    """A preset's `training.device: cuda` on a machine without CUDA: the training job fails before it reads
    its data, its log naming training.device and both fixes; nothing is trained on the CPU."""
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    workdir = tiny_workdir(tmp_path, {**TINY, "training": {**TINY["training"], "device": "cuda"}})
    # --cores ends the --configfile list, so that the standard run's training is the target
    result = snakemake(workdir, "--cores", "1", "results/tiny/runs/standard/seed0/history.csv")
    assert result.returncode != 0
    log = (workdir / "results/tiny/logs/runs/standard/seed0/train.log").read_text()
    assert "training.device is 'cuda' but no CUDA device is available" in log
    assert "NCLAB_TORCH=cuda" in log and "training.device: cpu" in log
    assert "training " not in log.split("NoCudaError")[0]  # stopped before the first epoch's set-up
    assert not (workdir / "results/tiny/runs/standard/seed0/checkpoints").exists()
