#!/usr/bin/env bash
# The oxr demo: three virtual routers in a chain with an OSPF core and one static route
# (deploy/labs/demo.toml), brought up by oxr-lab. Prints each router's routes as oxr and the
# kernel see them, and pings r3's loopback from r1's.
#   sudo deploy/demo.sh        bring it up (again)
#   sudo deploy/demo.sh down   remove it
# Builds the release binaries first, unless OXR_BIN_DIR names a directory that has them.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo.sh needs root (it creates network namespaces)" >&2; exit 1; }

if [ -n "${OXR_BIN_DIR:-}" ]; then
  BIN=$OXR_BIN_DIR
else
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
  if [ "${1:-up}" != "down" ] || [ ! -x "$BIN/oxr-lab" ]; then
    cargo build --workspace --bins --release
  fi
fi
LAB="$BIN/oxr-lab --bin-dir $BIN"

if [ "${1:-up}" = "down" ]; then exec $LAB down demo; fi

$LAB down demo >/dev/null   # a previous run's lab, if any
$LAB up deploy/labs/demo.toml --wait 30

for r in r1 r2 r3; do
  echo; echo "=== $r: oxrsh -c 'show route' ==="
  $LAB shell demo "$r" -c "show route"
  echo "=== $r: kernel routes tagged proto 201 (oxr) ==="
  $LAB exec demo "$r" -- ip route show proto 201
done
echo; echo "=== ping from r1's loopback (10.255.0.1) to r3's (10.255.0.3), through r2 ==="
$LAB exec demo r1 -- ping -c 3 -i 0.2 -I 10.255.0.1 10.255.0.3
echo
$LAB status demo
echo
echo "The demo is up. Try:  sudo $BIN/oxr-lab shell demo r1"
echo "Remove it with:       sudo deploy/demo.sh down"
