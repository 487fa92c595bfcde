#!/usr/bin/env bash
# npm's `pretest` hook: what `npm test` needs besides node_modules and the local RabbitMQ:
# the RabbitMQ 4.0 root for the 4.0 tests, Debian's prometheus package (the server and
# promtool) for the Prometheus tests, and Debian's chromium package for the console's browser
# tests. They are installed here only when asked to: under CI (CI set, as .ci/run runs) or
# with ORBIT_INSTALL_PREREQUISITES=1, and when that is possible (root, or password-less sudo
# for apt-get). Otherwise this says how: the Prometheus tests then fail with the same
# instructions, the 4.0 tests skip, and the browser tests skip (fail under CI).
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

# One Debian package, installed when missing and asked for (see above); never fails the hook.
#   install_deb <package> <what needs it> <the alternative> <binary...>
install_deb() {
  local package="$1" purpose="$2" alternative="$3"
  shift 3
  local bin missing=
  for bin in "$@"; do [ -x "$bin" ] || missing=1; done
  [ -z "$missing" ] && return 0
  local how="sudo apt-get install -y --no-install-recommends $package (or run npm test with ORBIT_INSTALL_PREREQUISITES=1; or $alternative)"
  if [ -z "$opted_in" ]; then
    echo "pretest: $* missing (needed by $purpose); install with: $how" >&2
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "pretest: $* missing and no apt-get: install $package and $alternative (needed by $purpose)" >&2
    return 0
  fi
  local as_root
  if [ "$(id -u)" = 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "pretest: $package missing and no root or password-less sudo; run: $how" >&2
    return 0
  fi
  echo "pretest: installing Debian's $package package (for $purpose)" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "$package" >/dev/null 2>&1 ||
    { "${as_root[@]}" apt-get update -qq && "${as_root[@]}" apt-get install -y -qq --no-install-recommends "$package" >/dev/null; } ||
    echo "pretest: could not install $package; $purpose will fail" >&2
}

# The prometheus package may start a server of its own on :9090. It is left alone (this
# script never stops a process it did not start); the tests run their own Prometheus on free ports.
install_deb prometheus "the Prometheus and alert-rule tests" "set ORBIT_PROMETHEUS_BIN and ORBIT_PROMTOOL_BIN" \
  "${ORBIT_PROMETHEUS_BIN:-/usr/bin/prometheus}" "${ORBIT_PROMTOOL_BIN:-/usr/bin/promtool}"
# The console's browser tests drive Debian's chromium through playwright-core (no browser download).
install_deb chromium "the console's browser tests" "set ORBIT_CHROMIUM_BIN" "${ORBIT_CHROMIUM_BIN:-/usr/bin/chromium}"
exit 0
