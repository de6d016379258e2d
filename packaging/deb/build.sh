#!/usr/bin/env bash
# Builds a Debian package of wirecap with dpkg-deb (no cargo-deb needed):
#
#   packaging/deb/build.sh [BINARY] [OUTDIR]     # defaults: target/release/wirecap, target/deb
#
# The package carries /usr/bin/wirecap, the systemd unit that `wirecap install` writes
# (from packaging/wirecap.service, with the binary in /usr/bin) in /usr/lib/systemd/system,
# and /etc/wirecap/wirecap.toml (a conffile: dpkg keeps the operator's edits on upgrade).
# Its maintainer scripts create the system user `wirecap` and /var/lib/wirecap (0750), copy
# /etc/wirecap/wirecap.toml to /var/lib/wirecap/wirecap.toml on the first install only (the
# server reads and the web UI writes that one; upgrades never touch it or the captures),
# and enable the service when systemd runs. `dpkg --purge` also removes the user and
# /var/lib/wirecap. The version is what `BINARY --version` reports; DEB_COMPRESS (xz,
# gzip, none; default xz) picks the compression.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/target/release/wirecap}
out=${2:-$root/target/deb}
[[ -x $bin ]] || { echo "no executable wirecap at $bin (cargo build --release -p wirecap)" >&2; exit 1; }
command -v dpkg-deb >/dev/null || { echo "dpkg-deb is needed (apt install dpkg)" >&2; exit 1; }

version=$("$bin" --version | awk '$1 == "wirecap" { print $2 }')
[[ $version =~ ^[0-9A-Za-z.+~-]+$ ]] || { echo "$bin --version printed no usable version" >&2; exit 1; }
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg=$stage/pkg

# The binary and the unit exactly as `wirecap install` lays them out, into the staging root.
"$bin" install --root "$pkg" --prefix /usr >/dev/null
mkdir -p "$pkg/usr/lib/systemd/system"
mv "$pkg/etc/systemd/system/wirecap.service" "$pkg/usr/lib/systemd/system/wirecap.service"
rm -rf "$pkg/etc/systemd"
install -D -m 0644 "$here/wirecap.toml" "$pkg/etc/wirecap/wirecap.toml"
install -D -m 0644 "$root/README.md" "$pkg/usr/share/doc/wirecap/README.md"

mkdir -p "$pkg/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat >"$pkg/DEBIAN/control" <<CONTROL
Package: wirecap
Version: $version
Architecture: $arch
Maintainer: wirecap maintainers <wirecap@localhost>
Installed-Size: $size
Depends: libc6, adduser
Recommends: systemd
Section: net
Priority: optional
Homepage: https://github.com/wirecap/wirecap
Description: full packet capture appliance
 wirecap records every packet of a link to an indexed store on local disk
 and gives any time window, size slice or filter of it back as a pcap, over
 HTTP(S), a web UI and the command line.
CONTROL
echo /etc/wirecap/wirecap.toml >"$pkg/DEBIAN/conffiles"
for s in postinst prerm postrm; do
  install -m 0755 "$here/$s" "$pkg/DEBIAN/$s"
done

mkdir -p "$out"
deb=$out/wirecap_${version}_${arch}.deb
dpkg-deb --root-owner-group -Z"${DEB_COMPRESS:-xz}" --build "$pkg" "$deb" >/dev/null
echo "$deb"
