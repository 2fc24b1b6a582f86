"""The cluster path against a real SLURM scheduler: a single-node cluster on loopback (tools/slurm/start.sh,
with two fake GPUs as generic resources) runs the tiny workflow through `profiles/slurm`.

Checks: every job except the local ones went through sbatch (the scheduler's own job records, kept by
MinJobAge); training and feature extraction were submitted with a GPU request and nothing else was; the PDF
is produced; the extended training, cancelled once while it runs (as a preemption would), is resubmitted and
the workflow completes. The command is the README's, with the test cluster's partition and a 2 s first status
check.
"""

import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from conftest import ROOT, TINY, tiny_workdir

pytestmark = pytest.mark.skipif(
    not (shutil.which("slurmctld") and shutil.which("slurmd") and shutil.which("munged") and os.geteuid() == 0),
    reason="SLURM is not installed here (tools/setup.sh installs slurm-wlm and munge with apt-get when run as "
           "root): the cluster integration test is skipped",
)
GPU_RULES = {f"{stage}_{schedule}" for stage in ("train", "extract_features")
             for schedule in ("standard", "extended", "longtail")}
LOCAL_RULES = {"paper", "all"}
CLUSTER = {"training": {"device": "auto"}, "cluster": {"seconds_per_epoch": 2, "mem_mb": 1000, "cpus_per_gpu": 1}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm")
    subprocess.run(["bash", str(ROOT / "tools/slurm/start.sh"), str(state)], check=True, timeout=120)
    yield state
    subprocess.run(["bash", str(ROOT / "tools/slurm/stop.sh"), str(state)], timeout=120)


def job_records() -> dict[str, dict[str, str]]:
    """Every job the scheduler knows (finished ones included): id -> fields of `scontrol show job`."""
    out = subprocess.run(["scontrol", "show", "job", "-o"], capture_output=True, text=True, check=True).stdout
    records = {}
    for line in out.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        records[fields["JobId"]] = fields
    return records


def test_tiny_workflow_runs_through_slurm_with_gpu_jobs_and_a_retry(cluster, tmp_path):
    workdir = tiny_workdir(tmp_path / "workflow", {**TINY, **CLUSTER})
    start = time.perf_counter()
    run = subprocess.Popen([sys.executable, "-m", "snakemake", "--workflow-profile", "profiles/slurm",
                            "--configfile", "tiny.yaml", "--slurm-status-command", "squeue",
                            "--slurm-init-seconds-before-status-checks", "2"],
                           cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cancelled = None
    while run.poll() is None and cancelled is None:  # cancel the extended training once, while it runs
        queue = subprocess.run(["squeue", "-h", "-o", "%i %k %T"], capture_output=True, text=True).stdout
        for job_id, comment, state in (line.split() for line in queue.splitlines()):
            if comment.startswith("rule_train_extended") and state == "RUNNING":
                subprocess.run(["scancel", job_id], check=True)
                cancelled = job_id
        time.sleep(0.5)
    log = run.communicate(timeout=900)[0]
    elapsed = time.perf_counter() - start
    print(f"SLURM integration run: {elapsed:.0f} s")  # a figure for the README (issue 5: under 10 min)
    assert run.returncode == 0, log[-5000:]
    assert cancelled, "the extended training was never seen running"
    assert (workdir / "results/paper/paper.pdf").read_bytes().startswith(b"%PDF")

    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+?)/", log)
    records = job_records()
    rules = {}
    for job_id, rule in submitted:
        assert job_id in records, f"no scheduler record of job {job_id} ({rule})"
        assert records[job_id]["Comment"].startswith(f"rule_{rule}")
        rules.setdefault(rule, []).append(records[job_id])
    planned = set(re.findall(r"^\s*(?:local)?rule (\w+):", log, re.M))
    assert set(rules) == planned - LOCAL_RULES  # every other job went through sbatch
    for rule, jobs in rules.items():
        for record in jobs:
            gpu = "gpu" in record.get("TresPerJob", "") or "gpu" in record.get("TresPerNode", "")
            assert gpu == (rule in GPU_RULES), (rule, record.get("TresPerJob"))
    states = sorted(r["JobState"] for r in rules["train_extended"])
    assert states == ["CANCELLED", "COMPLETED"] and records[cancelled]["JobState"] == "CANCELLED"
