#!/usr/bin/env bash
# Starts or stops a RabbitMQ 4.0 node of its own from the root that scripts/rabbitmq4-root.sh
# makes: own node name, AMQP and distribution ports, and data dir (inside the root, owned by
# the root's `rabbitmq` user). Never touches the machine's shared node.
#
#   rabbitmq4-node.sh start NAME AMQP_PORT [EXTRA_CONF_LINE...]   # waits until it answers
#   rabbitmq4-node.sh stop NAME                                    # stops it, removes its dir
#   rabbitmq4-node.sh ctl NAME ARGS...                             # rabbitmqctl -n NAME@localhost ARGS
#
# NAME is the node's short name (the host part is always localhost). The Erlang distribution
# port is AMQP_PORT + 20000 unless ORBIT_RABBITMQ4_DIST_PORT says otherwise.
# ORBIT_RABBITMQ4_NOFILE raises the node's file-handle limit (`ulimit -n` in its env file: the
# package's wrapper starts the server through `su`, which resets it to 1,024 whatever the caller's
# was); the ladder benchmarks need it (docs/BENCHMARKS.md).
set -euo pipefail

root="${ORBIT_RABBITMQ4_ROOT:-/var/cache/orbit/rabbitmq4-root}"
cmd="${1:?usage: rabbitmq4-node.sh start|stop|ctl NAME ...}"
name="${2:?node name}"
[[ $name =~ ^[A-Za-z0-9_-]+$ ]] || { echo "rabbitmq4-node: NAME may hold letters, digits, _ and - only" >&2; exit 2; }
node="$name@localhost"
rel="/var/lib/orbit-nodes/$name"
dir="$root$rel"

[ -x "$root/usr/sbin/rabbitmq-server" ] || { echo "rabbitmq4-node: no RabbitMQ 4 root at $root (run scripts/rabbitmq4-root.sh)" >&2; exit 1; }
# The CLI and the server read the root's cookie, as user rabbitmq of the root.
# No RABBITMQ_* from the caller (a CLI that sees a node's RABBITMQ_DIST_PORT would use it).
ctl() { env $(env | awk -F= '/^RABBITMQ_/ {print "-u " $1}') chroot "$root" /usr/sbin/rabbitmqctl -q -n "$node" "$@"; }

case "$cmd" in
  start)
    port="${3:?amqp port}"
    shift 3
    dist="${ORBIT_RABBITMQ4_DIST_PORT:-$((port + 20000))}"
    [[ $port =~ ^[0-9]+$ && $dist =~ ^[0-9]+$ ]] || { echo "rabbitmq4-node: ports must be numbers" >&2; exit 2; }
    ((dist <= 65535)) || { echo "rabbitmq4-node: distribution port $dist > 65535: pick a lower AMQP port or set ORBIT_RABBITMQ4_DIST_PORT" >&2; exit 2; }
    [[ $name != rabbit && $port != 5672 && $dist != 25672 ]] || { echo "rabbitmq4-node: refusing the shared node's name or ports" >&2; exit 2; }
    if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      echo "rabbitmq4-node: $node is already running (pid $(cat "$dir/pid")); stop it first" >&2
      exit 1
    fi
    mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
    rm -rf "$dir"
    mkdir -p "$dir/mnesia" "$dir/log"
    {
      echo "listeners.tcp.1 = 127.0.0.1:$port"
      echo "loopback_users = none"
      echo "management_agent.disable_metrics_collector = true"
      for line in "$@"; do echo "$line"; done
    } >"$dir/rabbitmq.conf"
    echo "[]." >"$dir/enabled_plugins"
    if [ -n "${ORBIT_RABBITMQ4_NOFILE:-}" ]; then
      [[ $ORBIT_RABBITMQ4_NOFILE =~ ^[0-9]+$ ]] || { echo "rabbitmq4-node: ORBIT_RABBITMQ4_NOFILE must be a number" >&2; exit 2; }
      echo "ulimit -n $ORBIT_RABBITMQ4_NOFILE" >"$dir/env.conf"
    else
      : >"$dir/env.conf"
    fi
    chroot "$root" chown -R rabbitmq:rabbitmq "$rel"
    chroot "$root" env \
      RABBITMQ_CONF_ENV_FILE="$rel/env.conf" \
      RABBITMQ_NODENAME="$node" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$port" RABBITMQ_DIST_PORT="$dist" \
      RABBITMQ_CONFIG_FILE="$rel/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$rel/enabled_plugins" \
      RABBITMQ_MNESIA_BASE="$rel/mnesia" RABBITMQ_LOG_BASE="$rel/log" RABBITMQ_PID_FILE="$rel/pid" \
      ERL_EPMD_ADDRESS=127.0.0.1 ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}" \
      /usr/sbin/rabbitmq-server >"$dir/log/console.out" 2>&1 </dev/null &
    for _ in $(seq 1 120); do
      if ctl await_startup --timeout 1 >/dev/null 2>&1; then
        echo "rabbitmq4-node: $node up on 127.0.0.1:$port" >&2
        exit 0
      fi
      sleep 1
    done
    echo "rabbitmq4-node: $node did not start; its log:" >&2
    tail -n 30 "$dir/log/console.out" "$dir"/log/*.log >&2 2>/dev/null || true
    exit 1
    ;;
  stop)
    ctl stop >/dev/null 2>&1 || true
    # The beam must be gone before its dir goes.
    if [ -f "$dir/pid" ]; then
      pid=$(cat "$dir/pid")
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
    ;;
  ctl)
    shift 2
    ctl "$@"
    ;;
  *)
    echo "rabbitmq4-node: unknown command $cmd" >&2
    exit 2
    ;;
esac
