#!/usr/bin/env bash
# Sets up everything the tests need on a fresh Debian machine, then runs every test.
# Root (or sudo) is needed to install packages and for the network-namespace tests;
# without root those tests skip (outside CI) and the last line says which.
set -euo pipefail
cd "$(dirname "$0")/.."

need=(tcpdump tshark wireshark-common tcpreplay libpcap-dev iproute2 iputils-ping netsniff-ng curl zstd chromium util-linux systemd python3 iperf3 ethtool adduser)
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

# The archive tests run a real S3 server (crates/wirecap/tests/archive.rs): s3s-fs from
# crates.io, installed once (~4 min on 2 cores; newer versions need a newer rustc).
if ! command -v s3s-fs >/dev/null; then
  echo "installing s3s-fs (the archive tests' S3 server)"
  cargo install -q s3s-fs@0.14.1 --features binary --locked
fi

# The archive's Parquet test reads the flows back with DuckDB (crates/wirecap/tests/archive.rs):
# Python's duckdb from PyPI (a wheel, seconds).
if ! python3 -c 'import duckdb' 2>/dev/null; then
  echo "installing duckdb (Python) for the archive's Parquet test"
  python3 -m pip install -q duckdb 2>/dev/null || python3 -m pip install -q --break-system-packages duckdb
fi

# What the suite expects of the machine. Under CI (CI=true) a missing piece fails the run
# here, naming it, and every test that needs it would fail too (crates/testkit); elsewhere
# those tests skip, and the summary at the end lists them.
corpus=${WIRECAP_CORPUS:-../shared/corpus}
lacking=()
[[ $(id -u) -eq 0 ]] || lacking+=("root (network namespaces, AF_PACKET rings, tmpfs mounts)")
for t in tcpdump tshark mergecap tcpreplay chromium trafgen ip s3s-fs; do
  command -v "$t" >/dev/null || lacking+=("$t")
done
python3 -c 'import duckdb' 2>/dev/null || lacking+=("python3's duckdb module")
[[ -f $corpus/MANIFEST.tsv ]] || lacking+=("the corpus at $corpus (set WIRECAP_CORPUS)")
if ((${#lacking[@]})); then
  if [[ ${CI:-} == true ]]; then
    printf 'CI=true and this machine lacks:\n' >&2
    printf '  - %s\n' "${lacking[@]}" >&2
    exit 1
  fi
  printf 'note: without %s the tests that need them skip\n' "$(IFS=,; echo "${lacking[*]}")"
fi

# Node.js runs the browser tests and npm fetches the UI's packages (preact, htm, uplot,
# playwright-core) from package-lock.json; the machine image has Node 20, else Debian's.
if ! command -v npm >/dev/null; then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
(cd crates/http/ui && npm ci --no-audit --no-fund --loglevel=error)

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings

# The browser test loads the UI embedded in the release binary, which is what ships (a
# debug build reads the UI from disk). Built once here; incremental after the first run.
t0=$(date +%s)
cargo build --release -q -p wirecap
echo "release build for the browser test: $(( $(date +%s) - t0 )) s"
export WIRECAP_UI_BIN=$PWD/target/release/wirecap

# Every skip is appended to this log by the test that skipped (crates/testkit).
skips=$(mktemp)
trap 'rm -f "$skips"' EXIT
rc=0
WIRECAP_SKIP_LOG=$skips cargo test --workspace -q --no-fail-fast || rc=$?
if [[ -s $skips ]]; then
  n=$(wc -l <"$skips")
  echo "skipped $n test(s): $(sed 's/^SKIP //' "$skips" | sort | paste -sd ';' | sed 's/;/; /g')"
else
  echo "skipped 0 tests"
fi
exit "$rc"
