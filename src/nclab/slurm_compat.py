"""What the SLURM path needs beyond what Snakemake and its executor plugin do alone: per-run job groups
(:func:`run_group`: one cluster submission bundles one run's CPU analysis) and job states that sacct reports
with a suffix (:func:`first_word_states`)."""

from __future__ import annotations

import sys
from typing import Any

PLUGIN = "snakemake_executor_plugin_slurm"


def run_group(workflow: Any, group: str, run: str) -> str:
    """The group of one run, ``<group>_<run with / as ->``, registered as an instance of ``group`` so that
    ``--group-components <group>=N`` merges a run's N unconnected parts into one submission.

    A group name with wildcards would give one group per run, registered by Snakemake as an instance of the
    pattern, but a long-tail run id holds slashes (``longtail/ir10/ce/proj``) and a group job whose name holds
    one cannot be submitted (its job script is named after it; plugin 2.8.0's error handler then fails on group
    jobs, and the workflow waits forever). Snakemake does not register a callable group's names as instances of
    anything, so this does it (``workflow.parent_groupids``, the mapping Snakemake fills for patterns).
    """
    name = f"{group}_{run.replace('/', '-')}"
    workflow.parent_groupids[name] = group
    return name


def first_word_states() -> bool:
    """Wrap the loaded SLURM executor plugin's status query so that every state is reduced to its first word,
    SLURM's state name; False when the plugin is not loaded.

    With job accounting, sacct reports a job cancelled by a user, an administrator or a preemption policy as
    ``CANCELLED by <uid>``; plugin 2.8.0 compares states with its failed states (``CANCELLED``, ``FAILED``, ...)
    by exact match, so such a job would never be seen as ended and the workflow would wait forever. A plugin
    that already handles the suffix is unaffected. Installed only in the process that runs the executor (the
    Snakefile calls it; jobs never query states).
    """
    plugin = sys.modules.get(PLUGIN)
    query = getattr(plugin, "query_job_status", None)
    if query is None:
        return False
    if getattr(query, "first_word_states", False):
        return True

    async def query_job_status(command: str, logger: Any) -> tuple[dict[str, str] | None, float | None]:
        states, duration = await query(command, logger)
        if states is not None:
            states = {job: state.split()[0] if state.strip() else state for job, state in states.items()}
        return states, duration

    query_job_status.first_word_states = True  # type: ignore[attr-defined]
    plugin.query_job_status = query_job_status
    return True
