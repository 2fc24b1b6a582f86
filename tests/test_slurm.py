"""The cluster path against a real SLURM scheduler: a single-node cluster on loopback with job accounting
(tools/slurm/start.sh: munge, slurmdbd on a private MariaDB, slurmctld, slurmd with two fake GPUs as generic
resources) runs the tiny workflow as docs/slurm.md says: a site profile copied from
`profiles/slurm` with its partition and account edited. The cluster runs beside a site's SLURM: its
configuration is private (SLURM_CONF), its ports free ones, and /etc/slurm must be byte-identical afterwards.
Where the cluster cannot start (no daemons, not root, start-up failure), the tests are skipped with the reason;
.ci/run sets NCLAB_REQUIRE_SLURM=1 to make that a failure.

Checks: the executor's default status command (sacct) is used; a running training job and a running feature
job, each cancelled once (sacct then reports `CANCELLED by 0`, which the executor plugin 2.8.0 alone never takes
for an ended job), are resubmitted and the workflow completes; every job except the local ones went through
sbatch, in the site profile's partition and account, with the profile's time limits and memory kept;
training and feature extraction requested a GPU and nothing else did; each run's CPU analysis (OOD scores, OOD
metrics, collapse tables) went as one group job of 4 CPUs; the PDF is produced. A second, short run
checks the squeue status command for clusters without accounting.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, TINY, tiny_workdir

pytestmark = pytest.mark.workflow
DAEMONS = ("slurmctld", "slurmd", "munged", "slurmdbd", "mariadbd")
SITE_CONF = Path("/etc/slurm")  # a site's SLURM configuration, if any: never read, written or left changed
GPU_RULES = {"train", "extract_features", "layer_analysis"}
LOCAL_RULES = {"paper", "typeset_table", "all"}
ANALYSIS_RULES = {
    "ood_scores",
    "ood_metrics",
    "ood_trajectory",
    "collapse_metrics",
}  # one group job per run (profiles/slurm)
# The long-tail study alone: its runs go through the same rules as the balanced ones (train, extract_features,
# the analysis group), and their ids hold slashes, which the job and group names must survive.
CLUSTER = {
    "studies": ["longtail"],
    "training": {"seeds": [0], "device": "auto"},
    "cluster": {"seconds_per_epoch": 2, "mem_mb": 1000, "cpus_per_gpu": 1},
}
CANCEL = ("train", "extract_features")  # one job of each cancelled once, while it runs
# The jobs ask for one CPU each (a cluster's cgroups would hold them to it); sbatch passes them this environment.
# One thread also keeps them from slowing the suite's other workers (make test), whose torch threads spin-wait.
ONE_THREAD = {variable: "1" for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def unavailable() -> str | None:
    """Why the test cluster cannot start here, or None."""
    missing = [d for d in DAEMONS if not shutil.which(d)]
    if missing:
        return (
            f"SLURM with accounting is not installed here ({', '.join(missing)} not found; bash tools/setup.sh "
            "--with-slurm installs slurm-wlm, munge, slurmdbd and mariadb-server with apt-get when run as root)"
        )
    if os.geteuid() != 0:
        return "the test cluster's daemons start as root, and this is not root"
    return None


def not_here(reason: str) -> None:
    """Skip with the reason; under NCLAB_REQUIRE_SLURM=1 (.ci/run) fail instead, so CI cannot skip silently."""
    message = f"the SLURM integration tests cannot run here: {reason}"
    if os.environ.get("NCLAB_REQUIRE_SLURM") == "1":
        pytest.fail(message + " (NCLAB_REQUIRE_SLURM=1)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> dict[str, str]:
    """The environment of a client of the test cluster: SLURM_CONF names its private configuration, its `srun`
    comes first on PATH, and no other SLURM_ variable is passed on (inside a site's job, the executor would
    otherwise drop SLURM_CONF)."""
    if reason := unavailable():
        not_here(reason)
    site_before = files_under(SITE_CONF)
    state = tmp_path_factory.mktemp("slurm")
    start = subprocess.run(
        ["bash", str(ROOT / "tools/slurm/start.sh"), str(state)], capture_output=True, text=True, timeout=180
    )
    if start.returncode != 0:
        subprocess.run(["bash", str(ROOT / "tools/slurm/stop.sh"), str(state)], timeout=120)
        not_here(f"tools/slurm/start.sh failed ({start.stderr.strip()[-500:]}); its logs are in {state}/log")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    path = f"{state / 'bin'}{os.pathsep}{environment['PATH']}"  # its srun keeps SLURM_CONF (tools/slurm/start.sh)
    yield {**environment, **ONE_THREAD, "SLURM_CONF": str(state / "etc/slurm.conf"), "PATH": path}
    subprocess.run(["bash", str(ROOT / "tools/slurm/stop.sh"), str(state)], timeout=120)
    assert files_under(SITE_CONF) == site_before, f"{SITE_CONF} changed during the SLURM tests"


def job_records(cluster: dict[str, str]) -> dict[str, dict[str, str]]:
    """Every job the scheduler knows (finished ones included): id -> fields of `scontrol show job`."""
    out = subprocess.run(
        ["scontrol", "show", "job", "-o"], capture_output=True, text=True, check=True, env=cluster
    ).stdout
    records = {}
    for line in out.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        records[fields["JobId"]] = fields
    return records


def site_profile(workdir: Path) -> None:
    """docs/slurm.md: a copy of profiles/slurm with the site's partition and account set."""
    shutil.copytree(workdir / "profiles/slurm", workdir / "profiles/site")
    config_path = workdir / "profiles/site/config.yaml"
    text = config_path.read_text()
    text = text.replace("slurm_partition: main ", "slurm_partition: gpu ").replace(
        "# slurm_account: mylab ", "slurm_account: nclab-test "
    )
    config_path.write_text(text)
    resources = yaml.safe_load(text)["default-resources"]
    assert (resources["slurm_partition"], resources["slurm_account"]) == ("gpu", "nclab-test")


