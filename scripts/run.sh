#!/usr/bin/env bash
# Sets up and runs the wirecap appliance on a fresh Debian machine: installs the build
# and run dependencies, fetches the web UI's packages, builds the release binary (UI
# embedded) and starts `wirecap serve` on ./data (DATA=/path to change it).
# It listens with HTTPS on port 8443 and prints the URL and the admin login. As root it
# captures from WIRECAP_INTERFACE if set; otherwise (or without root) it runs on the
# synthetic traffic source and says so. Extra arguments go to `wirecap serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
if ! dpkg-query -W -f='${Status}' libpcap-dev 2>/dev/null | grep -q "ok installed"; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libpcap-dev build-essential >/dev/null
fi
command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
command -v cargo >/dev/null || { echo "wirecap needs Rust (cargo): https://rustup.rs"; exit 1; }
(cd crates/http/ui && npm ci --omit=dev --no-audit --no-fund --loglevel=error)
cargo build --release -q -p wirecap
DATA=${DATA:-$PWD/data}
mkdir -p "$DATA"
src=()
if [[ -n ${WIRECAP_INTERFACE:-} ]]; then src=(--interface "$WIRECAP_INTERFACE"); fi
exec target/release/wirecap serve --data "$DATA" "${src[@]}" "$@"
