# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are used by the scripts that source this file
# Shared by up.sh and down.sh (sourced, not run). Defines where the stack keeps
# its state and how it starts and stops the processes it owns.
#
# Every long-running process the stack starts itself is recorded in
# $E2E_DIR/pids/<name>.pid as two lines: the PID and the resolved path of the
# binary it runs. stop_all kills exactly those PIDs, and only while
# /proc/<pid>/exe still names that binary, so a PID reused by an unrelated
# process after a crash is never signalled. The kwok cluster's own processes are
# owned by kwokctl and stopped with `kwokctl delete cluster`.

stack_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E2E_DIR=${E2E_DIR:-$stack_root/.e2e}
E2E_CLUSTER=${E2E_CLUSTER:-canaryop}
KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
ARGOCD_VERSION=${ARGOCD_VERSION:-v3.2.6}

KUBE_BIN=$stack_root/bin/k8s/$KUBE_VERSION
KWOK_BIN=$stack_root/bin/kwok/$KWOK_VERSION
ARGOCD_BIN=$stack_root/bin/argocd/$ARGOCD_VERSION
KUBECTL=$KUBE_BIN/kubectl
KWOKCTL=$KWOK_BIN/kwokctl

PIDS_DIR=$E2E_DIR/pids
LOGS_DIR=$E2E_DIR/logs
CMDS_DIR=$E2E_DIR/cmds
# kwokctl keeps each cluster under $KWOK_WORKDIR/clusters/<name> (pki, etcd
# data, pid files, logs); keeping it in the state dir keeps ~/.kwok untouched.
export KWOK_WORKDIR=$E2E_DIR/kwok
KWOK_CLUSTER_DIR=$KWOK_WORKDIR/clusters/$E2E_CLUSTER

log() { printf '%s stack: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# start_bg NAME BINARY ARGS...: runs BINARY in its own session (so a Ctrl-C in
# the caller's terminal reaches only the script, whose trap tears down in order),
# logs to $LOGS_DIR/NAME.log and records the PID. Environment for the process is
# whatever the caller exported; list the variables set for it in STACK_ENV.
start_bg() {
  local name=$1 bin=$2
  shift 2
  local exe
  exe=$(readlink -f "$bin")
  mkdir -p "$PIDS_DIR" "$LOGS_DIR" "$CMDS_DIR"
  # The command line and the variables named in STACK_ENV (the ones set for this
  # component; never the caller's whole environment, which may hold unrelated
  # secrets), for `ctl.sh start NAME` after a stop.
  {
    local var
    for var in ${STACK_ENV:-}; do
      printf 'export %s=%q\n' "$var" "${!var}"
    done
    printf 'start_args=('
    printf ' %q' "$bin" "$@"
    printf ' )\n'
  } >"$CMDS_DIR/$name.sh"
  chmod 600 "$CMDS_DIR/$name.sh"
  setsid "$bin" "$@" </dev/null >>"$LOGS_DIR/$name.log" 2>&1 &
  local pid=$!
  printf '%s\n%s\n' "$pid" "$exe" >"$PIDS_DIR/$name.pid"
  # setsid execs the binary in the same PID; wait for that exec so that the
  # recorded binary can be checked by stop_pid at any moment from now on.
  local i
  for ((i = 0; i < 100; i++)); do
    [ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" = "$exe" ] && return 0
    kill -0 "$pid" 2>/dev/null || die "$name exited at once; see $LOGS_DIR/$name.log"
    sleep 0.05
  done
  die "$name (pid $pid) did not start $exe"
}

# stop_pid FILE: stops the process recorded in FILE if it is still the recorded
# binary (SIGTERM, then SIGKILL after 10s), waits until it has exited, and
# removes FILE.
stop_pid() {
  local file=$1 name pid exe st
  name=$(basename "$file" .pid)
  { read -r pid && read -r exe; } <"$file" || { rm -f "$file"; return 0; }
  if [ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" != "$exe" ] || ! st=$(proc_stat "$pid"); then
    rm -f "$file"
    return 0
  fi
  stop_started "$pid" "${st#* }" "$name"
  rm -f "$file"
}

# stop_started PID START NAME: SIGTERM to PID if it is still the process that
# started at START, SIGKILL after 10s; returns once it has exited (says so
# when it had to kill, or when even SIGKILL did not end it within 10s).
stop_started() {
  local pid=$1 start=$2 name=$3
  kill -TERM "$pid" 2>/dev/null || true
  wait_gone "$pid" "$start" 10 && return 0
  log "$name (pid $pid) ignored SIGTERM for 10s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" "$start" 10 || log "$name (pid $pid) still runs 10s after SIGKILL"
}

# proc_stat PID: prints the process's state and start time (fields 3 and 22 of
# /proc/PID/stat); fails when there is no such process. The start time stays
# readable while a process exits (its exe link does not) and tells a reused
# PID from the process that was recorded.
proc_stat() {
  local s f
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }
  read -r -a f <<<"$s"
  printf '%s %s\n' "${f[0]}" "${f[19]}"
}

# wait_gone PID START SECONDS: waits until PID no longer runs the process that
# started at START (exited; a zombie has closed its ports and counts as
# exited); fails after SECONDS.
wait_gone() {
  local pid=$1 start=$2 deadline=$((SECONDS + $3)) st
  while st=$(proc_stat "$pid"); do
    [ "${st#* }" = "$start" ] || return 0
    [ "${st%% *}" = Z ] && return 0
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
  return 0
}

# pick_port VAR: sets VAR to a TCP port on 127.0.0.1 that nothing listens on and
# that this script has not handed out yet. The range stays below the one kwokctl
# picks its own ports from (32000+). (Not $(...): the taken list must persist.)
_ports_taken=" "
pick_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 12000))
    case $_ports_taken in *" $p "*) continue ;; esac
    port_open "$p" && continue
    _ports_taken+="$p "
    printf -v "$1" '%s' "$p"
    return 0
  done
  die "no free port found"
}

# wait_for DESCRIPTION TIMEOUT_SECONDS COMMAND...: polls COMMAND every 0.2s.
wait_for() {
  local what=$1 timeout=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "timed out after ${timeout}s waiting for $what"
    sleep 0.2
  done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