def snakemake(cluster: dict[str, str], workdir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "snakemake",
            *args,
            "--configfile",
            "tiny.yaml",
            "--slurm-init-seconds-before-status-checks",
            "2",
        ],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cluster,
    )


def test_tiny_workflow_runs_through_slurm_with_accounting_gpu_jobs_and_retries(cluster, tmp_path):
    """The cluster path on a real scheduler (the module docstring lists the checks): a job cancelled while it
    runs is resubmitted and the workflow completes; most of its time is the scheduler's status checks."""
    workdir = tiny_workdir(tmp_path / "workflow", {**TINY, **CLUSTER})
    site_profile(workdir)
    start = time.perf_counter()
    run = snakemake(cluster, workdir, "--workflow-profile", "profiles/site")
    cancelled: dict[str, str] = {}
    while run.poll() is None and len(cancelled) < len(CANCEL):
        queue = subprocess.run(["squeue", "-h", "-o", "%i %k %T"], capture_output=True, text=True, env=cluster).stdout
        for job_id, comment, state in (line.split() for line in queue.splitlines()):
            rule = next((r for r in CANCEL if comment.startswith(f"rule_{r}")), None)
            if rule and rule not in cancelled and state == "RUNNING":
                subprocess.run(["scancel", job_id], check=True, env=cluster)
                cancelled[rule] = job_id
        time.sleep(0.5)
    log = run.communicate(timeout=1200)[0]
    elapsed = time.perf_counter() - start
    print(f"SLURM integration run: {elapsed:.0f} s")  # printed for the log (pytest -s)
    assert run.returncode == 0, log[-5000:]
    assert set(cancelled) == set(CANCEL), f"never seen running: {set(CANCEL) - set(cancelled)}"
    assert "--slurm-status-command" not in " ".join(run.args) and "Falling back to 'squeue'" not in log
    assert (workdir / "results/tiny/paper/paper.pdf").read_bytes().startswith(b"%PDF")

    for job_id in cancelled.values():  # what sacct says of them: the state the plugin alone never ends
        state = subprocess.run(
            ["sacct", "-X", "-n", "-P", "-o", "State", "-j", job_id],
            capture_output=True,
            text=True,
            check=True,
            env=cluster,
        ).stdout.strip()
        assert state.startswith("CANCELLED by "), state
    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/(rule|group)_([\w-]+?)/", log)
    records = job_records(cluster)
    rules, groups = {}, {}
    for job_id, kind, name in submitted:
        assert job_id in records, f"no scheduler record of job {job_id} ({name})"
        record = records[job_id]
        assert record["Comment"].startswith(f"rule_{name}")
        assert (record["Partition"], record["Account"]) == ("gpu", "nclab-test"), record
        (rules if kind == "rule" else groups).setdefault(name, []).append(record)
    planned = set(re.findall(r"^\s*(?:local)?rule (\w+):", log, re.M))
    assert set(rules) == planned - LOCAL_RULES - ANALYSIS_RULES  # every other job went through sbatch, alone
    for rule, jobs in rules.items():
        for record in jobs:
            gpu = "gpu" in record.get("TresPerJob", "") or "gpu" in record.get("TresPerNode", "")
            assert gpu == (rule in GPU_RULES), (rule, record.get("TresPerJob"))
    runs = ["longtail-ir5-ce-none-seed0", "longtail-ir5-ce-proj-seed0"]
    analysis = "_".join(sorted(ANALYSIS_RULES))
    assert sorted(groups) == sorted(f"analysis_{run}_{analysis}" for run in runs)  # one submission per run
    for (record,) in groups.values():  # the detectors' job beside the collapse job, then the metric table
        assert (record["NumCPUs"], record["MinMemoryNode"]) == ("2", "4000M"), record  # 2 x cpu_mem_mb
        assert record["TimeLimit"] == "01:00:00" and "gpu" not in record.get("TresPerJob", ""), record
    first_tries = {rule: jobs[0] for rule, jobs in rules.items()}
    assert first_tries["longtail_tables_and_macros"]["TimeLimit"] == "00:30:00"  # the profile's runtime, kept
    assert first_tries["longtail_tables_and_macros"]["MinMemoryNode"] == "2000M"  # the profile's mem_mb, kept
    assert first_tries["prepare_id"]["MinMemoryNode"] == "2000M"  # cluster.cpu_mem_mb of config.yaml
    for rule, job_id in cancelled.items():  # the same job (rule and wildcards: its comment), tried twice
        tries = [r for r in rules[rule] if r["Comment"] == records[job_id]["Comment"]]
        states = sorted(r["JobState"] for r in tries)
        assert states == ["CANCELLED", "COMPLETED"] and records[job_id]["JobState"] == "CANCELLED", (rule, states)
        retry = next(r for r in tries if r["JobState"] == "COMPLETED")
        assert retry["MinMemoryNode"] == "2000M"  # cluster.mem_mb (1000) x attempt 2


def test_without_accounting_squeue_status_still_works(cluster, tmp_path):
    """For clusters without job accounting: docs/slurm.md's `--slurm-status-command squeue`, on a short target."""
    workdir = tiny_workdir(tmp_path / "workflow", {**TINY, **CLUSTER})
    run = snakemake(
        cluster,
        workdir,
        "--workflow-profile",
        "profiles/slurm",
        "--slurm-status-command",
        "squeue",
        "--until",
        "prepare_ood",
    )
    log = run.communicate(timeout=600)[0]
    assert run.returncode == 0, log[-5000:]
    assert len(re.findall(r"submitted with SLURM jobid", log)) == 2  # the two OOD sets
