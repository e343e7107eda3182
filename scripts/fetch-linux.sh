#!/usr/bin/env bash
# Fetches Debian 12's own cloud kernel and busybox-static from the Debian archive into build/linux/
# (apt-get download + dpkg-deb -x: nothing is installed, the system's /boot is never touched, nothing
# is committed) and builds a small initramfs whose /init reports what the Linux guest tests check.
# Usage: scripts/fetch-linux.sh [OUTDIR]   (default build/linux). Prints the two file paths.
set -euo pipefail
out=${1:-build/linux}
mkdir -p "$out/debs" "$out/root"
cd "$out/debs"
# The metapackage names the versioned image package; download that one.
if ! ls linux-image-*-cloud-amd64_*.deb >/dev/null 2>&1; then
	[ -n "$(find /var/lib/apt/lists -name '*Packages*' 2>/dev/null | head -n1)" ] || apt-get update -qq
	img=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
	[ -n "$img" ] || { echo "fetch-linux: cannot resolve linux-image-cloud-amd64" >&2; exit 1; }
	apt-get download -qq "$img"
fi
ls busybox-static_*.deb >/dev/null 2>&1 || apt-get download -qq busybox-static
cd - >/dev/null
for d in "$out"/debs/*.deb; do dpkg-deb -x "$d" "$out/root"; done
kernel=$(ls "$out"/root/boot/vmlinuz-*-cloud-amd64 | head -n1)
cp "$kernel" "$out/vmlinuz"
python3 "$(dirname "$0")/../tests/linux/mkinitramfs.py" "$out/root/bin/busybox" "$out/initrd.gz"
echo "$out/vmlinuz"
echo "$out/initrd.gz"
