#!/usr/bin/env bash
# npm's `pretest` hook: what `npm test` needs besides node_modules and the local RabbitMQ:
# the RabbitMQ 4.0 root for the 4.0 tests, and Debian's prometheus package (the server and
# promtool) for the Prometheus tests. Both are installed here only when asked to: under CI
# (CI set, as .ci/run runs) or with ORBIT_INSTALL_PREREQUISITES=1, and when that is possible
# (root, or password-less sudo for apt-get). Otherwise this says how: the Prometheus tests
# then fail with the same instructions, the 4.0 tests skip.
set -uo pipefail

opted_in=
if [ -n "${CI:-}" ] || [ "${ORBIT_INSTALL_PREREQUISITES:-}" = 1 ]; then opted_in=1; fi

# The RabbitMQ 4.0 tests (test/integration/rabbitmq4.test.ts) start private 4.0 nodes from
# a Debian trixie root (scripts/rabbitmq4-root.sh: debootstrap, once per machine, as root).
root4="${ORBIT_RABBITMQ4_ROOT:-/var/cache/orbit/rabbitmq4-root}"
if [ ! -f "$root4/.orbit-ready" ]; then
  if [ -n "$opted_in" ] && [ "$(id -u)" = 0 ]; then
    echo "pretest: building the RabbitMQ 4.0 root at $root4 (once per machine, about a minute)" >&2
    bash "$(dirname "$0")/rabbitmq4-root.sh" >/dev/null || echo "pretest: could not build the RabbitMQ 4.0 root; the 4.0 tests will fail under CI, skip otherwise" >&2
  else
    echo "pretest: no RabbitMQ 4.0 root at $root4: the 4.0 tests skip (as root: ORBIT_INSTALL_PREREQUISITES=1 npm test, or bash scripts/rabbitmq4-root.sh)" >&2
  fi
fi

prometheus_bin="${ORBIT_PROMETHEUS_BIN:-/usr/bin/prometheus}"
promtool_bin="${ORBIT_PROMTOOL_BIN:-/usr/bin/promtool}"
[ -x "$prometheus_bin" ] && [ -x "$promtool_bin" ] && exit 0

how="sudo apt-get install -y --no-install-recommends prometheus (or run npm test with ORBIT_INSTALL_PREREQUISITES=1; or set ORBIT_PROMETHEUS_BIN and ORBIT_PROMTOOL_BIN)"
if [ -z "$opted_in" ]; then
  echo "pretest: $prometheus_bin / $promtool_bin missing (the Prometheus tests need them); install with: $how" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "pretest: $prometheus_bin / $promtool_bin missing and no apt-get: install Prometheus and set ORBIT_PROMETHEUS_BIN and ORBIT_PROMTOOL_BIN" >&2
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "pretest: prometheus missing and no root or password-less sudo; run: $how" >&2
  exit 0
fi

echo "pretest: installing Debian's prometheus package (for the Prometheus and alert-rule tests)" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 ||
  { "${as_root[@]}" apt-get update -qq && "${as_root[@]}" apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } ||
  echo "pretest: could not install prometheus; the Prometheus tests will fail" >&2
# The package may start a server of its own on :9090. It is left alone (this script never
# stops a process it did not start); the tests run their own Prometheus on free ports.
exit 0
