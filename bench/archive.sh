#!/usr/bin/env bash
# Archive benchmark, side by side in one run against the same local S3 server (s3s-fs):
#  1. writeback: `wirecap serve --archive` uploading a stream's sealed segments (time from
#     start until its status shows no lag), against `rclone copy` of the same segment files
#     (same concurrency, 8 MiB parts);
#  2. bytes stored in the archive against the local segments;
#  3. a 1 s window and a full download from the archive (local copies evicted, cold read
#     cache) against the same from the local disk.
# Indicative only on a loaded 2-core machine: s3s-fs, wirecap and rclone share the cores
# and the disk.
#
# Needs: s3s-fs (cargo install s3s-fs@0.14.1 --features binary --locked), rclone (apt),
# curl, python3. Loopback only. Usage: bench/archive.sh [SECONDS [PPS]] (default 20 20000):
# the stream is SECONDS of synthetic traffic at PPS captured with 64 MB segments.
# Environment: WIRECAP_BIN (default target/release/wirecap, built if missing),
# CONCURRENCY (default 4), COMPRESSION (zstd or none, default zstd), KEEP=1 (leave the
# work directory).
set -euo pipefail

SECS=${1:-20}
PPS=${2:-20000}
CONC=${CONCURRENCY:-4}
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=${WIRECAP_BIN:-$HERE/target/release/wirecap}
[[ -x $BIN ]] || (cd "$HERE" && cargo build --release -q -p wirecap)
for t in s3s-fs rclone curl python3; do
  command -v "$t" >/dev/null || { echo "needs $t" >&2; exit 1; }
done
WORK=$(mktemp -d /var/tmp/wirecap-archive-bench.XXXXXX)
PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  [[ ${KEEP:-} == 1 ]] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
S3P=$(port); HTTP=$(port)
KEY=bench-key; SECRET=bench-secret-0123456789
mkdir -p "$WORK/s3/bench" "$WORK/data"
s3s-fs --host 127.0.0.1 --port "$S3P" --access-key $KEY --secret-key $SECRET "$WORK/s3" >/dev/null 2>&1 &
S3PID=$!; PIDS+=($S3PID)
# CPU time (user+sys, seconds) a process has used so far: what the comparison rests on,
# as wall time on a shared machine is noise.
cpu() { awk -v t="$(getconf CLK_TCK)" '{print ($14+$15)/t}' "/proc/$1/stat"; }
export AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET AWS_REGION=us-east-1 \
  AWS_ENDPOINT_URL=http://127.0.0.1:$S3P AWS_ALLOW_HTTP=true WIRECAP_ADMIN_PASSWORD=bench-Pa55word
AUTH=(-u admin:bench-Pa55word)
api() { curl -sf "${AUTH[@]}" "$@"; }
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

serve() { # serve ARGS…: starts wirecap serve in the background, waits until it answers
  "$BIN" serve --data "$WORK/data" --http 127.0.0.1:$HTTP "$@" >>"$WORK/serve.log" 2>&1 &
  SERVE=$!; PIDS+=($SERVE)
  for _ in $(seq 200); do api "http://127.0.0.1:$HTTP/api/v1/status" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "server did not start"; cat "$WORK/serve.log"; exit 1
}
stop() { kill "$SERVE"; wait "$SERVE" 2>/dev/null || true; }
now() { python3 -c 'import time; print(time.time())'; }

# The stream: synthetic capture, 64 MB segments, no archive yet.
printf '[retention]\nsegment = "64MB"\n' >"$WORK/data/wirecap.toml"
serve --synthetic "$PPS"
api -X POST -H 'content-type: application/json' -d '{"name":"bench"}' "http://127.0.0.1:$HTTP/api/v1/capture/start" >/dev/null
sleep "$SECS"
api -X POST -H 'content-type: application/json' -d '{}' "http://127.0.0.1:$HTTP/api/v1/capture/stop" >/dev/null
stop
NAME=$(ls "$WORK/data/streams" | grep '^bench_' | head -1)
SDIR="$WORK/data/streams/$NAME"
LOCAL=$(cat "$SDIR"/seg-*.wcs | wc -c)
NSEG=$(ls "$SDIR"/seg-*.wcs | wc -l)
echo "stream $NAME: $NSEG segments, $LOCAL bytes"

