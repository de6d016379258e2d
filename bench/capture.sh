#!/usr/bin/env bash
# Capture benchmark: trafgen in its own namespace pushes the same fixed number of 64-byte
# (then 1500-byte) frames through a veth pair as fast as it can; on the other end one
# capture tool at a time (wirecap, tcpdump -w, netsniff-ng, stenotype) records to disk.
# Generator pinned to CPU 0, capture tool to CPU 1. Reports per tool and frame size:
# packets offered (rx_packets of the capture-side veth during the run), captured (packets
# in the tool's output files, counted from the files), dropped (offered - captured), CPU
# seconds (user+sys of the tool over its whole life) per million packets offered; and for
# wirecap where its drops happened (kernel ring, writer queue, store write), from its own
# counters.
#
# Needs root, iproute2, netsniff-ng (trafgen), tcpdump, tshark (capinfos), stenographer,
# python3, GNU time. Traffic stays inside the two namespaces this script creates; they are
# removed on exit, and so is every tool's output (kept until the table is printed).
#
# Usage: bench/capture.sh [PACKETS_64 [PACKETS_1500]]   (defaults 5000000 and 500000)
# Environment: TOOLS="wirecap tcpdump netsniff-ng stenotype", SIZES="64 1500",
#   WIRECAP_BIN=path (a prebuilt `capture` example instead of building this tree),
#   WIRECAP_ARGS="…" (extra flags for it), TABLE=file (also write the final table there),
#   RATE=… (a fixed generator rate in trafgen's units, e.g. 600000pps; default: as fast as
#   it can), TIMEOUT=seconds (longest a generator run may last, default 60), SETTLE=seconds
#   (wait between the end of the traffic and stopping the tool, default 5), KEEP=1 (leave the
#   tools' outputs in /var/tmp/wirecap-bench.* for inspection).
set -euo pipefail

N64=${1:-5000000}
N1500=${2:-500000}
TIMEOUT=${TIMEOUT:-60}
SETTLE=${SETTLE:-5}
HERE=$(cd "$(dirname "$0")/.." && pwd)
TAG="wcb-$$"
GEN="$TAG-gen"; CAP="$TAG-cap"
WORK=$(mktemp -d /var/tmp/wirecap-bench.XXXXXX)
# stenotype drops privileges to nobody: it must be able to reach its directory.
chmod 755 "$WORK"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HERE/target}

