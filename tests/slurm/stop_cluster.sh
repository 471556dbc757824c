#!/usr/bin/env bash
# Stop the daemons tests/slurm/start_cluster.sh started in DIR, by the PIDs it recorded
# (jobs still running on the test cluster are cancelled first).
set -uo pipefail
DIR=${1:?usage: stop_cluster.sh DIR}
[ -f "$DIR/pids" ] || exit 0
SLURM_CONF="$DIR/slurm.conf" scancel --full --quiet --partition=test 2>/dev/null || true
# Reverse start order: slurmd, slurmctld, then munged.
tac "$DIR/pids" | while read -r name pid; do
  kill -TERM "$pid" 2>/dev/null || continue
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { echo "stop_cluster.sh: $name ($pid) ignored SIGTERM, killing" >&2; kill -KILL "$pid"; }
done
rm -f "$DIR/pids"
