#!/bin/bash
# make deb: build libapache2-mod-clinic_<version>_<arch>.deb from debian/ with
# debhelper and dh-apache2, in a copy of the tree (dpkg-buildpackage writes
# into the parent directory), then run lintian: any error fails.
#
#   CLINIC_DEB_OUT=dir   where the .deb goes (default: the top of the tree)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=${CLINIC_DEB_OUT:-$top}
work=$(mktemp -d /tmp/mod_clinic-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT

mkdir "$work/src"
# Tracked and new files, not build products or ignored files (outside git: all but those).
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$top" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
        [ -e "$f" ] && printf '%s\0' "$f"; done | tar --null -T - -cf -) | tar -C "$work/src" -xf -
else
    tar -C "$top" --exclude=./openapi/node_modules --exclude=./run --exclude='./*.deb' -cf - . \
        | tar -C "$work/src" -xf -
    make -C "$work/src" clean >/dev/null
fi

echo "deb: dpkg-buildpackage (log: $work/build.log)"
if ! (cd "$work/src" && dpkg-buildpackage -b -us -uc) > "$work/build.log" 2>&1; then
    tail -40 "$work/build.log"
    echo "deb: dpkg-buildpackage failed" >&2
    exit 1
fi
deb=$(ls "$work"/libapache2-mod-clinic_*.deb)
echo "deb: lintian $(basename "$deb")"
lintian --fail-on error --tag-display-limit 0 "$deb" "$work"/*.changes | tee "$work/lintian.log"
mkdir -p "$out"
cp "$deb" "$out/"
echo "deb: $out/$(basename "$deb")"
