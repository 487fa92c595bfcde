#!/usr/bin/env bash
# Makes (once) a Debian trixie root holding RabbitMQ 4.0 (Debian's rabbitmq-server package,
# Erlang 27), for the tests that run against a 4.x broker. The root is cached between runs on
# one machine (about 45 s and 625 MB the first time). Installs debootstrap when missing: call it
# only from .ci/run or with ORBIT_INSTALL_PREREQUISITES=1 (see the README).
#
# Prints the root's path on stdout when it is ready; everything else goes to stderr.
set -euo pipefail

root="${ORBIT_RABBITMQ4_ROOT:-/var/cache/orbit/rabbitmq4-root}"
ready="$root/.orbit-ready"

if [ -f "$ready" ] && [ -x "$root/usr/sbin/rabbitmq-server" ]; then
  echo "$root"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "rabbitmq4-root: must run as root (debootstrap, chroot)" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
if ! command -v debootstrap >/dev/null 2>&1; then
  if [ -z "${CI:-}" ] && [ "${ORBIT_INSTALL_PREREQUISITES:-}" != 1 ]; then
    echo "rabbitmq4-root: debootstrap missing; install it (apt-get install debootstrap) or rerun with ORBIT_INSTALL_PREREQUISITES=1" >&2
    exit 1
  fi
  echo "rabbitmq4-root: installing debootstrap" >&2
  apt-get install -y -qq debootstrap >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
fi

# The Debian mirror this machine's own apt sources name (deb822 or one-line format).
mirror=$(grep -hoE '^URIs: *\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n 1 || true)
[ -n "$mirror" ] || mirror=$(grep -hoE '^deb +\S+' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' | grep -v security | head -n 1 || true)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

echo "rabbitmq4-root: building $root from $mirror (trixie, once per machine)" >&2
rm -rf "$root"
mkdir -p "$(dirname "$root")"
work="$root.partial"
rm -rf "$work"
debootstrap --variant=minbase trixie "$work" "$mirror" >&2
printf '#!/bin/sh\nexit 101\n' >"$work/usr/sbin/policy-rc.d"
chmod +x "$work/usr/sbin/policy-rc.d"
mount -t proc proc "$work/proc"
trap 'umount "$work/proc" 2>/dev/null || true' EXIT
chroot "$work" apt-get install -y -qq --no-install-recommends rabbitmq-server >&2
umount "$work/proc"
trap - EXIT
mv "$work" "$root"
chroot "$root" dpkg-query -W -f='${Version}\n' rabbitmq-server >"$ready"
echo "rabbitmq4-root: rabbitmq-server $(cat "$ready") ready" >&2
echo "$root"
