#!/usr/bin/env bash
# Start a single-node SLURM cluster on loopback (munge, slurmctld, slurmd) for testing the cluster path,
# with job accounting as real clusters have it (slurmdbd on a private MariaDB), so that `sacct`, the
# executor's default status command, answers.
# The node declares two fake GPUs as generic resources, so GPU jobs are really scheduled as GPU jobs, and at
# least 8 CPUs whatever the machine has, so that a 4-CPU analysis job (profiles/slurm) fits as on a real node.
# Usage: tools/slurm/start.sh STATE_DIR   (as root; needs the Debian packages slurm-wlm, munge, slurmdbd and
#        mariadb-server, which `bash tools/setup.sh --with-slurm` installs)
# Stop:  tools/slurm/stop.sh STATE_DIR   (every daemon by the PID it wrote under STATE_DIR)
# The configuration goes to /etc/slurm (the default path, which the executor's job steps need: they run
# `srun` without SLURM_CONF); an existing configuration that is not this script's is never touched.
# MinJobAge=3600 also keeps every finished job, with its state and resources, visible to squeue/scontrol for
# an hour (for clusters without accounting the executor can use squeue, which the plugin deems reliable from
# MinJobAge >= 120 s), long enough for tests to read the records.
set -euo pipefail
state=$(realpath -m "${1:?usage: start.sh STATE_DIR}")
conf=/etc/slurm
marker="# written by nclab tools/slurm/start.sh"
if [ -f "$conf/slurm.conf" ] && ! grep -qx "$marker" "$conf/slurm.conf"; then
  echo "$conf/slurm.conf exists and is not a test cluster's: refusing to replace it" >&2
  exit 1
fi
mkdir -p "$state"/{spool,ctld,log} "$conf"
cpus=$(( $(nproc) > 8 ? $(nproc) : 8 ))  # at least 8 declared (config_overrides), as a real node has
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
db_port=3306 dbd_port=6819
for i in 0 1; do  # slurmd rejects regular files as GPU devices: character devices like /dev/null
  [ -e "$state/gpu$i" ] || mknod "$state/gpu$i" c 1 3
done
cat > "$conf/gres.conf" <<CONF
$marker
AutoDetect=off
NodeName=localhost Name=gpu File=$state/gpu0
NodeName=localhost Name=gpu File=$state/gpu1
CONF
cat > "$conf/slurm.conf" <<CONF
$marker
ClusterName=nclab-test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MinJobAge=3600
ReturnToService=2
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
GresTypes=gpu
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
JobCompType=jobcomp/filetxt
JobCompLoc=$state/log/jobcomp.txt
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$dbd_port
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb Gres=gpu:2 State=UNKNOWN
PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=localhost MaxTime=INFINITE State=UP
CONF
echo "$conf" > "$state/conf-dir"

# munge with the system's key and folders (the munge user must be able to read them); a key if none exists
if [ ! -f /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge
if ! [ -f /run/munge/munged.pid ] || ! kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; then
  runuser -u munge -- /usr/sbin/munged
  cp /run/munge/munged.pid "$state/munged.pid"  # stop.sh stops only a munged this script started
fi

# job accounting: MariaDB on a private data folder (loopback only), then slurmdbd, then the cluster's record.
# MariaDB runs as root: the state folder may lie below folders that its own user cannot enter (pytest's).
mkdir -p "$state/mysql-run"
if [ ! -d "$state/mysql/mysql" ]; then
  mariadb-install-db --user=root --datadir="$state/mysql" --auth-root-authentication-method=socket >/dev/null
fi
/usr/sbin/mariadbd --user=root --datadir="$state/mysql" --socket="$state/mysql-run/mysqld.sock" \
  --pid-file="$state/mariadb.pid" --bind-address=127.0.0.1 --port=$db_port \
  --log-error="$state/log/mariadb.log" </dev/null >>"$state/log/mariadb.out" 2>&1 &
for _ in $(seq 150); do [ -S "$state/mysql-run/mysqld.sock" ] && break; sleep 0.2; done
mariadb --socket="$state/mysql-run/mysqld.sock" -u root <<SQL
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'nclab-test';
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'nclab-test';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
SQL
cat > "$conf/slurmdbd.conf" <<CONF
$marker
AuthType=auth/munge
DbdHost=localhost
DbdPort=$dbd_port
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$db_port
StorageUser=slurm
StoragePass=nclab-test
StorageLoc=slurm_acct_db
PidFile=$state/slurmdbd.pid
LogFile=$state/log/slurmdbd.log
CONF
chmod 600 "$conf/slurmdbd.conf"
/usr/sbin/slurmdbd
for _ in $(seq 100); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.2; done
sacctmgr -i add cluster nclab-test >/dev/null 2>&1 || true  # already there when the state folder is reused
sacctmgr -i add account nclab-test cluster=nclab-test >/dev/null 2>&1 || true  # an account jobs may name
sacctmgr -i add user root account=nclab-test cluster=nclab-test >/dev/null 2>&1 || true

/usr/sbin/slurmctld -i
/usr/sbin/slurmd -N localhost
for _ in $(seq 100); do  # the node is idle within a second or two
  if sinfo -h -N -o %t 2>/dev/null | grep -qx idle; then
    echo "SLURM cluster up (partitions main and gpu, 2 fake GPUs, accounting, account nclab-test); state in $state"
    exit 0
  fi
  sleep 0.2
done
echo "SLURM node did not become idle; see $state/log" >&2
exit 1
