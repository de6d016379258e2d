#!/usr/bin/env bash
# Flow-index benchmark (issue 12 item 6), side by side in one run: a selective query on a
# busy link, where every chunk holds every busy host and chunk summaries skip nothing.
#
#  * busy: `wirecap generate` with 5,000 flows picked at random for every packet (IMIX
#    sizes), 60 s at PPS packets/s (default 33,333: 2 M packets, ~0.7 GB);
#  * big:  the same link for SCALE x as long (default 10: 20 M packets, ~7 GB; SCALE=0
#    skips it), for "time grows with the matches, not with the capture" and for a
#    one-minute window of a long capture.
#
# For `host H and tcp` (H a host of ~0.03% of the packets) it times, warm and with a cold
# page cache (`echo 3 > /proc/sys/vm/drop_caches` before every run):
#   tcpdump -r F -w OUT EXPR        against   wirecap export NAME --bpf EXPR -o OUT
# with the flow index and without it (WIRECAP_QUERY_INDEX=off: chunk summaries + scan),
# and reports bytes read and chunks touched (which do not depend on the machine's load),
# index size against data, and checks that every output holds tcpdump's packets.
#
# Usage: bench/flows.sh   Environment: WIRECAP_BIN=path (else a release build of this
#   tree), PPS, SCALE, RUNS (default 5), WORK=dir (default /var/tmp/wirecap-flows-bench.*),
#   KEEP=1, TABLE=file, COLD=0 (skip cold-cache runs; they need root).
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
PPS=${PPS:-33333}
SCALE=${SCALE:-10}
RUNS=${RUNS:-5}
COLD=${COLD:-1}
WORK=${WORK:-$(mktemp -d /var/tmp/wirecap-flows-bench.XXXXXX)}
mkdir -p "$WORK"
cleanup() { [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT

if [ -z "${WIRECAP_BIN:-}" ]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HERE/target}
  cargo build --release -q -p wirecap --manifest-path "$HERE/Cargo.toml"
  WIRECAP_BIN=$CARGO_TARGET_DIR/release/wirecap
fi
W=$WIRECAP_BIN
for t in tcpdump hyperfine python3; do command -v $t >/dev/null || { echo "needs $t" >&2; exit 1; }; done
if [ "$COLD" = 1 ] && [ "$(id -u)" != 0 ]; then echo "cold-cache runs need root (or COLD=0)" >&2; exit 1; fi

T0=1735689600 # 2025-01-01T00:00:00Z
DATA="$WORK/data"
echo "== generating and importing in $WORK" >&2
[ -s "$WORK/busy.pcap" ] || "$W" generate -o "$WORK/busy.pcap" --seconds 60 --pps "$PPS" --flows 5000 --seed 7 2>/dev/null
IMPORT_T=$( { /usr/bin/time -f %e "$W" import --data "$DATA" --name busy -q "$WORK/busy.pcap" >/dev/null; } 2>&1 | tail -1)
IMPORT_T_OFF=$( { WIRECAP_FLOW_INDEX=off /usr/bin/time -f %e "$W" import --data "$WORK/data-off" --name busy -q "$WORK/busy.pcap" >/dev/null; } 2>&1 | tail -1)
rm -rf "$WORK/data-off"
BUSY=$("$W" list --data "$DATA" | awk '$1 ~ /^busy_/ {print $1; exit}')
if [ "$SCALE" -gt 0 ]; then
  [ -s "$WORK/big.pcap" ] || "$W" generate -o "$WORK/big.pcap" --seconds $((60 * SCALE)) --pps "$PPS" --flows 5000 --seed 7 2>/dev/null
  "$W" import --data "$DATA" --name big -q "$WORK/big.pcap" >/dev/null
  BIG=$("$W" list --data "$DATA" | awk '$1 ~ /^big_/ {print $1; exit}')
fi

# H: the least busy IPv4 TCP source host among the first 200k packets (a few hundred
# packets of the capture, ~0.03%).
H=$(tcpdump -nn -r "$WORK/busy.pcap" -c 200000 'ip and tcp' 2>/dev/null | awk '$2=="IP"{print $3}' \
  | grep -E '^([0-9]+\.){4}[0-9]+$' | sed 's/\.[0-9]*$//' | sort | uniq -c | sort -n | awk 'NR==1{print $2}')
EXPR="host $H and tcp"
echo "== query: $EXPR" >&2

index_bytes() { du -cb "$DATA"/streams/"$1"/flows.idx | tail -1 | cut -f1; }
data_bytes() { du -cb "$DATA"/streams/"$1"/seg-*.wcs | tail -1 | cut -f1; }

results=()
time_it() { # label command... -> median seconds (warm), median (cold)
  local label=$1; shift
  local json="$WORK/h.json" warm cold=-
  hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$json" -n "$label" "$*" >/dev/null 2>&1
  warm=$(python3 -c "import json;print(json.load(open('$json'))['results'][0]['median'])")
  if [ "$COLD" = 1 ]; then
    hyperfine -N --runs "$RUNS" --prepare 'sh -c "sync; echo 3 > /proc/sys/vm/drop_caches"' \
      --export-json "$json" -n "$label" "$*" >/dev/null 2>&1
    cold=$(python3 -c "import json;print(json.load(open('$json'))['results'][0]['median'])")
  fi
  echo "$warm $cold"
}

row() { # label stream pcap-or-- extra-export-args...
  local label=$1 name=$2 pcap=$3; shift 3
  local tp=- tw=- tc=- same=-
  if [ "$pcap" != - ]; then
    read -r tw tc < <(time_it tcpdump tcpdump -r "$pcap" -w "$WORK/out-t.pcap" "$EXPR")
    tp="$tw / $tc"
  fi
  local iw ic sw sc
  read -r iw ic < <(time_it index "$W" export --data "$DATA" "$name" --bpf "$EXPR" "$@" -o "$WORK/out-i.pcap")
  read -r sw sc < <(WIRECAP_QUERY_INDEX=off time_it scan env WIRECAP_QUERY_INDEX=off "$W" export --data "$DATA" "$name" --bpf "$EXPR" "$@" -o "$WORK/out-s.pcap")
  local info scan_info
  info=$("$W" export --data "$DATA" "$name" --bpf "$EXPR" "$@" -o "$WORK/out-i.pcap" 2>&1)
  scan_info=$(WIRECAP_QUERY_INDEX=off "$W" export --data "$DATA" "$name" --bpf "$EXPR" "$@" -o "$WORK/out-s.pcap" 2>&1)
  cmp -s "$WORK/out-i.pcap" "$WORK/out-s.pcap" && same=yes || same=NO
  if [ "$pcap" != - ]; then
    cmp -s <(tcpdump -nn -tt --nano -r "$WORK/out-t.pcap" -x 2>/dev/null) \
           <(tcpdump -nn -tt --nano -r "$WORK/out-i.pcap" -x 2>/dev/null) || same="$same, NOT tcpdump's"
  fi
  local pk rd ch srd sch
  pk=$(sed -n 's/^wrote \([0-9]*\) of.*/\1/p' <<<"$info")
  rd=$(sed -n 's/.*read \([0-9]*\) bytes.*/\1/p' <<<"$info")
  ch=$(sed -n 's/.*skipped \([0-9]*\) of \([0-9]*\) chunks.*/\2-\1/p' <<<"$info" | bc)
  srd=$(sed -n 's/.*read \([0-9]*\) bytes.*/\1/p' <<<"$scan_info")
  sch=$(sed -n 's/.*skipped \([0-9]*\) of \([0-9]*\) chunks.*/\2-\1/p' <<<"$scan_info" | bc)
  local ratio=-
  [ "$pcap" != - ] && ratio=$(python3 -c "print(f'{$tw/$iw:.1f}x')")
  results+=("$(printf '| %-22s | %7s | %-17s | %-17s | %-17s | %6s | %5s / %-5s | %13s / %-13s | %s |' \
    "$label" "$pk" "$tp" "$iw / $ic" "$sw / $sc" "$ratio" "$ch" "$sch" "$rd" "$srd" "$same")")
}

row "busy 60 s" "$BUSY" "$WORK/busy.pcap"
if [ "$SCALE" -gt 0 ]; then
  row "big ${SCALE}x" "$BIG" "$WORK/big.pcap"
  row "big, one minute" "$BIG" - --start $(( (T0 + 60 * (SCALE / 2)) * 1000000000 )) --stop $(( (T0 + 60 * (SCALE / 2) + 60) * 1000000000 ))
fi

{
  echo
  echo "busy: $(stat -c %s "$WORK/busy.pcap") bytes pcap, flow index $(index_bytes "$BUSY") of $(data_bytes "$BUSY") segment bytes ($(python3 -c "print(f'{100*$(index_bytes "$BUSY")/$(data_bytes "$BUSY"):.2f}')")%)"
  echo "import of busy: ${IMPORT_T} s with the flow index, ${IMPORT_T_OFF} s without"
  echo "$(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); median of $RUNS runs; times in s, warm / cold page cache"
  echo "| query                  | packets | tcpdump -r -w     | wirecap, index    | wirecap, scan     | ratio  | chunks idx / scan | bytes read idx / scan         | same |"
  echo "|------------------------|---------|-------------------|-------------------|-------------------|--------|-------------------|-------------------------------|------|"
  printf '%s\n' "${results[@]}"
} | tee ${TABLE:+"$TABLE"}