cleanup() {
  set +e
  for p in $(ip netns pids "$CAP" 2>/dev/null) $(ip netns pids "$GEN" 2>/dev/null); do kill -9 "$p"; done
  ip netns del "$GEN" 2>/dev/null; ip netns del "$CAP" 2>/dev/null
  if [ -n "${KEEP:-}" ]; then echo "outputs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "bench/capture.sh: needs root (network namespaces)"; exit 1; }
for t in ip trafgen capinfos python3 /usr/bin/time taskset timeout; do
  command -v "$t" >/dev/null || { echo "missing tool: $t"; exit 1; }
done
if [ -z "${TOOLS:-}" ]; then
  TOOLS="wirecap"
  for t in tcpdump netsniff-ng stenotype; do
    if command -v $t >/dev/null; then TOOLS="$TOOLS $t"; else echo "($t not installed: skipped)" >&2; fi
  done
fi
SIZES=${SIZES:-"64 1500"}

if [ -n "${WIRECAP_BIN:-}" ]; then
  WIRECAP=$WIRECAP_BIN
else
  echo "building wirecap capture (release)…" >&2
  cargo build -q -j 2 --release -p wirecap-capture --example capture
  WIRECAP="$CARGO_TARGET_DIR/release/examples/capture"
fi

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

# stenotype writes the kernel's TPACKET_V3 blocks as they are, 1 MiB each, into PKT0 (the
# file being written is hidden, `.NAME`, until it is rotated): a block is counted when its
# status says the kernel handed it to user space and its offsets are sane, once per block
# sequence number (a block found twice, e.g. in a preallocated or reused file, counts once).
count_steno() { python3 - "$1" <<'PY'
import os, struct, sys
BLOCK = 1 << 20
seen = {}
for root, _, files in os.walk(sys.argv[1]):
    for f in files:
        with open(os.path.join(root, f), 'rb') as fh:
            data = fh.read()
        for off in range(0, len(data) - BLOCK + 1, BLOCK):
            _, _, status, num, first, blk_len, seq = struct.unpack_from('<IIIIIIQ', data, off)
            if status & 1 and 48 <= first < BLOCK and blk_len <= BLOCK and (num == 0 or first < blk_len):
                seen[seq] = num
print(sum(seen.values()))
PY
}

RESULTS="$WORK/results.tsv"; : > "$RESULTS"
DROPS="$WORK/drops.tsv"; : > "$DROPS"

run_one() { # tool size
  local tool=$1 size=$2 out="$WORK/$1-$2" start_wait=2 captured cpu count
  count=$N64; [ "$size" = 1500 ] && count=$N1500
  rm -rf "$out"; mkdir -p "$out"
  local timef="$out/time"
  case $tool in
    wirecap)
      # shellcheck disable=SC2086
      ip netns exec "$CAP" /usr/bin/time -f "%U %S" -o "$timef" taskset -c 1 \
        "$WIRECAP" gvb "$out/data" bench ${WIRECAP_ARGS:-} > "$out/stdout" 2> "$out/stderr" & ;;
    tcpdump)
      ip netns exec "$CAP" /usr/bin/time -f "%U %S" -o "$timef" taskset -c 1 \
        tcpdump -i gvb -w "$out/f.pcap" -B 65536 -s 262144 --time-stamp-precision=nano 2> "$out/stderr" & ;;
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
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  sleep "$start_wait"
  local rx0; rx0=$(rx_packets)
  local t0; t0=$(date +%s.%N)
  ip netns exec "$GEN" timeout -s INT "$TIMEOUT" taskset -c 0 \
    trafgen --dev gva --conf "$WORK/$size.cfg" -P 1 -n "$count" --no-sock-mem -C ${RATE:+-b "$RATE"} > "$out/trafgen" 2>&1 || true
  local t1; t1=$(date +%s.%N)
  # Time for a tool that lags the disk to catch up before it is stopped (stenotype
  # discards what is still in its ring at SIGINT; wirecap and tcpdump write it out).
  sleep "$SETTLE"
  local rx1; rx1=$(rx_packets)
  local offered=$(( rx1 - rx0 ))
  # Stop the tool: SIGINT to the tool itself (time(1) would only pass it on).
  for p in $(ip netns pids "$CAP"); do [ "$p" != "$pid" ] && kill -INT "$p" 2>/dev/null; done
  for _ in $(seq 1 150); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
  if kill -0 $pid 2>/dev/null; then # stenotype ignores SIGINT
    # (not time(1) itself: it must live to report the tool's CPU time)
    for p in $(ip netns pids "$CAP"); do [ "$p" != "$pid" ] && kill -TERM "$p" 2>/dev/null; done
    sleep 2
    for p in $(ip netns pids "$CAP"); do [ "$p" != "$pid" ] && kill -KILL "$p" 2>/dev/null; done
  fi
  wait $pid 2>/dev/null || true
  case $tool in
    wirecap)
      captured=$(awk -F= '$1=="captured"{print $2}' "$out/stdout")
      local k q w m
      k=$(awk -F= '$1=="dropped_kernel"{print $2}' "$out/stdout")
      q=$(awk -F= '$1=="dropped_queue"{print $2}' "$out/stdout")
      w=$(awk -F= '$1=="dropped_write"{print $2}' "$out/stdout")
      m=$(awk -F= '$1=="dropped_malformed"{print $2}' "$out/stdout")
      local rcv; rcv=$(awk -F= '$1=="received"{print $2}' "$out/stdout")
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$offered" "${rcv:-?}" "${captured:-?}" \
        "${k:-?}" "${q:-?}" "${w:-?}" "${m:-?}" >> "$DROPS"
      grep -h -i "direct\|page cache" "$out/stderr" | head -2 >&2 || true ;;
    tcpdump|netsniff-ng) captured=$(count_pcap "$out/f.pcap") ;;
    stenotype) captured=$(count_steno "$out/PKT0") ;;
  esac
  captured=${captured:-0}
  cpu=$(tail -1 "$timef" 2>/dev/null | awk '{printf "%.2f", $1 + $2}')
  cpu=${cpu:-0}
  local usr sys
  usr=$(tail -1 "$timef" 2>/dev/null | awk '{printf "%.2f", $1}'); usr=${usr:-0}
  sys=$(tail -1 "$timef" 2>/dev/null | awk '{printf "%.2f", $2}'); sys=${sys:-0}
  local dropped=$(( offered > captured ? offered - captured : 0 ))
  local per_m; per_m=$(python3 -c "print(f'{$cpu / max($offered,1) * 1e6:.2f}')")
  local rate; rate=$(python3 -c "print(f'{$offered / max($t1 - $t0, 1e-3) / 1e3:.0f}')")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$size" "$offered" "$captured" "$dropped" "$cpu" "$per_m" "$rate" "$load" "$usr" "$sys" | tee -a "$RESULTS" >&2
}

for size in $SIZES; do
  for tool in $TOOLS; do run_one "$tool" "$size"; done
done

table() {
  echo "trafgen: $N64 x 64-byte and $N1500 x 1500-byte frames per tool, ${RATE:-top speed}, CPU 0; tools on CPU 1"
  echo "(load1: the machine's 1-minute load average when the tool started; other work on a"
  echo " shared box takes CPU from the generator and the tools alike)"
  printf '%-12s %6s %12s %12s %12s %8s %7s %7s %11s %9s %6s\n' tool frame offered captured dropped cpu_s user_s sys_s cpu_s/Mpkt kpps_sent load1
  while IFS=$'\t' read -r t s o c d cpu pm r l u y; do
    printf '%-12s %6s %12s %12s %12s %8s %7s %7s %11s %9s %6s\n' "$t" "$s" "$o" "$c" "$d" "$cpu" "$u" "$y" "$pm" "$r" "$l"
  done < "$RESULTS"
  if [ -s "$DROPS" ]; then
    echo
    echo "wirecap's own counters (received = captured + dropped_kernel + dropped_queue + dropped_write + dropped_malformed):"
    printf '%6s %12s %12s %12s %12s %12s %12s %12s\n' frame offered received captured kernel_ring queue write malformed
    while IFS=$'\t' read -r s o r c k q w m; do
      printf '%6s %12s %12s %12s %12s %12s %12s %12s\n' "$s" "$o" "$r" "$c" "$k" "$q" "$w" "$m"
    done < "$DROPS"
  fi
}
echo
table
if [ -n "${TABLE:-}" ]; then table > "$TABLE"; fi
