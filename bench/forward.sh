#!/usr/bin/env bash
# Forwarding benchmark: wirecap's inline forwarder (capturing, inline mode) side by side
# with the kernel's own IP forwarding, between the same namespaces in the same run.
#
# Topology (all created here, removed on exit): hosts A and B and the appliance APP, each
# with one veth on a bridge in a fourth namespace BR. Two set-ups on the same interfaces:
#   wirecap: A 10.9.0.2/24, B 10.9.0.3/24, APP's eth0 without address; `wirecap serve
#            --inline 10.9.0.1/24 --forward 10.9.0.2=10.9.0.3 --capture-mode inline` in APP,
#            a capture recording; A sends to 10.9.0.1.
#   kernel:  A 10.9.1.2/24 via 10.9.1.1, B 10.9.2.3/24 via 10.9.2.1, APP has both gateway
#            addresses on eth0 and net.ipv4.ip_forward=1 (redirects off); A sends to 10.9.2.3.
# Measures, for the kernel, wirecap forwarding only, and wirecap while a capture records
# (inline mode): 64-byte UDP frames (trafgen in A, one process (-P 1: by default it forks
# one per CPU and pins each, taking the forwarder's CPU too) on CPU 0, a fixed count as fast
# as it goes; delivered = rx_packets of B's eth0) and TCP throughput (iperf3 -t 5, A -> B).
# wirecap gives the forwarder thread the last CPU (CPU 1 here) and keeps its other threads
# off it (`--forward-cpu auto`, the default; FORWARD_CPU=off|N to compare). Prints a table with ratios to the kernel, the
# load average, and where wirecap lost packets (RX ring full, capture queue, by reason).
#
# Needs root, iproute2, netsniff-ng (trafgen), iperf3, curl, taskset, timeout.
# Usage: bench/forward.sh [PACKETS]   (default 1000000)
# Environment: WIRECAP_BIN=path (a prebuilt release `wirecap`), SECONDS_TCP (default 5),
#   TABLE=file (also write the table there), PERF=file (`perf record -g` of CPU 1 during
#   wirecap's first UDP run, into that file), PERF_CAP=file (`perf record -a -g` during the
#   TCP run while capturing), FORWARD_CPU=auto|off|N (wirecap's --forward-cpu).
set -euo pipefail

N=${1:-1000000}
TCP_S=${SECONDS_TCP:-5}
HERE=$(cd "$(dirname "$0")/.." && pwd)
P="wfb$$"
WORK=$(mktemp -d /var/tmp/wirecap-fwd-bench.XXXXXX)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HERE/target}
PW=bench-pw

cleanup() {
  set +e
  for n in a app b br; do
    for p in $(ip netns pids "$P-$n" 2>/dev/null); do kill -9 "$p"; done
  done
  for n in a app b br; do ip netns del "$P-$n" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "bench/forward.sh: needs root (network namespaces)"; exit 1; }
for t in ip trafgen iperf3 curl taskset timeout; do
  command -v "$t" >/dev/null || { echo "missing tool: $t"; exit 1; }
done

if [ -n "${WIRECAP_BIN:-}" ]; then
  WIRECAP=$WIRECAP_BIN
else
  echo "building wirecap (release)…" >&2
  (cd "$HERE" && cargo build --release -q -p wirecap)
  WIRECAP=$CARGO_TARGET_DIR/release/wirecap
fi

x() { ip netns exec "$P-$1" "${@:2}"; }

for n in br a app b; do
  ip netns add "$P-$n"
  x "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$P-$n" link set lo up
done
ip -n "$P-br" link add br0 type bridge
ip -n "$P-br" link set br0 up
for h in a app b; do
  ip link add eth0 netns "$P-$h" type veth peer name "p$h" netns "$P-br"
  ip -n "$P-br" link set "p$h" master br0 up
  ip -n "$P-$h" link set eth0 up
