#!/usr/bin/env bash
# npm's `pretest` hook: what `npm test` needs besides node_modules and the local RabbitMQ.
# The Prometheus tests run Debian's prometheus package (the server and promtool). On a fresh
# machine it is installed here when that is possible (root or password-less sudo, apt-get);
# otherwise this says how, and those tests fail with the same instructions.
set -uo pipefail

prometheus_bin="${ORBIT_PROMETHEUS_BIN:-/usr/bin/prometheus}"
promtool_bin="${ORBIT_PROMTOOL_BIN:-/usr/bin/promtool}"
[ -x "$prometheus_bin" ] && [ -x "$promtool_bin" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "pretest: $prometheus_bin / $promtool_bin missing and no apt-get: install Prometheus and set ORBIT_PROMETHEUS_BIN and ORBIT_PROMTOOL_BIN" >&2
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "pretest: prometheus missing; run: sudo apt-get install -y --no-install-recommends prometheus" >&2
  exit 0
fi

echo "pretest: installing Debian's prometheus package (for the Prometheus and alert-rule tests)" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 ||
  { "${as_root[@]}" apt-get update -qq && "${as_root[@]}" apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } ||
  echo "pretest: could not install prometheus; the Prometheus tests will fail" >&2
# The package may start a server of its own on :9090; the tests run their own on free ports.
"${as_root[@]}" pkill -x prometheus 2>/dev/null || true
exit 0
