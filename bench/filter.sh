#!/usr/bin/env bash
# Filtered-export benchmark, side by side in one run: `tcpdump -r big.pcap -w out.pcap EXPR`
# against `wirecap export NAME --bpf EXPR -o out.pcap` from wirecap's store (the same
# capture imported first), for a broad filter (`tcp`) and a selective one
# (`host H and port 443`), timed with hyperfine (warm page cache for both).
#
# Two ~1 GB captures from `wirecap generate` (10.x addresses, 70% TCP, IMIX sizes):
#  * "churn": 20 consecutive 5-second pieces, each its own seed and 40 flows (hosts come
#    and go, as on a real link over minutes). H is the busiest source of one piece with a
#    flow to port 443: ~1-2% of the packets, all within 5 of 100 seconds.
#  * "uniform": one generator, 300 flows picked at random for every packet over the whole
#    capture. H then occurs in every chunk, so no chunk can be skipped: the worst case for
#    per-chunk summaries, reported for honesty.
#
# Usage: bench/filter.sh            Environment: WIRECAP_BIN=path (prebuilt binary instead
#   of building this tree), PPS (default 20000: 100 s of it is ~1.1 GB), RUNS (default 5),
#   WORK=dir (default a fresh /var/tmp/wirecap-filter-bench.*), KEEP=1, TABLE=file.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
PPS=${PPS:-20000}
RUNS=${RUNS:-5}
WORK=${WORK:-$(mktemp -d /var/tmp/wirecap-filter-bench.XXXXXX)}
mkdir -p "$WORK"
cleanup() { [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT

if [ -z "${WIRECAP_BIN:-}" ]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HERE/target}
  cargo build --release -q -p wirecap --manifest-path "$HERE/Cargo.toml"
  WIRECAP_BIN=$CARGO_TARGET_DIR/release/wirecap
fi
W=$WIRECAP_BIN
for t in tcpdump hyperfine; do command -v $t >/dev/null || { echo "needs $t" >&2; exit 1; }; done

T0=1735689600 # 2025-01-01T00:00:00Z
echo "== generating captures in $WORK" >&2
if [ ! -s "$WORK/uniform.pcap" ]; then
  "$W" generate -o "$WORK/uniform.pcap" --seconds 100 --pps "$PPS" --flows 300 --seed 7 2>/dev/null
fi
if [ ! -s "$WORK/churn.pcap" ]; then
  for i in $(seq 0 19); do
    "$W" generate -o "$WORK/piece$i.pcap" --seconds 5 --pps "$PPS" --flows 40 --seed $((100 + i)) \
      --start $(( (T0 + 5 * i) * 1000000000 )) 2>/dev/null
  done
  # One pcap: the first piece's file header, then every piece's records.
  { cat "$WORK/piece0.pcap"; for i in $(seq 1 19); do tail -c +25 "$WORK/piece$i.pcap"; done; } > "$WORK/churn.pcap"
fi

# The selective host: the busiest source among packets to TCP port 443 of piece 7.
H_CHURN=$(tcpdump -nn -r "$WORK/piece7.pcap" 'ip and tcp dst port 443' 2>/dev/null \
  | awk '{print $3}' | sed 's/\.[0-9]*$//' | sort | uniq -c | sort -rn | awk 'NR==1{print $2}')
H_UNI=$(tcpdump -nn -r "$WORK/uniform.pcap" -c 200000 'ip and tcp dst port 443' 2>/dev/null \
  | awk '{print $3}' | sed 's/\.[0-9]*$//' | sort | uniq -c | sort -rn | awk 'NR==1{print $2}')
rm -f "$WORK"/piece*.pcap

DATA="$WORK/data"
rm -rf "$DATA"
declare -A NAME
for c in churn uniform; do
  NAME[$c]=$("$W" import --data "$DATA" --name "$c" -q "$WORK/$c.pcap" 2>/dev/null | tail -1)
done

results=()
row() { # capture label expr
  local c=$1 label=$2 expr=$3 json="$WORK/h.json"
  local tp; tp=$(tcpdump -r "$WORK/$c.pcap" --count "$expr" 2>/dev/null | awk '{print $1}')
  local total; total=$(tcpdump -r "$WORK/$c.pcap" --count 2>/dev/null | awk '{print $1}')
  hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$json" \
    -n tcpdump "tcpdump -r $WORK/$c.pcap -w $WORK/out-t.pcap '$expr'" \
    -n wirecap "$W export --data $DATA ${NAME[$c]} --bpf '$expr' -o $WORK/out-w.pcap" >&2
  # Both outputs must hold the same packets.
  local same=no
  if cmp -s <(tcpdump -nn -tt --nano -r "$WORK/out-t.pcap" -x 2>/dev/null) \
            <(tcpdump -nn -tt --nano -r "$WORK/out-w.pcap" -x 2>/dev/null); then same=yes; fi
  local skip; skip=$("$W" export --data "$DATA" "${NAME[$c]}" --bpf "$expr" -o /dev/null 2>&1 \
    | sed -n 's/.*skipped \([0-9]*\) of \([0-9]*\) chunks.*/\1\/\2/p')
  local t w
  t=$(python3 -c "import json;d=json.load(open('$json'));print(d['results'][0]['median'])")
  w=$(python3 -c "import json;d=json.load(open('$json'));print(d['results'][1]['median'])")
  results+=("$(printf '| %-7s | %-34s | %9s / %-9s | %8.3f | %8.3f | %6.1fx | %-9s | %-4s |' \
    "$c" "$label" "$tp" "$total" "$t" "$w" "$(python3 -c "print($t/$w)")" "$skip" "$same")")
}

row churn   "tcp" "tcp"
row churn   "host $H_CHURN and port 443" "host $H_CHURN and port 443"
row uniform "tcp" "tcp"
row uniform "host $H_UNI and port 443" "host $H_UNI and port 443"

{
  echo
  echo "captures: churn $(stat -c %s "$WORK/churn.pcap") bytes, uniform $(stat -c %s "$WORK/uniform.pcap") bytes; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); median of $RUNS runs"
  echo "| capture | filter                             | matched / packets     | tcpdump s| wirecap s|  ratio  | skipped   | same |"
  echo "|---------|------------------------------------|-----------------------|----------|----------|---------|-----------|------|"
  printf '%s\n' "${results[@]}"
} | tee ${TABLE:+"$TABLE"}