# 1. rclone copy of the same segment files.
mkdir -p "$WORK/segs" && cp "$SDIR"/seg-*.wcs "$WORK/segs/"
sync
export RCLONE_CONFIG_S3_TYPE=s3 RCLONE_CONFIG_S3_PROVIDER=Other RCLONE_CONFIG_S3_ACCESS_KEY_ID=$KEY \
  RCLONE_CONFIG_S3_SECRET_ACCESS_KEY=$SECRET RCLONE_CONFIG_S3_ENDPOINT=http://127.0.0.1:$S3P \
  RCLONE_CONFIG_S3_REGION=us-east-1
t0=$(now); S0=$(cpu $S3PID)
env -u AWS_CA_BUNDLE /usr/bin/time -f '%U %S' -o "$WORK/rclone.cpu" \
  rclone copy "$WORK/segs" "s3:bench/rclone" --transfers "$CONC" --s3-chunk-size 8M --s3-upload-concurrency 2 -q
t1=$(now); S1=$(cpu $S3PID)
RCLONE_CPU=$(awk '{print $1+$2}' "$WORK/rclone.cpu")
RCLONE_S3CPU=$(python3 -c "print(round($S1-$S0,2))")
RCLONE_S=$(python3 -c "print(round($t1-$t0,2))")
# rclone sends files below --s3-upload-cutoff (200 MiB) in one PUT; wirecap sends 8 MiB
# parts. The same with every file in parts, to tell the two apart.
t0=$(now); S0=$(cpu $S3PID)
env -u AWS_CA_BUNDLE /usr/bin/time -f '%U %S' -o "$WORK/rclone.cpu" \
  rclone copy "$WORK/segs" "s3:bench/rclone-mp" --transfers "$CONC" --s3-chunk-size 8M --s3-upload-concurrency 2 --s3-upload-cutoff 0 -q
t1=$(now); S1=$(cpu $S3PID)
RCLONE_MP_S=$(python3 -c "print(round($t1-$t0,2))")
RCLONE_MP_CPU=$(awk '{print $1+$2}' "$WORK/rclone.cpu")
RCLONE_MP_S3CPU=$(python3 -c "print(round($S1-$S0,2))")
rm -rf "$WORK/s3/bench/rclone" "$WORK/s3/bench/rclone-mp" "$WORK/segs"

# 1. wirecap writeback of the stream.
cat >>"$WORK/data/wirecap.toml" <<EOF

[archive]
url = "s3://bench/fleet"
probe = "bench"
concurrency = $CONC
compression = "${COMPRESSION:-zstd}"
EOF
t0=$(now); S0=$(cpu $S3PID)
serve
tr=$(now)
for _ in $(seq 3000); do
  lag=$(api "http://127.0.0.1:$HTTP/api/v1/status" | jget 'd["archive"]["state"]=="ok" and d["archive"]["lag_bytes"]==0 and d["archive"]["uploaded_segments_total"]>0')
  [[ $lag == True ]] && break
  sleep 0.1
done
t1=$(now); S1=$(cpu $S3PID)
WB_CPU=$(cpu $SERVE)
WB_S3CPU=$(python3 -c "print(round($S1-$S0,2))")
WB_S=$(python3 -c "print(round($t1-$t0,2))")
WB_READY_S=$(python3 -c "print(round($tr-$t0,2))")
STORED=$(cat "$WORK/s3/bench/fleet/bench/$NAME"/seg-*.wcs* | wc -c)
ALL=$(du -sb "$WORK/s3/bench/fleet/bench/$NAME" | cut -f1)

