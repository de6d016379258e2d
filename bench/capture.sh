#!/usr/bin/env bash
# Capture benchmark: trafgen in its own namespace pushes 64-byte and 1500-byte frames
# through a veth pair as fast as it can for DURATION seconds; on the other end one capture
# tool at a time (wirecap, tcpdump -w, netsniff-ng, stenotype) records to disk.
# Generator pinned to CPU 0, capture tool to CPU 1. Reports per tool and frame size:
# packets offered (rx_packets of the capture-side veth during the run), captured (packets
# in the tool's output), dropped (offered - captured), CPU seconds (user+sys of the tool)
# per million packets offered.
#
# Needs root, iproute2, netsniff-ng (trafgen), tcpdump, tshark (capinfos), stenographer,
# python3, GNU time. Traffic stays inside the two namespaces this script creates; they are
# removed on exit. Usage: bench/capture.sh [DURATION_SECONDS] (default 5).
set -euo pipefail

DURATION=${1:-5}
HERE=$(cd "$(dirname "$0")/.." && pwd)
TAG="wcb-$$"
GEN="$TAG-gen"; CAP="$TAG-cap"
WORK=$(mktemp -d /var/tmp/wirecap-bench.XXXXXX)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HERE/target}

cleanup() {
  set +e
  for p in $(ip netns pids "$CAP" 2>/dev/null) $(ip netns pids "$GEN" 2>/dev/null); do kill -9 "$p"; done
  ip netns del "$GEN" 2>/dev/null; ip netns del "$CAP" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "bench/capture.sh: needs root (network namespaces)"; exit 1; }
for t in ip trafgen tcpdump netsniff-ng capinfos python3 /usr/bin/time taskset; do
  command -v "$t" >/dev/null || { echo "missing tool: $t"; exit 1; }
done
HAVE_STENO=1; command -v stenotype >/dev/null || HAVE_STENO=0

echo "building wirecap capture (release)…" >&2
cargo build -q -j 2 --release -p wirecap-capture --example capture
WIRECAP="$CARGO_TARGET_DIR/release/examples/capture"

ip netns add "$GEN"; ip netns add "$CAP"
for ns in "$GEN" "$CAP"; do
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
ip link add gva netns "$GEN" type veth peer name gvb netns "$CAP"
ip -n "$GEN" link set gva up; ip -n "$CAP" link set gvb up
sleep 1

conf() { # $1 = frame length without FCS
  local pad=$(( $1 - 14 - 20 - 8 ))
  cat <<CONF
{
  0x02, 0x22, 0x33, 0x44, 0x55, 0x66,  0x02, 0x77, 0x63, 0x00, 0x00, 0x01,  c16(0x0800),
  0x45, 0x00, c16($(( $1 - 14 ))), drnd(2), 0x40, 0x00, 0x40, 17, csumip(14, 33),
  10, 0, 0, 1,  10, 0, 0, 2,
  c16(1024), c16(9), c16($(( pad + 8 ))), c16(0),
  fill(0x5a, $pad)
}
CONF
}
conf 60 > "$WORK/64.cfg"; conf 1514 > "$WORK/1500.cfg"

rx_packets() { ip netns exec "$CAP" cat /sys/class/net/gvb/statistics/rx_packets; }

count_pcap() { capinfos -M -c -T "$1" 2>/dev/null | awk -F'\t' 'NR==2 {print $2}'; }

count_steno() { python3 - "$1" <<'PY'
import os, struct, sys
n = 0
for root, _, files in os.walk(sys.argv[1]):
    for f in files:
        with open(os.path.join(root, f), 'rb') as fh:
            data = fh.read()
        for off in range(0, len(data) - 16, 1 << 20):
            version, _, _, num = struct.unpack_from('<IIII', data, off)
            if version == 3:
                n += num
print(n)
PY
}

RESULTS="$WORK/results.tsv"; : > "$RESULTS"

