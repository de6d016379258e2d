#!/usr/bin/env bash
# Flow-index benchmark (issue 12 item 6), side by side in one run: a selective query on a
# busy link, where every chunk holds every busy host and chunk summaries skip nothing.
#
#  * busy: `wirecap generate` with 5,000 flows picked at random for every packet (IMIX
#    sizes), 60 s at PPS packets/s (default 33,333: 2 M packets, ~0.7 GB);
#  * big:  the same link for SCALE x as long (default 10: 20 M packets; SCALE=0 skips
#    it), for "time grows with the matches, not with the capture" and for a one-minute
#    window of a long capture. BIG_SIZES (default small: 64-byte frames, ~1.6 GB, which
#    also gives the index size on 64-byte traffic; imix: ~7 GB) — skipped when `df`
#    shows less than three times its size free;
#  * many: a listing of the flows of one host over >= 1 M distinct flows (MANY=0 skips
#    it): 64-byte frames, 1.2 M flows picked at random for 4 M packets, against the same
#    listing reading every fragment record (WIRECAP_QUERY_INDEX=full).
#
# For `host H and tcp` (H a host of ~0.03% of the packets) it times, warm and with a cold
# page cache (`echo 3 > /proc/sys/vm/drop_caches` before every run):
#   tcpdump -r F -w OUT EXPR        against   wirecap export NAME --bpf EXPR -o OUT
# with the flow index and its lookup tables, with the index but no tables
# (WIRECAP_QUERY_INDEX=full: every fragment record read; warm only) and without the
# index (WIRECAP_QUERY_INDEX=off: chunk summaries + scan), and reports CPU time
# (user+sys, from hyperfine), bytes read and chunks touched (which do not depend on the
# machine's load), index size (flows.idx + flows.lut) against data, and checks that
# every output holds tcpdump's packets.
#
# Usage: bench/flows.sh   Environment: WIRECAP_BIN=path (else a release build of this
#   tree), PPS, SCALE, RUNS (default 5), WORK=dir (default /var/tmp/wirecap-flows-bench.*),
#   KEEP=1, TABLE=file, COLD=0 (skip cold-cache runs; they need root).
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
PPS=${PPS:-33333}
SCALE=${SCALE:-10}
BIG_SIZES=${BIG_SIZES:-small}
MANY=${MANY:-1}
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
  per=$([ "$BIG_SIZES" = small ] && echo 80 || echo 360) # stored bytes per packet
  need=$((3 * SCALE * 60 * PPS * per))
  free=$(df -B1 --output=avail "$WORK" | tail -1)
  if [ "$free" -lt "$need" ]; then
    echo "== skipping the ${SCALE}x capture: $free bytes free, it needs $need" >&2
    SCALE=0
  fi
fi
if [ "$SCALE" -gt 0 ]; then
  [ -s "$WORK/big.pcap" ] || "$W" generate -o "$WORK/big.pcap" --seconds $((60 * SCALE)) --pps "$PPS" --flows 5000 --seed 7 --sizes "$BIG_SIZES" 2>/dev/null
  "$W" import --data "$DATA" --name big -q "$WORK/big.pcap" >/dev/null
  # The capture file is only needed for tcpdump; keep the disk for the next one.
  BIG=$("$W" list --data "$DATA" | awk '$1 ~ /^big_/ {print $1; exit}')
fi

# H: the least busy IPv4 TCP source host among the first 200k packets (a few hundred
# packets of the capture, ~0.03%).
H=$(tcpdump -nn -r "$WORK/busy.pcap" -c 200000 'ip and tcp' 2>/dev/null | awk '$2=="IP"{print $3}' \
  | grep -E '^([0-9]+\.){4}[0-9]+$' | sed 's/\.[0-9]*$//' | sort | uniq -c | sort -n | awk 'NR==1{print $2}')
EXPR="host $H and tcp"
echo "== query: $EXPR" >&2

index_bytes() { du -cb "$DATA"/streams/"$1"/flows.idx "$DATA"/streams/"$1"/flows.lut | tail -1 | cut -f1; }
lut_bytes() { du -cb "$DATA"/streams/"$1"/flows.lut | tail -1 | cut -f1; }
pct() { python3 -c "print(f'{100*$1/$2:.2f}')"; }
data_bytes() { du -cb "$DATA"/streams/"$1"/seg-*.wcs | tail -1 | cut -f1; }