# 3. Downloads from the local disk.
SPLIT=$(api "http://127.0.0.1:$HTTP/api/v1/streams/$NAME/views/split_1sec/splits" | jget '(d["splits"] if isinstance(d,dict) else d)[len(d["splits"] if isinstance(d,dict) else d)//2]["download"]')
dl() { curl -sf "${AUTH[@]}" -o /dev/null -w '%{time_total} %{size_download}' "http://127.0.0.1:$HTTP$1"; }
LW=$(dl "$SPLIT"); LF=$(dl "/api/v1/streams/$NAME/pcap")

# Evict, restart (cold cache), download from the archive.
api -X PUT -H 'content-type: application/json' -d '{"budget":"64kB"}' "http://127.0.0.1:$HTTP/api/v1/retention" >/dev/null
for _ in $(seq 300); do ls "$SDIR"/seg-*.wcs >/dev/null 2>&1 || break; sleep 0.1; done
stop; serve
AW=$(dl "$SPLIT")
R1=$(api "http://127.0.0.1:$HTTP/api/v1/status" | jget 'd["archive"]["read_bytes_total"]')
AF=$(dl "/api/v1/streams/$NAME/pcap")
stop

python3 - "$LOCAL" "$NSEG" "$RCLONE_S" "$WB_S" "$STORED" "$ALL" "$LW" "$LF" "$AW" "$AF" "$R1" \
  "$RCLONE_CPU" "$RCLONE_S3CPU" "$WB_CPU" "$WB_S3CPU" "$(uptime | sed 's/.*load average: //')" \
  "$RCLONE_MP_S" "$RCLONE_MP_CPU" "$RCLONE_MP_S3CPU" "$WB_READY_S" <<'EOF'
import sys
local, nseg, rc, wb, stored, allb = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
lw, lf, aw, af = [tuple(map(float, a.split())) for a in sys.argv[7:11]]
r1 = int(sys.argv[11])
rcpu, rs3, wcpu, ws3, load = float(sys.argv[12]), float(sys.argv[13]), float(sys.argv[14]), float(sys.argv[15]), sys.argv[16]
rmp, rmpcpu, rmps3, ready = float(sys.argv[17]), float(sys.argv[18]), float(sys.argv[19]), float(sys.argv[20])
mb = lambda b, s: b / s / 1e6
print(f"| what | figure |\n|---|---|")
print(f"| segments | {nseg}, {local/1e6:.1f} MB |")
print(f"| rclone copy | {rc:.2f} s, {mb(local, rc):.1f} MB/s |")
print(f"| wirecap writeback (incl. server start, index, manifest) | {wb:.2f} s, {mb(local, wb):.1f} MB/s, {rc/wb:.2f}x rclone |")
print(f"| of which the server's start until its API answers | {ready:.2f} s (after it: {mb(local, wb - ready):.1f} MB/s, {rc/(wb - ready):.2f}x rclone) |")
print(f"| CPU (user+sys), rclone | client {rcpu:.2f} s, s3s-fs {rs3:.2f} s |")
print(f"| rclone copy, every file in 8 MiB parts (--s3-upload-cutoff 0) | {rmp:.2f} s, {mb(local, rmp):.1f} MB/s; CPU client {rmpcpu:.2f} s, s3s-fs {rmps3:.2f} s; wirecap {rmp/wb:.2f}x |")
print(f"| CPU (user+sys), wirecap writeback | server process {wcpu:.2f} s (from its start), s3s-fs {ws3:.2f} s |")
print(f"| load average at the end | {load} |")
print(f"| bytes stored | segments {stored/1e6:.1f} MB ({stored/local:.3f} of local), all objects {allb/1e6:.1f} MB |")
print(f"| 1 s window ({lw[1]/1e6:.1f} MB) | local {lw[0]*1000:.0f} ms, archive {aw[0]*1000:.0f} ms (fetched {r1/1e6:.1f} MB) |")
print(f"| full download ({lf[1]/1e6:.1f} MB) | local {lf[0]:.2f} s ({mb(lf[1], lf[0]):.0f} MB/s), archive {af[0]:.2f} s ({mb(af[1], af[0]):.0f} MB/s) |")
EOF
