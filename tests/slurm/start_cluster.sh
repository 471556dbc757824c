#!/usr/bin/env bash
# A throw-away single-node SLURM cluster for the tests: munged, slurmctld and slurmd run as
# plain background daemons (no systemd) from a generated config in DIR; nothing under /etc
# is read or changed. Needs the Debian packages slurmctld slurmd slurm-client munge.
#
#   eval "$(bash tests/slurm/start_cluster.sh DIR)"   # sets SLURM_CONF and PATH
#   sbatch / squeue / snakemake --executor slurm ...  # now talk to the test cluster
#   bash tests/slurm/stop_cluster.sh DIR      # stops exactly the daemons started here
#
# The node is this machine (`hostname -s`) with its CPUs and memory, in partition `test`
# (default; DefMemPerCPU so a job without --mem does not take the whole node) with two fake
# GPUs (SLURM_TEST_GPUS): GRES gpu:2 whose `File=`s are character devices made with mknod
# (GRES files must be character devices; these are /dev/null's 1:3). No slurmdbd, so `sacct` does not work: use
# `squeue` for job status (MinJobAge=300 keeps finished jobs visible to it for 5 minutes).
set -euo pipefail

DIR=${1:?usage: start_cluster.sh DIR}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
NGPUS=${SLURM_TEST_GPUS:-2}  # fake GPUs on the node

for exe in munged slurmctld slurmd sbatch squeue scontrol; do
  command -v "$exe" >/dev/null || {
    echo "start_cluster.sh: '$exe' not found; install: apt-get install -y slurmctld slurmd slurm-client munge" >&2
    exit 2
  }
done
if [ "$(id -u)" != 0 ]; then
  echo "start_cluster.sh: must run as root (slurmd starts jobs as their user; mknod for the fake GPU)" >&2
  exit 2
fi

HOST=$(hostname -s)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
CTLD_PORT=$(free_port)
SLURMD_PORT=$(free_port)
# RealMemory as slurmd itself measures it (a larger value would drain the node).
REALMEM=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -1)
CPUS=$(slurmd -C | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' | head -1)
DEFMEM=$((REALMEM / CPUS / 4))  # a job without --mem gets a quarter of the node's memory per CPU

mkdir -p "$DIR"/{munge,spool/ctld,spool/d,log,dev}
chmod 700 "$DIR"/munge

# A private munge key and socket: the system's munged (if any) is left alone.
dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$DIR/munge/munge.key"

GRES_LINES=""
for ((i = 0; i < NGPUS; i++)); do
  [ -c "$DIR/dev/fakegpu$i" ] || mknod "$DIR/dev/fakegpu$i" c 1 3
  GRES_LINES+="NodeName=$HOST Name=gpu File=$DIR/dev/fakegpu$i"$'\n'
done
printf '%s' "$GRES_LINES" >"$DIR/gres.conf"

cat >"$DIR/slurm.conf" <<CONF
ClusterName=lasertest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$DIR/spool/ctld
SlurmdSpoolDir=$DIR/spool/d
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=300
MpiDefault=none
GresTypes=gpu
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$REALMEM Gres=gpu:$NGPUS State=UNKNOWN
PartitionName=test Nodes=$HOST Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=$DEFMEM
CONF
export SLURM_CONF="$DIR/slurm.conf"

# Client commands that find this config without SLURM_CONF: the SLURM jobstep executor
# clears every SLURM_* variable (SLURM_CONF too) before its nested `srun`, which on a real
# cluster finds /etc/slurm/slurm.conf. DIR/bin goes first on PATH (sbatch --export=ALL).
mkdir -p "$DIR/bin"
for exe in srun sbatch squeue scancel scontrol sinfo; do
  printf '#!/bin/sh\nexport SLURM_CONF=%s\nexec %s "$@"\n' "$SLURM_CONF" "$(command -v "$exe")" >"$DIR/bin/$exe"
  chmod +x "$DIR/bin/$exe"
done

: >"$DIR/pids"
start() {  # name, command...: run in the foreground mode of the daemon, in the background here
  local name=$1
  shift
  "$@" >"$DIR/log/$name.out" 2>&1 &
  echo "$name $!" >>"$DIR/pids"
}
start munged munged --foreground --force --socket="$DIR/munge/munge.socket" \
  --key-file="$DIR/munge/munge.key" --pid-file="$DIR/munge/munged.pid" \
  --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
for _ in $(seq 50); do [ -S "$DIR/munge/munge.socket" ] && break; sleep 0.1; done
start slurmctld slurmctld -D -f "$SLURM_CONF"
start slurmd slurmd -D -f "$SLURM_CONF"

# Ready when the node accepts jobs.
for _ in $(seq 60); do
  state=$(sinfo -h -n "$HOST" -o %t 2>/dev/null || true)
  case "$state" in
    idle|mix|alloc)
      echo "export SLURM_CONF=$SLURM_CONF PATH=$DIR/bin:\$PATH"
      exit 0 ;;
  esac
  sleep 1
done
echo "start_cluster.sh: node not idle after 60 s (state: '${state:-none}'); logs in $DIR/log" >&2
tail -n 20 "$DIR"/log/*.log "$DIR"/log/*.out >&2 || true
bash "$(dirname "$0")/stop_cluster.sh" "$DIR"
exit 1
