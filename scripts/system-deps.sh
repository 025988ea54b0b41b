#!/usr/bin/env bash
# Installs the system tools linkmux's demo, tests and benchmarks use, when they
# are missing: iproute2 (ip, tc), nftables, conntrack, curl, aria2, openssl,
# procps (sysctl), util-linux (prlimit), time (/usr/bin/time, bench:scale) and chromium (the dashboard test). Used by the README's Quick start,
# by `npm test` (as root) and by .ci/run, so a fresh machine needs nothing else.
#
# On Debian/Ubuntu it runs apt-get: directly as root, through sudo otherwise.
# Elsewhere, or without root and sudo, it names exactly what to install and
# exits 1. `--check` only reports (exit 1 when something is missing).
set -euo pipefail

pairs="ip:iproute2 tc:iproute2 /usr/bin/time:time nft:nftables conntrack:conntrack curl:curl aria2c:aria2 openssl:openssl sysctl:procps prlimit:util-linux chromium:chromium"
need=()
tools=()
for pair in $pairs; do
  tool=${pair%%:*}
  pkg=${pair##*:}
  if ! command -v "$tool" >/dev/null 2>&1; then
    tools+=("$tool")
    case " ${need[*]-} " in *" $pkg "*) ;; *) need+=("$pkg") ;; esac
  fi
done
[ "${#need[@]}" -eq 0 ] && exit 0

say() { printf 'linkmux: %s\n' "$*" >&2; }
say "missing tools: ${tools[*]} (Debian/Ubuntu packages: ${need[*]})"
if [ "${1-}" = "--check" ]; then exit 1; fi

if ! command -v apt-get >/dev/null 2>&1; then
  say "no apt-get here: install the packages that provide ${tools[*]} with your system's package manager, then rerun"
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  say "not root and no sudo: as root, run  apt-get update && apt-get install -y ${need[*]}"
  exit 1
fi
say "installing ${need[*]} with apt-get"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