results=()
time_it() { # label "command line" -> median seconds (warm), median (cold)
  local label=$1 cmd=$2
  local json="$WORK/h.json" warm cold=-
  hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$json" -n "$label" "$cmd" >&2
  warm=$(python3 -c "import json;print(f\"{json.load(open('$json'))['results'][0]['median']:.4f}\")")
  # CPU seconds (user + sys, mean of the warm runs): what the load does not change much.
  python3 -c "import json;r=json.load(open('$json'))['results'][0];print(f\"{r['user']+r['system']:.4f}\")" >"$WORK/cpu.$label"
  [ "${WARM_ONLY:-0}" = 1 ] && { echo "$warm -"; return; }
  if [ "$COLD" = 1 ]; then
    hyperfine -N --runs "$RUNS" --prepare 'sh -c "sync; echo 3 > /proc/sys/vm/drop_caches"' \
      --export-json "$json" -n "$label" "$cmd" >&2
    cold=$(python3 -c "import json;print(f\"{json.load(open('$json'))['results'][0]['median']:.4f}\")")
  fi
  echo "$warm $cold"
}

row() { # label stream pcap-or-- extra-export-args...
  local label=$1 name=$2 pcap=$3; shift 3
  local tp=- tw=- tc=- same=-
  if [ "$pcap" != - ]; then
    read -r tw tc < <(time_it tcpdump "tcpdump --time-stamp-precision=nano -r $pcap -w $WORK/out-t.pcap '$EXPR'")
    tp="$tw / $tc"
  fi
  local iw ic sw sc
  read -r iw ic < <(time_it index "$W export --data $DATA $name --bpf '$EXPR' $* -o $WORK/out-i.pcap")
  local fw
  read -r fw _ < <(WARM_ONLY=1 time_it full "env WIRECAP_QUERY_INDEX=full $W export --data $DATA $name --bpf '$EXPR' $* -o $WORK/out-f.pcap")
  read -r sw sc < <(time_it scan "env WIRECAP_QUERY_INDEX=off $W export --data $DATA $name --bpf '$EXPR' $* -o $WORK/out-s.pcap")
  local cpu
  cpu="$(cat "$WORK/cpu.index") / $(cat "$WORK/cpu.full")"
  [ "$pcap" != - ] && cpu="$cpu / $(cat "$WORK/cpu.tcpdump")"
  local full_info ird frd
  full_info=$(WIRECAP_QUERY_INDEX=full "$W" export --data "$DATA" "$name" --bpf "$EXPR" "$@" -o "$WORK/out-f.pcap" 2>&1)
  local info scan_info
  info=$("$W" export --data "$DATA" "$name" --bpf "$EXPR" "$@" -o "$WORK/out-i.pcap" 2>&1)
  scan_info=$(WIRECAP_QUERY_INDEX=off "$W" export --data "$DATA" "$name" --bpf "$EXPR" "$@" -o "$WORK/out-s.pcap" 2>&1)
  ird=$(sed -n 's/.*: \([0-9]*\) index bytes read.*/\1/p' <<<"$info")
  frd=$(sed -n 's/.*: \([0-9]*\) index bytes read.*/\1/p' <<<"$full_info")
  cmp -s "$WORK/out-i.pcap" "$WORK/out-f.pcap" || same="NO (tables vs full)"
  [ "$same" = - ] && { cmp -s "$WORK/out-i.pcap" "$WORK/out-s.pcap" && same=yes || same=NO; }
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
  results+=("$(printf '| %-18s | %7s | %-17s | %-17s | %-7s | %-17s | %6s | %-24s | %8s / %-9s | %5s / %-5s | %11s / %-11s | %s |' \
    "$label" "$pk" "$tp" "$iw / $ic" "$fw" "$sw / $sc" "$ratio" "$cpu" "$ird" "$frd" "$ch" "$sch" "$rd" "$srd" "$same")")
}

