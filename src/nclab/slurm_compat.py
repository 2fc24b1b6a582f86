"""Job states that sacct reports with a suffix, for snakemake-executor-plugin-slurm.

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
