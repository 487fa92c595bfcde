#!/usr/bin/env bash
# A 3-node RabbitMQ cluster on this machine, for trying orbit against a cluster and for the
# fault suite (test/faults/cluster.test.ts drives this script).
#
#   scripts/cluster.sh start          start 3 nodes and join them into one cluster
#   scripts/cluster.sh status         which nodes run, and the cluster as node 1 (or any live node) sees it
#   scripts/cluster.sh urls           the AMQP URLs, comma-separated (for amqp.url / --amqp-url)
#   scripts/cluster.sh kill N         SIGKILL node N (1-3): a crash, no clean shutdown
#   scripts/cluster.sh down           each node that is not running, one per line: N, a tab, why
#   scripts/cluster.sh restart N      start node N again on its data dir (after kill); it rejoins
#   scripts/cluster.sh stop           stop every node and remove the state dir
#
# Each node has its own name, AMQP port, Erlang distribution port and data dir; all listen on
# 127.0.0.1 only. The machine's shared node (rabbit@localhost, port 5672) is never addressed:
# every rabbitmqctl call names a node of this cluster with -n, and names are checked.
#
# Settings (environment):
#   ORBIT_CLUSTER_DIR         state dir (nodes' mnesia, logs, configs)  [/tmp/orbit-cluster]
#   ORBIT_CLUSTER_NAME        node name prefix: nodes are <name>-1@localhost …  [orbit-cluster]
#   ORBIT_CLUSTER_PORTS       3 AMQP ports          ["5681 5682 5683"]
#   ORBIT_CLUSTER_DIST_PORTS  3 distribution ports  ["25681 25682 25683"]
#   ORBIT_CLUSTER_MANAGEMENT_PORTS  3 ports for the management plugin (HTTP API), or empty
#                             for none  [""]
#   ORBIT_CLUSTER_TIMEOUT     seconds to wait for a node to boot  [90]
#   ORBIT_CLUSTER_RABBITMQ    3: the machine's RabbitMQ; 4: RabbitMQ 4.0 from the root that
#                             scripts/rabbitmq4-root.sh builds  [3]
#   ORBIT_RABBITMQ4_ROOT      that root  [/var/cache/orbit/rabbitmq4-root]
#
# How it runs (Debian's rabbitmq-server as root): /usr/sbin/rabbitmq-server and rabbitmqctl
# re-run themselves as user `rabbitmq` with su, keeping the environment, so every node and
# every CLI call share /var/lib/rabbitmq/.erlang.cookie — which is what lets the nodes join.
# RABBITMQ_CONF_ENV_FILE points at an empty file so /etc/rabbitmq/rabbitmq-env.conf (which
# names the shared node) is not read. Run as root, or as user rabbitmq.
#
# With ORBIT_CLUSTER_RABBITMQ=4 the nodes run from the RabbitMQ 4 root as
# scripts/rabbitmq4-node.sh runs one: `chroot <root> env … rabbitmq-server`, the state dir
# inside the root (default <root>/var/lib/orbit-nodes/<name>; ORBIT_CLUSTER_DIR must be under
# <root>/ too), owned by the root's rabbitmq user, and every CLI call is the root's
# rabbitmqctl (the root's cookie, shared by the 3 nodes). Run as root.
set -euo pipefail

NAME=${ORBIT_CLUSTER_NAME:-orbit-cluster}
RABBITMQ=${ORBIT_CLUSTER_RABBITMQ:-3}
ROOT=
case $RABBITMQ in
  3) DIR=${ORBIT_CLUSTER_DIR:-/tmp/orbit-cluster} ;;
  4)
    ROOT=${ORBIT_RABBITMQ4_ROOT:-/var/cache/orbit/rabbitmq4-root}
    [[ -f $ROOT/.orbit-ready && -x $ROOT/usr/sbin/rabbitmq-server ]] ||
      { echo "cluster.sh: no RabbitMQ 4 root at $ROOT (run scripts/rabbitmq4-root.sh)" >&2; exit 1; }
    DIR=${ORBIT_CLUSTER_DIR:-$ROOT/var/lib/orbit-nodes/$NAME}
    [[ $DIR == "$ROOT"/?* ]] || { echo "cluster.sh: ORBIT_CLUSTER_DIR must be inside $ROOT for RabbitMQ 4 nodes" >&2; exit 1; }
    ;;
  *) echo "cluster.sh: ORBIT_CLUSTER_RABBITMQ must be 3 or 4" >&2; exit 1 ;;
