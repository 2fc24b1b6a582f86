#!/usr/bin/env bash
# Stop the test cluster of tools/slurm/start.sh STATE_DIR, by the PIDs its daemons wrote there.
set -uo pipefail
state=$(realpath -m "${1:?usage: stop.sh STATE_DIR}")
pids=()
for pidfile in "$state/slurmd.pid" "$state/slurmctld.pid" "$state/slurmdbd.pid" "$state/mariadb.pid" "$state/munged.pid"; do
  if [ -f "$pidfile" ]; then
    pids+=("$(cat "$pidfile")")
    rm -f "$pidfile"
  fi
done
if [ ${#pids[@]} -gt 0 ]; then
  kill "${pids[@]}" 2>/dev/null  # all at once, then wait up to 5 s for them together
  for _ in $(seq 50); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
fi
echo "SLURM cluster in $state stopped"
