#!/bin/bash
# The failover and PgBouncer tests (t/failover/*.t): PostgreSQL clusters,
# PgBouncer and an Apache node that the tests create and stop themselves,
# by PID, all on unix sockets or loopback ports chosen at run time. Run as
# root, everything runs as the unprivileged user `clinictest` over a copy of
# what the tests need.
#
#   CLINIC_FAILOVER_FILES="t/failover/20_pgbouncer.t"  only these files
#   CLINIC_FAILOVER_KEEP=1                             keep the work dir
# Ends with `failover: N passed, M failed`; exit 0 only when M = 0.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
for f in "$top/mod_clinic.so" "$top/tools/mkjwt"; do
    [ -f "$f" ] || { echo "failover: $f missing: make mod_clinic.so tools/mkjwt" >&2; exit 2; }
done
command -v pgbouncer >/dev/null || { echo "failover: pgbouncer missing (Debian package pgbouncer)" >&2; exit 2; }

# shellcheck source=scripts/unpriv.sh
. "$top/scripts/unpriv.sh"
work=$(mktemp -d /tmp/mod_clinic-failover.XXXXXX)
cleanup() {
    if [ -n "${CLINIC_FAILOVER_KEEP:-}" ]; then echo "failover: work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

mkdir -p "$work/t" "$work/conf"
cp -r "$top/t/lib" "$top/t/failover" "$work/t/"
cp -r "$top/sql" "$top/bench" "$work/"
cp -r "$top/conf/farm" "$work/conf/"
cp "$top/mod_clinic.so" "$top/tools/mkjwt" "$work/"
chown -R "$user" "$work" 2>/dev/null || true

log="$work/failover.log"
set +e
(cd "$work" && as_user env CLINIC_WORK="$work" prove -v -I t/lib \
    ${CLINIC_FAILOVER_FILES:-t/failover/*.t}) 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
p=$(grep -cE '^ok [0-9]+' "$log" || true)
f=$(grep -cE '^not ok [0-9]+' "$log" || true)
[ "$rc" = 0 ] || [ "$f" != 0 ] || f=1   # a test that died counts as a failure
echo "failover: $p passed, $f failed"
[ "$rc" = 0 ] && [ "$f" = 0 ]
