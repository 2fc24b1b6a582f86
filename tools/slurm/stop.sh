#!/usr/bin/env bash
# Stop the test cluster of tools/slurm/start.sh STATE_DIR, by the PIDs its daemons wrote there.
set -uo pipefail
state=$(realpath -m "${1:?usage: stop.sh STATE_DIR}")
for pidfile in "$state/slurmd.pid" "$state/slurmctld.pid" "$state/slurmdbd.pid" "$state/mariadb.pid" "$state/munged.pid"; do
  if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$pidfile"
  fi
done
marker="# written by nclab tools/slurm/start.sh"
for file in /etc/slurm/slurm.conf /etc/slurm/gres.conf /etc/slurm/slurmdbd.conf; do
  if [ -f "$file" ] && grep -qx "$marker" "$file"; then rm -f "$file"; fi
done
echo "SLURM cluster in $state stopped"