done
# Bridge netfilter (when br_netfilter is loaded on the host) would run iptables on every
# bridged frame of both set-ups alike: off in this bridge.
x br sysctl -qw net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0 \
  net.bridge.bridge-nf-call-arptables=0 2>/dev/null || true
# A UDP socket on port 9 in B (never read): datagrams end there instead of each making B's
# kernel route an ICMP port unreachable, the same for both set-ups.
x b timeout 600 python3 -c "import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 9)); time.sleep(600)" &
disown
APP_MAC=$(x app cat /sys/class/net/eth0/address)
A_MAC=$(x a cat /sys/class/net/eth0/address)

rx_b() { x b cat /sys/class/net/eth0/statistics/rx_packets; }

# 64-byte frames (60 + FCS) from A to DST through the appliance's MAC.
udp_run() { # $1 = source IP, $2 = destination IP; prints "offered_pps delivered_pps"
  local cfg=$WORK/udp.cfg
  cat > "$cfg" <<EOF
{ eth(da=$APP_MAC, sa=$A_MAC), ipv4(saddr=$1, daddr=$2, ttl=64), udp(sport=9, dport=9), fill(0x00, 18) }
EOF
  local before after t0 t1
  before=$(rx_b)
  t0=$(date +%s.%N)
  x a timeout 60 taskset -c 0 trafgen --dev eth0 --conf "$cfg" -P 1 --num "$N" --no-sock-mem -q >/dev/null 2>&1 || true
  t1=$(date +%s.%N)
  sleep 1
  after=$(rx_b)
  python3 -c "d=$t1-$t0; print(int($N/d), int(($after-$before)/d), $after-$before)"
}

tcp_run() { # $1 = destination IP; prints Mbit/s
  x b iperf3 -s -1 -D -B 0.0.0.0 >/dev/null 2>&1
  sleep 0.5
  x a timeout $((TCP_S + 20)) iperf3 -c "$1" -t "$TCP_S" -f m -J > "$WORK/iperf.json" 2>/dev/null || true
  python3 -c "
import json
try:
    j = json.load(open('$WORK/iperf.json'))
    print(int(j['end']['sum_received']['bits_per_second'] / 1e6))
except Exception:
    print(0)"
}

# --- kernel forwarding ---
x a ip addr add 10.9.1.2/24 dev eth0
x a ip route add default via 10.9.1.1
x b ip addr add 10.9.2.3/24 dev eth0
x b ip route add default via 10.9.2.1
x app ip addr add 10.9.1.1/24 dev eth0
x app ip addr add 10.9.2.1/24 dev eth0
x app sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0
x a ping -c 2 -W 1 10.9.2.3 >/dev/null || { echo "kernel forwarding does not work"; exit 1; }
# The appliance's MAC is A's gateway: trafgen frames go to it.
echo "kernel: UDP…" >&2
read -r K_OFF K_PPS K_N < <(udp_run 10.9.1.2 10.9.2.3)
echo "kernel: TCP…" >&2
K_TCP=$(tcp_run 10.9.2.3)

# --- wirecap ---
x app sysctl -qw net.ipv4.ip_forward=0
x app ip addr flush dev eth0
x a ip addr flush dev eth0
x b ip addr flush dev eth0
x a ip addr add 10.9.0.2/24 dev eth0
x b ip addr add 10.9.0.3/24 dev eth0
x app env WIRECAP_ADMIN_PASSWORD=$PW "$WIRECAP" serve --data "$WORK/data" --http 127.0.0.1:8080 \
  --interface eth0 --inline 10.9.0.1/24 --forward 10.9.0.2=10.9.0.3 --capture-mode inline \
  --forward-cpu "${FORWARD_CPU:-auto}" > "$WORK/serve.log" 2>&1 &
disown
for _ in $(seq 100); do
  x app curl -s -o /dev/null -u admin:$PW http://127.0.0.1:8080/api/v1/forward && break
  sleep 0.1
