#!/usr/bin/env bash
# A real single-node SLURM cluster (with accounting) on 127.0.0.1, for the `slurm` tests.
#
#   bash scripts/slurm-local.sh up       install Debian's packages if missing, start the daemons
#   bash scripts/slurm-local.sh down     stop them (by the PIDs recorded at start)
#   bash scripts/slurm-local.sh status   exit 0 when every daemon runs
#
# Needs root (Debian 12, no systemd). Everything lives under $SLURM_LOCAL_BASE
# (default /tmp/fewshot-slurm); /etc/slurm/{slurm,slurmdbd}.conf become symlinks into it so that
# sbatch/sacct find the cluster without SLURM_CONF. Idempotent: `up` on a running cluster and
# `down` on a stopped one do nothing. Knobs: SLURM_CPUS (CPUs the node advertises, default
# nproc), SLURM_LOCAL_DB_PORT (MariaDB, default 3306). Bring-up: ~45 s with the install, ~3 s without.
set -euo pipefail

BASE=${SLURM_LOCAL_BASE:-/tmp/fewshot-slurm}
CLUSTER=fewshot
HOST=$(hostname -s)
CPUS=${SLURM_CPUS:-$(nproc)}
DB_PORT=${SLURM_LOCAL_DB_PORT:-3306}
DB_PASS=fewshot-local  # the local MariaDB listens on 127.0.0.1 only
PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)  # start order; stopped in reverse

log() { echo "slurm-local: $*" >&2; }
die() { log "error: $*"; exit 1; }

pidfile() { echo "$BASE/pids/$1.pid"; }

# True when the daemon recorded under $1 runs: PID alive, still that program, not a zombie
# (a container's PID 1 may never reap the daemons once this script has exited).
running() {
  local pid stat
  pid=$(cat "$(pidfile "$1")" 2>/dev/null) || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && [ "$(awk '{print $1}' <<<"${stat##*)}")" != Z ]
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.2 s.
wait_for() {
  local secs=$1 what=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "timed out after ${secs}s waiting for $what (logs: $BASE/log)"
    sleep 0.2
  done
}

install_packages() {
  local missing=0
  for bin in munged slurmctld slurmd sbatch slurmdbd mariadbd; do
    command -v "$bin" >/dev/null || missing=1
  done
  [ "$missing" = 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "SLURM packages missing and not root; install: ${PACKAGES[*]}"
  log "installing ${PACKAGES[*]}"
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then  # no systemd: apt must not try to start the services
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && created=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null; }; then
    [ "$created" = 0 ] || rm -f "$policy"
    die "apt-get install of ${PACKAGES[*]} failed"
  fi
  [ "$created" = 0 ] || rm -f "$policy"
}

# Place /etc/slurm/$1 as a symlink to our copy, refusing to replace a real admin-owned file.
link_conf() {
  local target=/etc/slurm/$1
  mkdir -p /etc/slurm
  if [ -e "$target" ] && [ ! -L "$target" ]; then
    die "$target exists and is not ours; move it away to use the local test cluster"
  fi
  ln -sfn "$BASE/etc/$1" "$target"
}

write_configs() {
  mkdir -p "$BASE"/{etc,state,spool,log,pids,run}
  local mem_mb
  mem_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
  cat >"$BASE/etc/slurm.conf" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
AuthInfo=cred_expire=10
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool
SlurmctldPidFile=$BASE/run/slurmctld.pid
SlurmdPidFile=$BASE/run/slurmd.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=2
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=10
MailProg=/bin/true
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  cat >"$BASE/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
PidFile=$BASE/run/slurmdbd.pid
LogFile=$BASE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$BASE/etc/slurmdbd.conf"
  link_conf slurm.conf
  link_conf slurmdbd.conf
}

# start NAME COMMAND...: run COMMAND in the foreground of its own session; record its PID.
start() {
  local name=$1
  shift
  running "$name" && return 0
  setsid "$@" >>"$BASE/log/$name.out" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge && chown munge:munge /run/munge
  start munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F
  wait_for 15 munged munge -n
}

sql() { mariadb --no-defaults -uroot -S "$BASE/run/mysqld.sock" -e "$1"; }

start_mariadb() {
  if [ ! -d "$BASE/mysql/mysql" ]; then
    mariadb-install-db --no-defaults --datadir="$BASE/mysql" --user=root \
      --auth-root-authentication-method=socket >"$BASE/log/mariadb-install.out" 2>&1 \
      || die "mariadb-install-db failed (see $BASE/log/mariadb-install.out)"
  fi
  start mariadbd "$(command -v mariadbd)" --no-defaults --datadir="$BASE/mysql" --user=root \
    --socket="$BASE/run/mysqld.sock" --port="$DB_PORT" --bind-address=127.0.0.1 \
    --pid-file="$BASE/run/mariadbd.pid" --log-error="$BASE/log/mariadb.log"
  wait_for 60 MariaDB sql "SELECT 1"
  sql "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
       CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
       CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
       GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
       GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
}

start_slurm() {
  start slurmdbd "$(command -v slurmdbd)" -D
  wait_for 60 slurmdbd sacctmgr -n list cluster
  if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
  fi
  start slurmctld "$(command -v slurmctld)" -D
  wait_for 60 slurmctld scontrol ping
  start slurmd "$(command -v slurmd)" -D -N "$HOST"
  wait_for 60 "node $HOST idle" node_idle
}

node_idle() {
  local state
  state=$(sinfo -h -n "$HOST" -o %t)
  case "$state" in
    idle*|mix*|alloc*) return 0 ;;
    down*|drain*) scontrol update nodename="$HOST" state=resume; return 1 ;;
    *) return 1 ;;
  esac
}

cmd_up() {
  local t0=$SECONDS
  install_packages
  write_configs
  start_munge
  start_mariadb
  start_slurm
  log "cluster $CLUSTER up on 127.0.0.1 ($CPUS CPUs, partition debug) in $((SECONDS - t0))s; base $BASE"
}

cmd_down() {
  local i name pid
  for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
    name=${DAEMONS[i]}
    if running "$name"; then
      pid=$(cat "$(pidfile "$name")")
      kill -TERM "$pid"
      for _ in $(seq 100); do running "$name" || break; sleep 0.1; done
      running "$name" && kill -KILL "$pid"
    fi
    rm -f "$(pidfile "$name")"
  done
  log "cluster stopped"
}

cmd_status() {
  local rc=0 name
  for name in "${DAEMONS[@]}"; do
    if running "$name"; then echo "$name: running (pid $(cat "$(pidfile "$name")"))"
    else echo "$name: stopped"; rc=3; fi
  done
  return $rc
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
