#!/usr/bin/env bash
# Sets up and runs wirecap on a fresh Debian machine: installs the build and run
# dependencies, builds the release binary, imports a demo capture into ./data and
# shows what the store holds. DATA=/path overrides the data directory.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! dpkg-query -W -f='${Status}' libpcap-dev 2>/dev/null | grep -q "ok installed"; then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libpcap-dev build-essential >/dev/null
fi
command -v cargo >/dev/null || { echo "wirecap needs Rust (cargo): https://rustup.rs"; exit 1; }
cargo build --release -q -p wirecap
W=target/release/wirecap
DATA=${DATA:-$PWD/data}
export WIRECAP_DATA=$DATA
if [[ -z $($W list) ]]; then
  demo=$(mktemp --suffix=.pcap)
  $W generate -o "$demo" --seconds 120 --pps 2000 --start "$(date -u -d '-3 min' '+%Y-%m-%dT%H:%M:%SZ')"
  $W import --name demo "$demo"
  rm -f "$demo"
fi
echo; echo "streams in $DATA:"; $W list
name=$($W list | head -1 | cut -f1)
echo; echo "views of $name:"; $W views "$name"
echo; echo "try: $W splits $name --view split_10sec"
echo "     $W export $name --view split_10sec --split 0 -o - | tcpdump -r - -nn | head"
echo "     $W --help"
