#!/usr/bin/env bash
# Sets up everything the tests need on a fresh Debian machine, then runs every test.
# Root (or sudo) is needed to install packages and for the network-namespace tests;
# without root those tests print why they skip.
set -euo pipefail
cd "$(dirname "$0")/.."

need=(tcpdump tshark tcpreplay libpcap-dev iproute2 iputils-ping netsniff-ng curl zstd chromium util-linux systemd python3 iperf3 ethtool)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Node.js runs the browser tests and npm fetches the UI's packages (preact, htm, uplot,
# playwright-core) from package-lock.json; the machine image has Node 20, else Debian's.
if ! command -v npm >/dev/null; then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
(cd crates/http/ui && npm ci --no-audit --no-fund --loglevel=error)

# The corpus lives beside the checkout (../shared/corpus); say so if it is elsewhere.
if [[ -z ${WIRECAP_CORPUS:-} && ! -f ../shared/corpus/MANIFEST.tsv ]]; then
  echo "note: ../shared/corpus not found; corpus tests will skip (set WIRECAP_CORPUS)"
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings
cargo test --workspace -q
