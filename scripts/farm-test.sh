#!/bin/bash
# The farm test: two Apache nodes with mod_clinic behind a mod_proxy_balancer
# front (conf/farm/*.conf.in), one PostgreSQL cluster created here with initdb
# in a temp dir (unix socket only), all on 127.0.0.1, ports chosen at run
# time. The checks are the test files t/farm/*.t (Clinic::Farm starts the
# servers, scripts/farm-run.pl runs the files in name order):
#
#   10_race.t         link races through both nodes: 20 clients, alternating
#                     node A and B, post their own patient for ONE free
#                     appointment: exactly one 200, nineteen 409, one row, the
#                     appointment holds the winner (3 rounds)
#   20_idempotency.t  Idempotency-Key across nodes: the answer of node A is
#                     replayed by node B byte for byte, nothing written twice
#                     (also with racing copies)
#   30_kill.t         node B killed (SIGKILL) under load through the front:
#                     every 200 the clients saw is committed and linked,
#                     nothing half-written, the front keeps serving with node A
#   40_graceful.t     `apache2 -k graceful` twice during a 20 s wrk run (16
#                     connections, bench/farm-graceful.lua) on node A, for each
#                     route: no 5xx, no socket error, every 200 committed
#   50_dpop.t         a DPoP proof accepted by node A is refused by node B (the
#                     jti store is the shared database); ten copies of one proof
#                     racing through both nodes: exactly one 200, one row
#
# Run as root: PostgreSQL and the Apache children run as the unprivileged
# user `clinictest` (created if missing). Otherwise as the current user.
# Needs the module and the token tool built (make mod_clinic.so tools/mkjwt).
#
#   FARM_KEEP=1          keep the work dir (logs, configs) for inspection
#   FARM_LOAD_SECONDS=15 length of the kill test (30_kill.t); the kill comes at 1/3
#   FARM_WRK_SECONDS=20  length of each graceful-restart wrk run (40_graceful.t)
#   FARM_TESTS="t/farm/10_race.t ..."  only these files (in this order)
# Ends with the line `farm: N passed, M failed`; exit 0 only when M = 0.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
t_start=$(date +%s)

need_file "$top/mod_clinic.so" "$top/tools/mkjwt"
for m in mod_proxy mod_proxy_http mod_proxy_balancer mod_lbmethod_byrequests mod_slotmem_shm \
         mod_mpm_event mod_dbd mod_reqtimeout; do
    [ -f "$moddir/$m.so" ] || { echo "farm: $moddir/$m.so missing (Debian package apache2)" >&2; exit 2; }
done
command -v wrk >/dev/null || { echo "farm: wrk missing (Debian package wrk)" >&2; exit 2; }
group=$(id -gn "$user")

work=$(mktemp -d /tmp/mod_clinic-farm.XXXXXX)
run="$work/run"
pgdata="$work/pg"
mkdir -p "$run" "$work/keys"
# The servers load a private copy: a rebuild in the tree during the run
# rewrites mod_clinic.so in place, and every process that mapped it crashes.
cp "$top/mod_clinic.so" "$top/tools/mkjwt" "$work/"
cp -r "$top/sql" "$work/"

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for n in front node-a node-b; do stop_pidfile "$run/$n.pid"; done
    if [ -f "$pgdata/postmaster.pid" ]; then
        as_user "$pgbin/pg_ctl" -D "$pgdata" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [ -n "${FARM_KEEP:-}" ]; then echo "farm: work dir kept: $work"; else rm -rf "$work"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The nodes verify with jwt-public.pem; the tests sign with jwt-private.pem.
make_rsa_key "$work/keys" jwt

# Room for two nodes' pools, graceful-restart overlap included (FARM.md).
chown -R "$user:$group" "$work" 2>/dev/null || true
pg_temp_start "$pgdata" "max_connections = 300"

# A crashing child leaves a core in run/cores-*; reported below.
ulimit -c unlimited 2>/dev/null || true
set +e
# shellcheck disable=SC2086
perl "$top/scripts/farm-run.pl" --work "$work" --pghost "$pgdata" --pguser "$user" --user "$user" \
    --group "$group" --httpd "$httpd" --moddir "$moddir" -- ${FARM_TESTS:-} 2>&1 | tee "$work/farm.log"
perl_rc=${PIPESTATUS[0]}
set -e

passed=$(grep -c '^ok ' "$work/farm.log" || true)
failed=$(grep -c '^not ok ' "$work/farm.log" || true)
early=$(grep -c '^farm .*: stopped early' "$work/farm.log" || true)
failed=$((failed + early))
if [ "$perl_rc" != 0 ] && [ "$failed" = 0 ]; then
    echo "farm: the run stopped early (farm-run.pl exit $perl_rc)"
    failed=1
fi

# What the servers logged (warn and above), for the record.
for n in node-a node-b front; do
    log="$run/$n-error.log"
    [ -f "$log" ] || continue
    echo "farm: $n error log: $(grep -c '' "$log") lines;" \
        "$(grep -oE '\] \[[a-z_]+:[a-z0-9]+\]' "$log" | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
    if [ "$failed" != 0 ]; then
        grep -vE 'AH00489|AH00490|AH00493|AH00094|AH00169|AH00171' "$log" | tail -20 | sed 's/^/    /'
    fi
done
# Crashes: count them, and show where the first one happened.
crashes=$(cat "$run"/node-*-error.log 2>/dev/null | grep -c 'exit signal' || true)
if [ "$crashes" != 0 ]; then
    echo "farm: $crashes node child processes died of a signal (error log AH00052)"
    failed=$((failed + 1))
    core=$(ls -t "$run"/cores-*/core* 2>/dev/null | tail -1 || true)
    if [ -n "$core" ] && command -v gdb >/dev/null; then
        echo "farm: backtrace of $core:"
        gdb -batch -ex 'info threads' -ex 'thread apply all bt 25' "$httpd" "$core" 2>/dev/null \
            | grep -E '^(#|Thread|\*| +[0-9]+ +Thread)' | head -120 | sed 's/^/    /'
        FARM_KEEP=1
    fi
fi
echo "farm: took $(( $(date +%s) - t_start )) s"
echo "farm: $passed passed, $failed failed"
[ "$failed" = 0 ]
