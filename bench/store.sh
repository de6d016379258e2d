#!/usr/bin/env bash
# Store benchmark: wirecap side by side with the reference tools, same files, same run.
#
#   import of a ~1 GB / 60 s capture     vs  tcpdump -r big.pcap -w out.pcap
#   full export                          vs  cat big.pcap > /dev/null, and cp
#   one second out of the capture        vs  editcap -A -B   (at 15 s and 60 s sizes)
#   listing all 1 s splits of 1 hour     (goal: under 50 ms)
#
# Everything runs from the page cache (the machine has far more RAM than the files), so
# the figures compare CPU and copy paths, not the disk. Results: bench/out/store.md.
# Usage: bench/store.sh [SECONDS_OF_BIG_CAPTURE]   (default 60; ~1 GB at 30,500 pps IMIX)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
out=bench/out
mkdir -p "$out"
for t in tcpdump editcap hyperfine; do
  command -v $t >/dev/null || { echo "installing $t"; apt-get install -y -qq tcpdump tshark hyperfine >/dev/null; break; }
done
[[ -n ${NO_BUILD:-} ]] || cargo build --release -q -p wirecap
W=${CARGO_TARGET_DIR:-$PWD/target}/release/wirecap
work=$(mktemp -d /var/tmp/wirecap-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "generating captures in $work"
$W generate -o "$work/big.pcap" --seconds "$secs" --pps 30500 --seed 7 2>/dev/null
$W generate -o "$work/small.pcap" --seconds $((secs / 4)) --pps 30500 --seed 7 2>/dev/null
$W generate -o "$work/hour.pcap" --seconds 3600 --pps 50 --seed 9 2>/dev/null
big_bytes=$(stat -c %s "$work/big.pcap")
small_bytes=$(stat -c %s "$work/small.pcap")
cat "$work"/*.pcap > /dev/null   # warm the page cache

hf() { # name, commands...: median seconds of each command, via hyperfine
  local name=$1; shift
  hyperfine -N --style none --warmup 1 --runs "${RUNS:-5}" --export-json "$out/$name.json" "$@" >/dev/null 2>&1 \
    || hyperfine --style none --warmup 1 --runs "${RUNS:-5}" --export-json "$out/$name.json" "$@" >/dev/null
  python3 - "$out/$name.json" <<'PY'
import json,sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(r["median"], r["user"] + r["system"])
PY
}

D=$work/data
rm -rf "$D"
# import: a fresh data dir per run, so each run creates the stream from nothing
# wirecap's import is durable (fdatasync before it reports success); tcpdump's output is
# not, so it is also timed followed by `sync -d` of its file.
read -r t_imp c_imp t_td c_td t_tds c_tds < <(hf import \
  --prepare "rm -rf $D $work/td.pcap" "$W import -q --data $D --name big $work/big.pcap" \
  "tcpdump -r $work/big.pcap -w $work/td.pcap" \
  "sh -c 'tcpdump -r $work/big.pcap -w $work/td.pcap 2>/dev/null && sync -d $work/td.pcap'" | paste -sd' ')
$W import -q --data "$D" --name big "$work/big.pcap" > "$work/name"
$W import -q --data "$D" --name small "$work/small.pcap" > "$work/name_small"
$W import -q --data "$D" --name hour "$work/hour.pcap" > "$work/name_hour"
big=$(cat "$work/name"); small=$(cat "$work/name_small"); hour=$(cat "$work/name_hour")

read -r t_exp c_exp t_cat c_cat t_expf c_expf t_cp c_cp < <(hf export \
  "sh -c '$W export --data $D $big -o - > /dev/null'" \
  "sh -c 'cat $work/big.pcap > /dev/null'" \
  "$W export --data $D $big -o $work/exp.pcap" \
  "cp $work/big.pcap $work/cp.pcap" | paste -sd' ')
cmp <($W export --data "$D" "$big" -o - 2>/dev/null | tail -c +25) <(tail -c +25 "$work/big.pcap") \
  && echo "full export is byte-identical to the generated file (after the header)"

# one second from the middle: [T, T+1s)
start_ns=$(( 1735689600 * 1000000000 + (secs / 2) * 1000000000 ))
stop_ns=$(( start_ns + 1000000000 ))
A=$(date -u -d @$(( start_ns / 1000000000 )) '+%Y-%m-%d %H:%M:%S')
B=$(date -u -d @$(( stop_ns / 1000000000 )) '+%Y-%m-%d %H:%M:%S')
sstart_ns=$(( 1735689600 * 1000000000 + (secs / 8) * 1000000000 ))
sstop_ns=$(( sstart_ns + 1000000000 ))
SA=$(date -u -d @$(( sstart_ns / 1000000000 )) '+%Y-%m-%d %H:%M:%S')
SB=$(date -u -d @$(( sstop_ns / 1000000000 )) '+%Y-%m-%d %H:%M:%S')
read -r t_sec_big c_sec_big t_ed_big c_ed_big t_sec_small c_sec_small t_ed_small c_ed_small < <(hf second \
  "$W export --data $D $big --start $start_ns --stop $stop_ns -o $work/sec.pcap" \
  "editcap -F pcap -A '$A' -B '$B' $work/big.pcap $work/ed.pcap" \
  "$W export --data $D $small --start $sstart_ns --stop $sstop_ns -o $work/ssec.pcap" \
  "editcap -F pcap -A '$SA' -B '$SB' $work/small.pcap $work/sed.pcap" | paste -sd' ')
n_w=$(tcpdump -r "$work/sec.pcap" 2>/dev/null | wc -l); n_e=$(tcpdump -r "$work/ed.pcap" 2>/dev/null | wc -l)
echo "one second: wirecap $n_w packets, editcap $n_e packets"

read -r t_list c_list < <(hf list "sh -c '$W splits --data $D $hour --view split_1sec > /dev/null'")
n_splits=$($W splits --data "$D" "$hour" --view split_1sec | wc -l)

python3 - "$out/store.md" <<PY
import sys
big=$big_bytes; small=$small_bytes
rows=[
 ("import ${secs} s capture (%.2f GB), durable" % (big/1e9), $t_imp, $c_imp, "tcpdump -r -w (not synced)", $t_td, $c_td, "faster"),
 ("import ${secs} s capture (%.2f GB), durable" % (big/1e9), $t_imp, $c_imp, "tcpdump -r -w + sync -d", $t_tds, $c_tds, "faster"),
 ("full export to /dev/null", $t_exp, $c_exp, "cat > /dev/null", $t_cat, $c_cat, "within 1.5x"),
 ("full export to a file", $t_expf, $c_expf, "cp", $t_cp, $c_cp, "within 1.5x"),
 ("one second of %.2f GB" % (big/1e9), $t_sec_big, $c_sec_big, "editcap -A -B", $t_ed_big, $c_ed_big, "100x faster"),
 ("one second of %.2f GB" % (small/1e9), $t_sec_small, $c_sec_small, "editcap -A -B", $t_ed_small, $c_ed_small, "100x faster, flat"),
]
with open(sys.argv[1],"w") as f:
    f.write("| operation | wirecap wall | wirecap CPU | reference | ref wall | ref CPU | wall ratio | CPU ratio | goal |\n|---|---|---|---|---|---|---|---|---|\n")
    for name,w,wc,ref,r,rc,goal in rows:
        f.write(f"| {name} | {w*1000:.1f} ms | {wc*1000:.1f} ms | {ref} | {r*1000:.1f} ms | {rc*1000:.1f} ms | {r/w:.2f}x | {rc/max(wc,1e-4):.2f}x | {goal} |\n")
    f.write(f"| list all $n_splits 1 s splits of a 1 h capture | {$t_list*1000:.1f} ms | {$c_list*1000:.1f} ms | — | — | — | — | — | < 50 ms |\n")
    f.write(f"\nratios are reference / wirecap (above 1: wirecap is faster). load average at the end: {open('/proc/loadavg').read().split()[0]}\n")
print(open(sys.argv[1]).read())
PY