row "busy 60 s" "$BUSY" "$WORK/busy.pcap"
if [ "$SCALE" -gt 0 ]; then
  row "big ${SCALE}x" "$BIG" "$WORK/big.pcap"
  row "big, one minute" "$BIG" - --start $(( (T0 + 60 * (SCALE / 2)) * 1000000000 )) --stop $(( (T0 + 60 * (SCALE / 2) + 60) * 1000000000 ))
fi

many_rows=()
if [ "$MANY" = 1 ]; then
  echo "== many flows: generating and importing" >&2
  "$W" generate -o "$WORK/many.pcap" --seconds 60 --pps "${MANY_PPS:-66667}" --flows "${MANY_FLOWS:-1200000}" --seed 11 --sizes small 2>/dev/null
  DM="$WORK/data-many" # its own store: the listing is of this capture only
  "$W" import --data "$DM" --name many -q "$WORK/many.pcap" >/dev/null
  MH=$(tcpdump -nn -r "$WORK/many.pcap" -c 1000 'ip and tcp' 2>/dev/null | awk '$2=="IP"{print $3}' \
    | sed 's/\.[0-9]*$//' | sed -n 1p)
  MPCAP=$(stat -c %s "$WORK/many.pcap")
  rm -f "$WORK/many.pcap"
  MANYS=$("$W" list --data "$DM" | awk '$1 ~ /^many_/ {print $1; exit}')
  n_flows=$("$W" flows --data "$DM" --start 2025-01-01T00:00:00Z --stop 2025-01-02T00:00:00Z --format csv | tail -n +2 | wc -l)
  lst="$W flows --data $DM --start 2025-01-01T00:00:00Z --stop 2025-01-02T00:00:00Z --bpf 'host $MH' --format csv"
  read -r lw lc < <(time_it list "$lst")
  read -r lfw _ < <(WARM_ONLY=1 time_it listfull "env WIRECAP_QUERY_INDEX=full $lst")
  a=$(sh -c "$lst" | md5sum); b=$(WIRECAP_QUERY_INDEX=full sh -c "$lst" | md5sum)
  n_host=$(sh -c "$lst" | tail -n +2 | wc -l)
  many_rows+=("many: $MPCAP bytes pcap (4 M 64-byte frames), $n_flows flows listed, flow index $(DATA=$DM index_bytes "$MANYS") bytes ($(DATA=$DM lut_bytes "$MANYS") of tables)")
  many_rows+=("| flows of host $MH ($n_host flows) | tables: $lw s warm / $lc s cold, $(cat "$WORK/cpu.list") CPU-s | no tables: $lfw s warm, $(cat "$WORK/cpu.listfull") CPU-s | same: $([ "$a" = "$b" ] && echo yes || echo NO) |")
fi

{
  echo
  echo "busy: $(stat -c %s "$WORK/busy.pcap") bytes pcap, flow index $(index_bytes "$BUSY") of $(data_bytes "$BUSY") segment bytes ($(pct "$(index_bytes "$BUSY")" "$(data_bytes "$BUSY")")%; tables $(pct "$(lut_bytes "$BUSY")" "$(data_bytes "$BUSY")")%)"
  [ "$SCALE" -gt 0 ] && echo "big ($BIG_SIZES frames): flow index $(index_bytes "$BIG") of $(data_bytes "$BIG") segment bytes ($(pct "$(index_bytes "$BIG")" "$(data_bytes "$BIG")")%; tables $(pct "$(lut_bytes "$BIG")" "$(data_bytes "$BIG")")%)"
  echo "import of busy: ${IMPORT_T} s with the flow index, ${IMPORT_T_OFF} s without"
  echo "$(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); median of $RUNS runs; times in s, warm / cold page cache"
  echo "| query              | packets | tcpdump -r -w     | wirecap, tables   | no tables | wirecap, scan   | ratio  | CPU-s tables / full / tcpdump | index bytes tables / full | chunks idx / scan | bytes read idx / scan | same |"
  echo "|--------------------|---------|-------------------|-------------------|-----------|-----------------|--------|-------------------------------|---------------------------|-------------------|-----------------------|------|"
  printf '%s\n' "${results[@]}"
  if [ ${#many_rows[@]} -gt 0 ]; then printf "%s\n" "${many_rows[@]}"; fi
} | tee ${TABLE:+"$TABLE"}
