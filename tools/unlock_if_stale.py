"""Before `make paper`: release Snakemake's lock on this folder when no Snakemake process of this machine works
in it. A Snakemake killed outright (SIGKILL, a closed terminal, the OOM killer) leaves its lock behind, and the
same command would stop with "Directory cannot be locked"; a lock held by a live run is left alone.

Usage: python tools/unlock_if_stale.py [FOLDER]
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def snakemake_processes(folder: Path) -> list[int]:
    """PIDs of this machine's processes whose command line names snakemake and whose working directory is
    ``folder``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if b"snakemake" in (proc / "cmdline").read_bytes() and Path(os.readlink(proc / "cwd")) == folder:
                found.append(int(proc.name))
        except OSError:  # the process ended meanwhile, or is not ours to read
            continue
    return found


def stale_lock(folder: Path) -> bool:
    """Whether ``folder`` holds a Snakemake lock that no Snakemake process of this machine holds."""
    locks = folder / ".snakemake" / "locks"
    return locks.is_dir() and any(locks.iterdir()) and not snakemake_processes(folder)


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    if stale_lock(folder):
        print(f"unlock_if_stale: no Snakemake runs in {folder}; releasing the lock a killed run left behind")
        subprocess.run([sys.executable, "-m", "snakemake", "--unlock"], cwd=folder, check=True, capture_output=True)


if __name__ == "__main__":
    main()