esac
read -r -a PORTS <<<"${ORBIT_CLUSTER_PORTS:-5681 5682 5683}"
read -r -a DIST_PORTS <<<"${ORBIT_CLUSTER_DIST_PORTS:-25681 25682 25683}"
read -r -a MANAGEMENT_PORTS <<<"${ORBIT_CLUSTER_MANAGEMENT_PORTS:-}"
TIMEOUT=${ORBIT_CLUSTER_TIMEOUT:-90}
SIZE=3

die() { echo "cluster.sh: $*" >&2; exit 1; }
[[ ${#MANAGEMENT_PORTS[@]} -eq 0 || ${#MANAGEMENT_PORTS[@]} -eq $SIZE ]] || die "ORBIT_CLUSTER_MANAGEMENT_PORTS must name $SIZE ports, or none"
log() { echo "cluster.sh: $*" >&2; }

[[ ${#PORTS[@]} -eq $SIZE && ${#DIST_PORTS[@]} -eq $SIZE ]] || die "need $SIZE AMQP ports and $SIZE distribution ports"
[[ $NAME =~ ^[A-Za-z0-9_-]+$ ]] || die "ORBIT_CLUSTER_NAME may hold letters, digits, _ and - only"
[[ $NAME != rabbit ]] || die "refusing the name 'rabbit': that is the shared node's"
for p in "${PORTS[@]}" "${DIST_PORTS[@]}"; do
  [[ $p =~ ^[0-9]+$ ]] || die "not a port: $p"
  [[ $p != 5672 && $p != 25672 ]] || die "port $p belongs to the shared node"
done

node() { echo "${NAME}-$1@localhost"; }
node_dir() { echo "$DIR/n$1"; }
# A path as the node sees it (inside the root for RabbitMQ 4).
node_path() { if [[ -n $ROOT ]]; then echo "${1#"$ROOT"}"; else echo "$1"; fi; }
pid_file() { echo "$(node_dir "$1")/mnesia/$(node "$1").pid"; }

# rabbitmqctl against one of our nodes only, with no RABBITMQ_* in its environment (a CLI
# given a node's dist port would derive its own ports from it).
# CTL_TIMEOUT (seconds) bounds the call.
ctl() {
  local n=$1; shift
  if [[ -n $ROOT ]]; then
    timeout "${CTL_TIMEOUT:-120}" env $(env | awk -F= '/^RABBITMQ_/ {print "-u " $1}') chroot "$ROOT" /usr/sbin/rabbitmqctl -q -n "$(node "$n")" "$@"
  else
    timeout "${CTL_TIMEOUT:-120}" env $(env | awk -F= '/^RABBITMQ_/ {print "-u " $1}') rabbitmqctl -q -n "$(node "$n")" "$@"
  fi
}

# Process PID's environment, one variable a line; fails once PID has exited. Callers keep it in
# a variable and match on that: under pipefail, `tr … | grep -q` fails when grep exits on its
# match while tr still writes (SIGPIPE, status 141), and a live node looked dead.
environ_of() {
  tr '\0' '\n' 2>/dev/null <"/proc/$1/environ"
}

# The pid of node N when it is alive and really is node N (checked in its environment).
live_pid() {
  local f pid env_of
  f=$(pid_file "$1")
  [[ -r $f ]] || return 1
  pid=$(tr -d '[:space:]' <"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  env_of=$(environ_of "$pid") || return 1
  grep -qx "RABBITMQ_NODENAME=$(node "$1")" <<<"$env_of" || return 1
  echo "$pid"
}

# Why live_pid finds no node N, and the end of its log: a node that died on its own says why.
why_down() {
  local f pid reason log env_of
  f=$(pid_file "$1")
  if [[ ! -e $f ]]; then
    reason="no pid file $f"
  else
    pid=$(tr -d '[:space:]' <"$f")
    if ! env_of=$(environ_of "$pid"); then
      reason="pid $pid from its pid file has exited"
    else
      reason="pid $pid from its pid file is $(grep '^RABBITMQ_NODENAME=' <<<"$env_of" || echo 'no RabbitMQ node')"
    fi
  fi
  log=$(node_dir "$1")/log/$(node "$1").log
  if [[ -r $log ]]; then
    reason+="; its log ($log), last warnings: $(grep -E '\[(warning|error|critical|alert|emergency)\]' "$log" | tail -n 5 | tr '\n' '|' || true)"
    reason+=" last lines: $(tail -n 3 "$log" | tr '\n' '|')"
  fi
  # The VM's own last word when it crashed (RabbitMQ's scripts put the dump in the log dir).
  if [[ -r $(node_dir "$1")/log/erl_crash.dump ]]; then
    reason+="; erl_crash.dump: $(grep -m1 '^Slogan:' "$(node_dir "$1")/log/erl_crash.dump" || true)"
  fi
  echo "$reason"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_node_files() {
  local i=$1 d
  d=$(node_dir "$i")
  mkdir -p "$d/mnesia" "$d/log"
  printf 'listeners.tcp.1 = 127.0.0.1:%s\nloopback_users = none\n' "${PORTS[$((i - 1))]}" >"$d/rabbitmq.conf"
  if [[ ${#MANAGEMENT_PORTS[@]} -eq 3 ]]; then
    printf 'management.tcp.port = %s\nmanagement.tcp.ip = 127.0.0.1\n' "${MANAGEMENT_PORTS[$((i - 1))]}" >>"$d/rabbitmq.conf"
    echo '[rabbitmq_management].' >"$d/enabled_plugins"
  else
    [[ -z $ROOT ]] || echo 'management_agent.disable_metrics_collector = true' >>"$d/rabbitmq.conf"
    echo '[].' >"$d/enabled_plugins"
  fi
  : >"$d/env.conf"
  if [[ -n $ROOT ]]; then
    # The root's rabbitmq user (its uid is not the host's).
    chroot "$ROOT" chown -R rabbitmq:rabbitmq "$(node_path "$d")"
  else
    chown -R rabbitmq:rabbitmq "$d" 2>/dev/null || true
  fi
}

# Boots node N detached (its data dir may already hold a cluster member: it rejoins).
boot() {
  local i=$1 d
  rm -f "$(pid_file "$i")"
  d=$(node_path "$(node_dir "$i")")
  local run=(rabbitmq-server)
  [[ -z $ROOT ]] || run=(chroot "$ROOT" env ERL_EPMD_ADDRESS=127.0.0.1 /usr/sbin/rabbitmq-server)
  env RABBITMQ_NODENAME="$(node "$i")" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="${PORTS[$((i - 1))]}" \
    RABBITMQ_DIST_PORT="${DIST_PORTS[$((i - 1))]}" \
    RABBITMQ_MNESIA_BASE="$d/mnesia" \
    RABBITMQ_LOG_BASE="$d/log" \
    RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" \
    RABBITMQ_CONF_ENV_FILE="$d/env.conf" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}' \
    "${run[@]}" -detached
}

# Waits until node N has a pid and accepts AMQP connections, then until the app is up.
await_node() {
  local i=$1 deadline=$((SECONDS + TIMEOUT))
  until live_pid "$i" >/dev/null && port_open "${PORTS[$((i - 1))]}"; do
    ((SECONDS < deadline)) || die "node $(node "$i") did not boot within ${TIMEOUT}s; see $(node_dir "$i")/log"
    sleep 0.2
  done
  ctl "$i" await_startup --timeout "$TIMEOUT" >/dev/null
}

cmd_start() {
  for i in 1 2 3; do
    if live_pid "$i" >/dev/null; then die "node $(node "$i") is already running (scripts/cluster.sh stop first)"; fi
  done
  for p in "${PORTS[@]}"; do
    if port_open "$p"; then die "port $p is in use"; fi
  done
  rm -rf "$DIR"
  mkdir -p "$DIR"
  chmod 755 "$DIR"
  if [[ -n $ROOT ]]; then
    [[ $(id -u) == 0 ]] || die "RabbitMQ 4 nodes need root (chroot)"
    mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
  fi
  local began=$SECONDS
  for i in 1 2 3; do write_node_files "$i"; done
  # The nodes run as user rabbitmq (the Debian wrappers su to it): every dir up to theirs must let it in.
  local su_rabbitmq=(su rabbitmq -s /bin/sh -c)
  [[ -z $ROOT ]] || su_rabbitmq=(chroot "$ROOT" su rabbitmq -s /bin/sh -c)
  if [[ $(id -u) == 0 ]] && ! "${su_rabbitmq[@]}" "test -w '$(node_path "$(node_dir 1)")/mnesia'"; then
    die "user rabbitmq cannot write to $(node_dir 1)/mnesia: make $DIR and its parent dirs reachable (chmod o+x)"
  fi
  for i in 1 2 3; do boot "$i"; done
  for i in 1 2 3; do await_node "$i"; done
  log "3 nodes up in $((SECONDS - began))s; joining"
  for i in 2 3; do
    ctl "$i" stop_app >/dev/null
    ctl "$i" join_cluster "$(node 1)" >/dev/null
    ctl "$i" start_app >/dev/null
    ctl "$i" await_startup --timeout "$TIMEOUT" >/dev/null
  done
  local running
  running=$(ctl 1 eval 'length(rabbit_nodes:all_running()).' | tr -d '[:space:]')
  [[ $running == 3 ]] || die "cluster formed with $running running node(s), expected 3"
  log "cluster of 3 ready in $((SECONDS - began))s: $(cmd_urls)"
}

cmd_urls() {
  local out=() p
  for p in "${PORTS[@]}"; do out+=("amqp://guest:guest@127.0.0.1:$p"); done
  (IFS=,; echo "${out[*]}")
}

cmd_status() {
  local i pid any=0
  for i in 1 2 3; do
    if pid=$(live_pid "$i"); then
      echo "$(node "$i")  pid $pid  amqp 127.0.0.1:${PORTS[$((i - 1))]}  up"
      any=$i
    else
      echo "$(node "$i")  down"
    fi
  done
  if ((any > 0)); then
    echo "running nodes (as $(node "$any") sees them):"
    ctl "$any" eval 'rabbit_nodes:all_running().' || true
    echo
  fi
  ((any > 0))
}

cmd_kill() {
  local i=${1:?node number 1-3} pid
  [[ $i =~ ^[123]$ ]] || die "node number must be 1, 2 or 3"
  pid=$(live_pid "$i") || die "node $(node "$i") is not running ($(why_down "$i"))"
  kill -KILL "$pid"
  for _ in $(seq 1 100); do [[ -d /proc/$pid ]] || { log "killed $(node "$i") (pid $pid)"; return 0; }; sleep 0.1; done
  die "node $(node "$i") (pid $pid) survived SIGKILL"
}

cmd_down() {
  local i
  for i in 1 2 3; do
    if ! live_pid "$i" >/dev/null; then printf '%s\t%s\n' "$i" "$(why_down "$i")"; fi
  done
}

cmd_restart() {
  local i=${1:?node number 1-3}
  [[ $i =~ ^[123]$ ]] || die "node number must be 1, 2 or 3"
  if live_pid "$i" >/dev/null; then die "node $(node "$i") is running"; fi
  [[ -d $(node_dir "$i")/mnesia ]] || die "no data dir for node $i (start the cluster first)"
  boot "$i"
  await_node "$i"
  log "restarted $(node "$i")"
}

cmd_stop() {
  local i pid
  # Stop in parallel: a clean stop of the last node waits on the others otherwise.
  for i in 1 2 3; do
    if live_pid "$i" >/dev/null; then (CTL_TIMEOUT=30 ctl "$i" stop >/dev/null 2>&1 || true) & fi
  done
  wait
  for i in 1 2 3; do
    if pid=$(live_pid "$i"); then
      log "node $(node "$i") still up after stop; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
    fi
  done
  # Only remove what looks like this script's state dir.
  if [[ -d $DIR/n1 || -d $DIR/n2 || -d $DIR/n3 ]]; then rm -rf "$DIR"; fi
  log "stopped"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  urls) cmd_urls ;;
  kill) cmd_kill "${2:-}" ;;
  down) cmd_down ;;
  restart) cmd_restart "${2:-}" ;;
  *) echo "usage: $0 start|stop|status|urls|kill N|down|restart N" >&2; exit 2 ;;
esac
