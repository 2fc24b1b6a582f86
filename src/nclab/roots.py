"""Results roots: every configuration writes under ``results/<name>/`` and nowhere else (docs/reruns.md).

A root holds a record of the configuration that wrote it (``configuration.json``: the files and ``--config``
values it came from, and the validated configuration). Another configuration whose results would differ is
refused before any job runs, so that a smoke test can never overwrite a paper-scale run; editing the files
that wrote a root is not another configuration, and reruns what the edit changed.
"""

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

RESULTS = "results"
RECORD = "configuration.json"
NAME_KEY = "name"
# Keys that locate inputs or size jobs without changing any result: another copy of the same raw files (their
# manifest check still runs), or a cluster's memory and time limits.
NOT_IDENTIFYING = (("data", "root"), ("data", "download"), ("data", "imagenet_lt", "root"), ("cluster",))


def results_root(name: str) -> str:
    """The folder, relative to the workflow, that configuration ``name`` writes."""
    return f"{RESULTS}/{name}"


def configuration_name(config: Mapping, overrides: Mapping, configfiles: Sequence[Path]) -> str:
    """The name of the configuration: as set by a ``--configfile`` or ``--config`` (``overrides``, their merge);
    else the last ``--configfile``'s stem (a file of one's own that sets no name gets a root of its own); else
    config.yaml's."""
    if NAME_KEY in overrides or not configfiles:
        return config[NAME_KEY]
    return Path(configfiles[-1]).stem


def sources(configfiles: Sequence[Path], overrides: Mapping, basedir: Path) -> list[str]:
    """What a configuration is made of, in order: config.yaml, each ``--configfile`` (relative to the workflow
    when inside it) and each ``--config`` value."""
    files = []
    for path in configfiles:
        path = Path(os.path.abspath(path))
        files.append(str(path.relative_to(basedir)) if path.is_relative_to(basedir) else str(path))
    return ["config.yaml", *files, *(f"--config {key}={value}" for key, value in overrides.items())]


def identifying(config: Mapping) -> dict:
    """``config`` without the keys that change no result (NOT_IDENTIFYING), as plain JSON values."""
    config = json.loads(json.dumps(config))
    for path in NOT_IDENTIFYING:
        parent = config
        for key in path[:-1]:
            parent = parent.get(key) or {}
        parent.pop(path[-1], None)
    return config


def differing_keys(ours: object, theirs: object, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two configurations."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        keys = list(ours) + [k for k in theirs if k not in ours]
        return [d for k in keys for d in differing_keys(ours.get(k), theirs.get(k), f"{prefix}{k}.")]
    return [] if ours == theirs else [prefix.rstrip(".")]


def conflict(root: Path, made_of: list[str], config: Mapping) -> str | None:
    """Why the configuration ``made_of`` (its sources) must not write ``root``, or None if it may: the root is
    new, was written by the same sources (an edit), or by other sources that give the same results."""
    record_path = root / RECORD
    if not record_path.is_file():
        return None
    record = json.loads(record_path.read_text())
    if record["sources"] == made_of:
        return None
    keys = differing_keys(identifying(config), record["configuration"])
    if not keys:
        return None
    files = [s for s in made_of if not s.startswith("--config")]
    flag = f"--config {NAME_KEY}=<new name>"
    if len(files) > 1 and not any(s.startswith(f"--config {NAME_KEY}=") for s in made_of):
        change = f"set `{NAME_KEY}: <new name>` in {files[-1]} (or pass {flag})"
    else:
        change = f"pass {flag}"
    return (
        f"{root}/ holds the results of another configuration ({', '.join(record['sources'])}); this one "
        f"({', '.join(made_of)}) differs from it in {', '.join(keys[:6])}{' and more' if len(keys) > 6 else ''}, "
        f"and would overwrite them. Give it a results root of its own: {change}; or remove {root}/ if its "
        "results are no longer wanted."
    )


def write_record(root: Path, made_of: list[str], config: Mapping) -> None:
    """Record in ``root`` the configuration that writes it (whole, renamed into place)."""
    root.mkdir(parents=True, exist_ok=True)
    partial = root / f".{RECORD}.partial"
    record = {"sources": made_of, "configuration": identifying(config)}
    partial.write_text(json.dumps(record, indent=1) + "\n")
    partial.replace(root / RECORD)
