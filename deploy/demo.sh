#!/usr/bin/env bash
# Builds oxr and brings up a two-router demo: namespaces oxr-demo-r1 and oxr-demo-r2, two
# veth links, one oxr-routerd each (configs in deploy/demo/). Prints each router's routes as
# oxr and the kernel see them, and pings r2's loopback from r1's.
#   sudo deploy/demo.sh        bring it up (again)
#   sudo deploy/demo.sh down   remove it
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=/run/oxr-demo
ROUTERS="r1 r2"

down() {
  for r in $ROUTERS; do
    if [ -f "$RUN/$r/routerd.pid" ]; then kill "$(cat "$RUN/$r/routerd.pid")" 2>/dev/null || true; fi
  done
  sleep 0.5
  for r in $ROUTERS; do
    ns=oxr-demo-$r
    if ip netns list | grep -qw "$ns"; then
      for p in $(ip netns pids "$ns"); do kill -9 "$p" 2>/dev/null || true; done
      ip netns del "$ns"
    fi
  done
  rm -rf "$RUN"
}

if [ "${1:-up}" = "down" ]; then down; echo "demo removed"; exit 0; fi
[ "$(id -u)" = 0 ] || { echo "demo.sh needs root (it creates network namespaces)" >&2; exit 1; }

cargo build --workspace --bins --release
BIN=$PWD/target/release
down
mkdir -p "$RUN"
for r in $ROUTERS; do
  ip netns add "oxr-demo-$r"
  ip -n "oxr-demo-$r" link set lo up
  ip netns exec "oxr-demo-$r" sysctl -qw net.ipv6.conf.default.accept_dad=0
done
ip link add oxrdemo0 type veth peer name oxrdemo1
ip link set oxrdemo0 netns oxr-demo-r1 name eth0
ip link set oxrdemo1 netns oxr-demo-r2 name eth0
ip link add oxrdemo0 type veth peer name oxrdemo1
ip link set oxrdemo0 netns oxr-demo-r1 name eth1
ip link set oxrdemo1 netns oxr-demo-r2 name eth1

for r in $ROUTERS; do
  mkdir -p "$RUN/$r"
  "$BIN/oxr-routerd" --config "deploy/demo/$r.toml" --name "$r" --run-dir "$RUN/$r" \
    --netns "oxr-demo-$r" >"$RUN/$r-routerd.log" 2>&1 &
done

echo "waiting for the routers' routes..."
for i in $(seq 1 100); do
  n=$(ip -n oxr-demo-r1 route show proto 201 | grep -c . || true)
  [ "$n" -ge 4 ] && break
  sleep 0.2
done

for r in $ROUTERS; do
  echo; echo "=== $r: oxrsh -c 'show route' ==="
  "$BIN/oxrsh" --run-dir "$RUN/$r" -c "show route"
  echo "=== $r: kernel routes tagged proto 201 (oxr) ==="
  ip -n "oxr-demo-$r" route show proto 201
  ip -n "oxr-demo-$r" -6 route show proto 201
done
echo; echo "=== ping from r1's loopback (10.255.0.1) to r2's (10.255.0.2) ==="
ip netns exec oxr-demo-r1 ping -c 3 -i 0.2 -I 10.255.0.1 10.255.0.2
echo
echo "The demo is up. Try:  sudo $BIN/oxrsh --run-dir $RUN/r1"
echo "Remove it with:       sudo deploy/demo.sh down"