run_one() { # tool size
  local tool=$1 size=$2 out="$WORK/$1-$2" start_wait=2 captured cpu
  rm -rf "$out"; mkdir -p "$out"
  local timef="$out/time"
  case $tool in
    wirecap)
      ip netns exec "$CAP" /usr/bin/time -f "%U %S" -o "$timef" taskset -c 1 \
        "$WIRECAP" gvb "$out/data" bench > "$out/stdout" 2> "$out/stderr" & ;;
    tcpdump)
      ip netns exec "$CAP" /usr/bin/time -f "%U %S" -o "$timef" taskset -c 1 \
        tcpdump -i gvb -w "$out/f.pcap" -B 65536 -s 262144 --time-stamp-precision=nano -q 2> "$out/stderr" & ;;
    netsniff-ng)
      start_wait=8
      ip netns exec "$CAP" /usr/bin/time -f "%U %S" -o "$timef" taskset -c 1 \
        netsniff-ng --in gvb --out "$out/f.pcap" -s > "$out/stdout" 2> "$out/stderr" & ;;
    stenotype)
      start_wait=4
      mkdir -p "$out/PKT0" "$out/IDX0"; chown -R nobody:nogroup "$out"
      ip netns exec "$CAP" /usr/bin/time -f "%U %S" -o "$timef" taskset -c 1 \
        stenotype --iface=gvb --dir="$out" --threads=1 --seccomp=none --no_watchdogs -v > "$out/stdout" 2> "$out/stderr" & ;;
  esac
  local pid=$!
  sleep "$start_wait"
  local rx0; rx0=$(rx_packets)
  ip netns exec "$GEN" timeout -s INT "$DURATION" taskset -c 0 \
    trafgen --dev gva --conf "$WORK/$size.cfg" -P 1 --no-sock-mem -q > /dev/null 2>&1 || true
  sleep 2
  local rx1; rx1=$(rx_packets)
  local offered=$(( rx1 - rx0 ))
  # Stop the tool: SIGINT to the tool itself (time(1) would only pass it on).
  for p in $(ip netns pids "$CAP"); do [ "$p" != "$pid" ] && kill -INT "$p" 2>/dev/null; done
  for _ in $(seq 1 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
  if kill -0 $pid 2>/dev/null; then # stenotype ignores SIGINT
    for p in $(ip netns pids "$CAP"); do kill -TERM "$p" 2>/dev/null; done
    sleep 2
    for p in $(ip netns pids "$CAP"); do kill -KILL "$p" 2>/dev/null; done
  fi
  wait $pid 2>/dev/null || true
  case $tool in
    wirecap) captured=$(awk -F= '$1=="captured"{print $2}' "$out/stdout") ;;
    tcpdump|netsniff-ng) captured=$(count_pcap "$out/f.pcap") ;;
    stenotype) captured=$(count_steno "$out/PKT0") ;;
  esac
  captured=${captured:-0}
  # Background packets: offered counts only what crossed gvb during the run window.
  cpu=$(tail -1 "$timef" 2>/dev/null | awk '{printf "%.2f", $1 + $2}')
  cpu=${cpu:-0}
  local dropped=$(( offered > captured ? offered - captured : 0 ))
  local per_m; per_m=$(python3 -c "print(f'{$cpu / max($offered,1) * 1e6:.2f}')")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$size" "$offered" "$captured" "$dropped" "$cpu" "$per_m" | tee -a "$RESULTS" >&2
  rm -rf "$out"
}

TOOLS="wirecap tcpdump netsniff-ng"
[ $HAVE_STENO = 1 ] && TOOLS="$TOOLS stenotype"
for size in 64 1500; do
  for tool in $TOOLS; do run_one "$tool" "$size"; done
done

echo
printf '%-12s %6s %12s %12s %12s %8s %12s\n' tool frame offered captured dropped cpu_s cpu_s/Mpkt
while IFS=$'\t' read -r t s o c d cpu pm; do
  printf '%-12s %6s %12s %12s %12s %8s %12s\n' "$t" "$s" "$o" "$c" "$d" "$cpu" "$pm"
done < "$RESULTS"
[ $HAVE_STENO = 1 ] || echo "(stenotype not installed: apt-get install stenographer)"
