#!/usr/bin/env bash
# Builds the Debian package of mining-exporter from a built binary, with dpkg-deb alone (no
# debhelper, no cargo-deb to install):
#   cargo build --profile dist --locked             # what ships: fat LTO, one codegen unit
#   deploy/debian/build-deb.sh                       # target/dist/mining-exporter -> target/debian/
#   deploy/debian/build-deb.sh BINARY OUT_DIR        # any binary, any folder
# Prints the path of the .deb it wrote. What the package holds and does:
#   /usr/bin/mining-exporter
#   /lib/systemd/system/mining-exporter.service      deploy/systemd's hardened unit
#   /etc/mining-exporter/config.toml                 a commented skeleton (a conffile)
#   /usr/share/doc/mining-exporter/                  copyright, config.example.toml, README.md, docs/
#   postinst: the system user mining-exporter and /var/lib/mining-exporter (0700, its own)
#   postrm purge: the user, the state directory and /etc/mining-exporter, all gone
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
binary="${1:-$root/target/dist/mining-exporter}"
out="${2:-$root/target/debian}"

[ -x "$binary" ] || { echo "error: $binary is not an executable: build it first (cargo build --profile dist --locked)" >&2; exit 2; }
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)"
arch="$(dpkg --print-architecture)"
name=mining-exporter

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
pkg="$stage/$name"
install -d -m 0755 "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/lib/systemd/system" \
    "$pkg/etc/$name" "$pkg/usr/share/doc/$name"
install -m 0755 "$binary" "$pkg/usr/bin/$name"
# As Debian ships binaries: without debug sections (a debug build's are most of its size).
if command -v strip >/dev/null 2>&1; then
    strip --strip-debug "$pkg/usr/bin/$name"
fi
# The unit as deploy/systemd ships it, with the binary where the package puts it.
sed "s|/usr/local/bin/$name|/usr/bin/$name|g" "$root/deploy/systemd/$name.service" \
    > "$pkg/lib/systemd/system/$name.service"
chmod 0644 "$pkg/lib/systemd/system/$name.service"
install -m 0644 "$root/deploy/systemd/config.toml" "$pkg/etc/$name/config.toml"
install -m 0644 "$root/LICENSE" "$pkg/usr/share/doc/$name/copyright"
install -m 0644 "$root/config.example.toml" "$root/README.md" "$pkg/usr/share/doc/$name/"
install -d -m 0755 "$pkg/usr/share/doc/$name/docs"
install -m 0644 "$root"/docs/*.md "$pkg/usr/share/doc/$name/docs/"
for script in postinst prerm postrm; do
    install -m 0755 "$here/$script" "$pkg/DEBIAN/$script"
done
echo "/etc/$name/config.toml" > "$pkg/DEBIAN/conffiles"
size_kb="$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size_kb/" \
    "$here/control.in" > "$pkg/DEBIAN/control"

mkdir -p "$out"
deb="$out/${name}_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$pkg" "$deb" >/dev/null
echo "$deb"
