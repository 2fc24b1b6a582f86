#!/usr/bin/env bash
# Start a single-node SLURM cluster on loopback (munge, slurmctld, slurmd) for testing the cluster path,
# with job accounting as real clusters have it (slurmdbd on a private MariaDB), so that `sacct`, the
# executor's default status command, answers.
# The node declares two fake GPUs as generic resources, so GPU jobs are really scheduled as GPU jobs, and at
# least 8 CPUs whatever the machine has, so that a 4-CPU analysis job (profiles/slurm) fits as on a real node.
# Usage: tools/slurm/start.sh STATE_DIR   (as root; needs the Debian packages slurm-wlm, munge, slurmdbd and
#        mariadb-server, which `bash tools/setup.sh --with-slurm` installs)
# Stop:  tools/slurm/stop.sh STATE_DIR   (every daemon by the PID it wrote under STATE_DIR)
# Everything lives in STATE_DIR: the configuration (STATE_DIR/etc/slurm.conf, with gres.conf and slurmdbd.conf
# beside it), spool, logs, PID files and the database, so a site's /etc/slurm is never read or written, and the
# daemons listen on free loopback ports, not a site's. Daemons and clients find the configuration through
# SLURM_CONF, which sbatch passes on to the jobs. The executor's job-step plugin (0.6.1) then drops every SLURM_
# variable but the job's identity before its `srun`, SLURM_CONF included, so STATE_DIR/bin holds an `srun` that
# restores it and runs the real one. Point clients at the cluster with
#        export SLURM_CONF=STATE_DIR/etc/slurm.conf PATH=STATE_DIR/bin:$PATH
set -euo pipefail
state=$(realpath -m "${1:?usage: start.sh STATE_DIR}")
conf=$state/etc
export SLURM_CONF=$conf/slurm.conf
mkdir -p "$state"/{spool,ctld,log,bin} "$conf"
cat > "$state/bin/srun" <<SCRIPT
#!/bin/sh
SLURM_CONF=$SLURM_CONF exec $(command -v srun) "\$@"
SCRIPT
chmod +x "$state/bin/srun"
cpus=$(( $(nproc) > 8 ? $(nproc) : 8 ))  # at least 8 declared (config_overrides), as a real node has
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
# four free loopback ports (the kernel's choice), for slurmctld, slurmd, slurmdbd and MariaDB
read -r ctld_port slurmd_port dbd_port db_port < <(python3 -c '
import socket
sockets = [socket.socket() for _ in range(4)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))')
for i in 0 1; do  # slurmd rejects regular files as GPU devices: character devices like /dev/null
  [ -e "$state/gpu$i" ] || mknod "$state/gpu$i" c 1 3
done
cat > "$conf/gres.conf" <<CONF
# the nclab test cluster of tools/slurm/start.sh
AutoDetect=off
NodeName=localhost Name=gpu File=$state/gpu0
NodeName=localhost Name=gpu File=$state/gpu1
CONF
cat > "$conf/slurm.conf" <<CONF
# the nclab test cluster of tools/slurm/start.sh
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
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
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
# the nclab test cluster of tools/slurm/start.sh
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
    echo "export SLURM_CONF=$SLURM_CONF PATH=$state/bin:\$PATH"
    exit 0
  fi
  sleep 0.2
done
echo "SLURM node did not become idle; see $state/log" >&2
exit 1
