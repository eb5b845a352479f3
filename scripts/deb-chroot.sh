#!/bin/bash
# make deb-chroot: build the Debian package in a clean Debian 12 chroot that
# holds only the essential packages, build-essential and the Build-Depends of
# debian/control (mmdebstrap --variant=buildd from Debian's archive, then
# `apt-get build-dep` of the source tree). A Build-Depends missing from
# debian/control fails the build here, as it would on Debian's builders.
#
# Needs root, mmdebstrap and the network to the Debian archive (~3 min).
#   CLINIC_DEB_OUT=dir     where the .deb goes (default: the top of the tree)
#   CLINIC_DEB_MIRROR=url  the archive (default: the machine's apt sources)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=${CLINIC_DEB_OUT:-$top}
if [ "$(id -u)" != 0 ]; then
    echo "deb-chroot: needs root (mmdebstrap, chroot)" >&2
    exit 1
fi
command -v mmdebstrap >/dev/null || { echo "deb-chroot: apt-get install mmdebstrap" >&2; exit 1; }

work=$(mktemp -d /tmp/mod_clinic-debchroot.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/src" "$work/out"
# Tracked and new files, not build products (as scripts/deb.sh).
(cd "$top" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"; done | tar --null -T - -cf -) | tar -C "$work/src" -xf -

mirror=()
[ -n "${CLINIC_DEB_MIRROR:-}" ] && mirror=("$CLINIC_DEB_MIRROR")
echo "deb-chroot: mmdebstrap bookworm (log: $work/build.log)"
if ! mmdebstrap --variant=buildd --mode=root \
    --customize-hook='mkdir "$1/build"' \
    --customize-hook="copy-in $work/src /build" \
    --customize-hook='chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -q --no-install-recommends /build/src' \
    --customize-hook='chroot "$1" dpkg-query -W -f="\${Package}\n" > /dev/stderr' \
    --customize-hook='chroot "$1" sh -c "cd /build/src && dpkg-buildpackage -b -us -uc"' \
    --customize-hook="sync-out /build $work/out" \
    bookworm /dev/null "${mirror[@]}" > "$work/build.log" 2>&1; then
    tail -40 "$work/build.log"
    echo "deb-chroot: the build in the clean chroot failed" >&2
    exit 1
fi
grep -aE '^(dpkg-buildpackage|dpkg-deb): ' "$work/build.log" || true
deb=$(ls "$work"/out/libapache2-mod-clinic_*.deb)
mkdir -p "$out"
cp "$deb" "$out/"
echo "deb-chroot: built in a clean chroot: $out/$(basename "$deb")"
