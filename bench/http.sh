#!/usr/bin/env bash
# HTTP download benchmark: `/pcap/single` of a ~2 GB stream from `wirecap serve`, side by
# side with nginx serving the very same bytes as a static file (sendfile), over loopback,
# plain HTTP and HTTPS (TLS 1.3, the same certificate for both). Goal: wirecap >= 80% of
# nginx. curl is the client (`-o /dev/null`); each figure is the best of RUNS interleaved downloads.
#
# Everything is on 127.0.0.1 and runs from the page cache; on this 2-core machine the
# client, the server and the kernel's loopback share the two cores, for both servers.
# Results: bench/out/http.md.
#
# Usage: bench/http.sh [SECONDS_OF_CAPTURE] [RUNS]   (default 120 s ≈ 2 GB, 5 runs)
# Needs: curl, nginx (apt-get install nginx-light), and a release build (made here).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-120}
runs=${2:-5}
out=bench/out
mkdir -p "$out"
command -v nginx >/dev/null || { echo "installing nginx"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; }
command -v curl >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null
cargo build --release -q -p wirecap
W=${CARGO_TARGET_DIR:-$PWD/target}/release/wirecap

work=$(mktemp -d /var/tmp/wirecap-http.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

echo "generating a ${secs} s capture and importing it (in $work)"
"$W" generate -o "$work/big.pcap" --seconds "$secs" --pps 30500 --seed 7 2>/dev/null
"$W" import -q --data "$work/data" --name bench "$work/big.pcap" >/dev/null 2>&1
rm -f "$work/big.pcap"
name=$("$W" list --data "$work/data" | head -1 | cut -f1)
mkdir -p "$work/www"
"$W" export --data "$work/data" "$name" -o "$work/www/stream.pcap" 2>/dev/null
size=$(stat -c %s "$work/www/stream.pcap")
echo "stream $name: $size bytes"

pw=bench-password
wh=$(free_port); ws=$(free_port); nh=$(free_port); ns=$(free_port)
WIRECAP_ADMIN_PASSWORD=$pw RUST_LOG=warn "$W" serve --data "$work/data" \
  --http "127.0.0.1:$wh" --https "127.0.0.1:$ws" >"$work/serve.log" 2>&1 &
pids+=($!)
wait_port "$wh"; wait_port "$ws"

mkdir -p "$work/nginx/logs"
cat >"$work/nginx/nginx.conf" <<EOF
user root;
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$nh;
    root $work/www;
  }
  server {
    listen 127.0.0.1:$ns ssl;
    ssl_certificate $work/data/tls/cert.pem;
    ssl_certificate_key $work/data/tls/key.pem;
    ssl_protocols TLSv1.3;
    root $work/www;
  }
}
EOF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
wait_port "$nh"; wait_port "$ns"

# One download: prints its seconds (and checks status and length).
once() {
  local url=$1; shift
  local r
  r=$(curl -s -k "$@" -o /dev/null -w '%{time_total} %{size_download} %{http_code}' "$url")
  local t=${r%% *} rest=${r#* }
  local n=${rest%% *} code=${rest#* }
  [ "$code" = 200 ] || { echo "GET $url: HTTP $code" >&2; exit 1; }
  [ "$n" = "$size" ] || { echo "GET $url: $n bytes, expected $size" >&2; exit 1; }
  echo "$t"
}
min() { awk -v a="$1" -v b="$2" 'BEGIN{print (b == "" || a < b) ? a : b}'; }

# Runs are interleaved (nginx, wirecap, nginx, wirecap, …) so that load from other work
# on the machine falls on both alike; each figure is the best of its runs.
echo "downloading ($runs interleaved runs)"
t_nh=""; t_wh=""; t_ns=""; t_ws=""
for _ in $(seq 1 "$runs"); do
  t_nh=$(min "$(once "http://127.0.0.1:$nh/stream.pcap")" "$t_nh")
  t_wh=$(min "$(once "http://127.0.0.1:$wh/pcap/single?StreamName=$name" -u "admin:$pw")" "$t_wh")
  t_ns=$(min "$(once "https://127.0.0.1:$ns/stream.pcap")" "$t_ns")
  t_ws=$(min "$(once "https://127.0.0.1:$ws/pcap/single?StreamName=$name" -u "admin:$pw")" "$t_ws")
done

row() { # label seconds ref_seconds
  awk -v l="$1" -v t="$2" -v r="$3" -v s="$size" \
    'BEGIN{printf "| %-34s | %8.2f | %8.0f | %5.0f%% |\n", l, t, s/t/1e6, 100*r/t}'
}
{
  echo "# HTTP download: wirecap /pcap/single vs nginx static file"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ${size} bytes (${secs} s capture), best of ${runs} interleaved, curl -o /dev/null over 127.0.0.1"
  echo
  echo "| download                           |  seconds |     MB/s | vs nginx |"
  echo "|------------------------------------|----------|----------|----------|"
  row "nginx static file, HTTP" "$t_nh" "$t_nh"
  row "wirecap /pcap/single, HTTP" "$t_wh" "$t_nh"
  row "nginx static file, HTTPS" "$t_ns" "$t_ns"
  row "wirecap /pcap/single, HTTPS" "$t_ws" "$t_ns"
} | tee "$out/http.md"