done
api() { x app curl -s -m 10 -u admin:$PW "http://127.0.0.1:8080$1"; }
x a ping -c 2 -W 1 10.9.0.1 >/dev/null || { echo "wirecap forwarding does not work"; cat "$WORK/serve.log"; exit 1; }
FWD_CPU=$(api /api/v1/forward | python3 -c 'import json,sys; print(json.load(sys.stdin)["cpu"])')
echo "wirecap, not capturing: UDP…" >&2
if [ -n "${PERF:-}" ]; then
  # Profile CPU 1 (the forwarder's, and the kernel work its sends do) during the run.
  perf record -q -C 1 -g -o "$PERF" -- sleep 3 >/dev/null 2>&1 &
  PERF_PID=$!
fi
read -r N_OFF N_PPS N_N < <(udp_run 10.9.0.2 10.9.0.1)
[ -n "${PERF:-}" ] && wait "$PERF_PID"
echo "wirecap, not capturing: TCP…" >&2
N_TCP=$(tcp_run 10.9.0.1)
RING0=$(api /api/v1/forward | python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"]["rx_ring_drops"])')
api "/sysmaster/capture_start?StreamName=bench" >/dev/null
echo "wirecap: UDP…" >&2
read -r W_OFF W_PPS W_N < <(udp_run 10.9.0.2 10.9.0.1)
echo "wirecap: TCP…" >&2
if [ -n "${PERF_CAP:-}" ]; then
  perf record -q -a -g -o "$PERF_CAP" -- sleep 4 >/dev/null 2>&1 &
fi
W_TCP=$(tcp_run 10.9.0.1)
sleep 1
api "/sysmaster/capture_stop" >/dev/null
STATUS=$(api /sysmaster/status)
FWD=$(api /api/v1/forward)
DROPS=$(api /api/v1/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["drops"])')
CAPTURED=$(echo "$STATUS" | awk -F', *' '$1=="packets_captured"{print $2}')
DROPPED=$(echo "$STATUS" | awk -F', *' '$1=="packets_dropped"{print $2}')

ratio() { python3 -c "a, b = $1, $2; print(f'{a / b:.2f}' if b else '-')"; }
{
  echo "forwarding benchmark, $N 64-byte UDP frames, TCP ${TCP_S} s; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  printf '%-34s %12s %14s %8s %14s %8s\n' "" "kernel" "wirecap" "ratio" "wirecap+cap" "ratio"
  row() { printf '%-34s %12s %14s %8s %14s %8s\n' "$1" "$2" "$3" "$(ratio "$3" "$2")" "$4" "$(ratio "$4" "$2")"; }
  row "UDP 64 B offered (pps, trafgen)" "$K_OFF" "$N_OFF" "$W_OFF"
  row "UDP 64 B delivered to B (pps)" "$K_PPS" "$N_PPS" "$W_PPS"
  row "UDP 64 B delivered (of $N)" "$K_N" "$N_N" "$W_N"
  row "TCP A->B (Mbit/s, iperf3)" "$K_TCP" "$N_TCP" "$W_TCP"
  echo "(wirecap: forwarding only; wirecap+cap: forwarding while a capture records in inline mode; forwarder CPU: $FWD_CPU, --forward-cpu ${FORWARD_CPU:-auto})"
  echo "wirecap capture: captured $CAPTURED, dropped $DROPPED $DROPS"
  echo "wirecap forwarder: $(echo "$FWD" | python3 -c 'import json,sys; c=json.load(sys.stdin)["counters"]; print("drops", c["dropped"], {k: v for k, v in c["drops"].items() if v}, "RX ring full", c["rx_ring_drops"], "(of which while capturing:", c["rx_ring_drops"] - '"$RING0"', end=")"); print(", super-packets passed whole", c["super_packets_passed"], "cut", c["super_packets_segmented"])')"
} | tee ${TABLE:+"$TABLE"}
