#!/bin/bash
# make test-install: `make install` into a temporary tree (LIBEXECDIR and
# MODS_AVAILABLE pointed there), twice. The first installs clinic.load and
# clinic.conf; an administrator then edits clinic.conf; the second install
# must keep the edit, put the shipped file beside it as clinic.conf.dist, and
# still replace the module. Prints "install-test: N passed, M failed".
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/mod_clinic-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/modules" "$work/mods-available"
vars=(LIBEXECDIR="$work/modules" MODS_AVAILABLE="$work/mods-available")

passed=0
failed=0
ok() {   # ok NAME COMMAND...
    local name=$1; shift
    if "$@" > "$work/last.out" 2>&1; then
        passed=$((passed + 1)); echo "ok - $name"
    else
        failed=$((failed + 1)); echo "not ok - $name"; sed 's/^/#   /' "$work/last.out" | tail -10
    fi
}
conf=$work/mods-available/clinic.conf
edit='    DBDParams "host=db.hospital.example dbname=clinic user=clinic"  # the admin'"'"'s'

ok "make install into an empty tree" make -s -C "$top" install "${vars[@]}"
ok "the module is installed" test -f "$work/modules/mod_clinic.so"
ok "clinic.load and clinic.conf are installed" cmp "$top/conf/clinic.conf" "$conf"
echo "$edit" >> "$conf"
: > "$work/modules/mod_clinic.so"
ok "make install again over an edited clinic.conf" make -s -C "$top" install "${vars[@]}"
ok "the administrator's clinic.conf is kept" grep -qxF "$edit" "$conf"
ok "the shipped clinic.conf is beside it as clinic.conf.dist" cmp "$top/conf/clinic.conf" "$conf.dist"
ok "the module is replaced" test -s "$work/modules/mod_clinic.so"
ok "clinic.load is replaced" cmp "$top/conf/clinic.load" "$work/mods-available/clinic.load"

echo "install-test: $passed passed, $failed failed"
[ "$failed" = 0 ]
