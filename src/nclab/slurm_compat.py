"""What the SLURM path needs beyond what Snakemake and its executor plugin do alone.

1. Per-run job groups (:func:`run_group`): one cluster submission bundles one run's CPU analysis.
2. Job states that sacct reports with a suffix (:func:`first_word_states`).

Per-run groups: a group name with wildcards (``group: "analysis_{schedule}_seed{seed}"``) gives one group per
run, and Snakemake registers each such name as an instance of the pattern, so that ``--group-components`` set
for the pattern applies to every run. But a long-tail run's schedule holds slashes (``longtail/ir10/ce/proj``),
and a group job whose name holds one cannot be submitted (its job script is named after it): the submission
raises, and plugin 2.8.0's error handler fails on group jobs in turn, so the workflow waits forever. A callable
group can replace the slashes, but Snakemake does not register a callable's names as instances of anything;
:func:`run_group` does it (``workflow.parent_groupids``, the mapping Snakemake fills for patterns).

Suffixed states:

With job accounting, ``sacct`` reports a job cancelled by a user (``scancel``, an administrator, a preemption
policy) as ``CANCELLED by <uid>``. The executor plugin (2.8.0, the newest release when this was written) compares
a state with its list of failed states (``CANCELLED``, ``FAILED``, ...) by exact match, so such a job is never
seen as ended: the workflow waits forever, with no job in the queue. :func:`first_word_states` wraps the
plugin's status query so that every state is reduced to its first word, SLURM's state name; a plugin that
already handles the suffix is unaffected. The wrapper is installed only in the process that runs the executor
(the Snakefile calls it; jobs never query states).
"""

from __future__ import annotations

import sys
from typing import Any

PLUGIN = "snakemake_executor_plugin_slurm"


def run_group(workflow: Any, group: str, run: str) -> str:
    """The group of one run, ``<group>_<run with / as ->``, registered as an instance of ``group`` so that
    ``--group-components <group>=N`` merges a run's N unconnected parts into one submission."""
    name = f"{group}_{run.replace('/', '-')}"
    workflow.parent_groupids[name] = group
    return name


def first_word_states() -> bool:
    """Wrap the loaded SLURM executor plugin's status query; False when the plugin is not loaded."""
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
