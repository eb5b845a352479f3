#!/bin/bash
# Run the Apache::Test suite against the built module, once per database:
# SQLite, and a real PostgreSQL cluster created here with initdb in a temp
# dir (unix socket only) and stopped at the end.
#
# Debian's Apache::Test and PostgreSQL refuse to run as root, so when run as
# root everything runs as the unprivileged user `clinictest` over a copy of
# the tree that user owns.
#
#   CLINIC_TEST_DBS="sqlite pgsql"   databases to run (default both)
#   CLINIC_TEST_FILES="t/20_visits.t" only these test files
#   CLINIC_TEST_SKIP="t/86_balancer.t"  every test file but these
#   CLINIC_TEST_KEEP=1               keep the work dir for inspection
#   CLINIC_ASAN=1                    the module is built with ASan/UBSan: preload
#                                    the runtime into httpd and fail on any report
set -euo pipefail

dbs=${CLINIC_TEST_DBS:-sqlite pgsql}
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

work=$(mktemp -d /tmp/mod_clinic-test.XXXXXX)
pgdata=
fullfs=
cleanup() {
    if [ -n "$fullfs" ]; then umount "$fullfs" 2>/dev/null || true; fi
    if [ -n "$pgdata" ] && [ -f "$pgdata/postmaster.pid" ]; then
        as_user "$pgbin/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true
    fi
    if [ -n "${CLINIC_TEST_KEEP:-}" ]; then echo "test: work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

cp -r "$top/t" "$top/sql" "$top/conf" "$work/"
cp "$top/mod_clinic.so" "$top/tools/mkjwt" "$top/scripts/httpd-asan" "$work/"
rm -rf "$work/t/unit" "$work/t/farm" "$work/t/failover"   # make farm, make failover run those
# The OpenAPI document and its checker (t/lib/Clinic/OpenAPI.pm); node_modules from `make openapi-deps`.
cp -r "$top/openapi" "$work/"
# The documents t/03_docs.t reads.
cp "$top"/*.md "$work/" && cp -r "$top/docs" "$top/debian" "$work/"

# Real keys, made fresh for every run.
keys="$work/keys"
mkdir -p "$keys"
make_rsa_key "$keys" rsa
make_rsa_key "$keys" rsa2
make_ec_key "$keys" ec
make_hs_secret "$keys/hs-secret"
make_test_pki "$keys/pki"
"$work/mkjwt" jwks --kid rsa-1 --alg RS256 "$keys/rsa-public.pem" --kid rsa-2 "$keys/rsa2-public.pem" \
    --kid ec-1 --alg ES256 "$keys/ec-public.pem" > "$keys/jwks.json"

# A full file system for SQLite (t/43_sqlite_blocked.t): a 1 MiB tmpfs, as root only.
if [ "$(id -u)" = 0 ] && mkdir -p "$work/fullfs" && mount -t tmpfs -o size=1m,mode=0755 tmpfs "$work/fullfs"; then
    fullfs="$work/fullfs"
fi

chown -R "$user" "$work" 2>/dev/null || true
(cd "$work" && as_user perl -MApache::TestMM -e 'Apache::TestMM::generate_script("t/TEST")' >/dev/null)

start_pgsql() {
    pgdata="$work/pg"
    pg_temp_start "$pgdata" "max_connections = 100"
}

stop_pgsql() {
    as_user "$pgbin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null
}

httpd_cmd=$httpd
san_env=()
if [ -n "${CLINIC_ASAN:-}" ]; then
    mkdir -p "$work/asan"
    httpd_cmd="$work/httpd-asan"
    chown -R "$user" "$work/asan" 2>/dev/null || true
    san_env=(CLINIC_ASAN_RUNTIME="$(gcc -print-file-name=libasan.so)" CLINIC_REAL_HTTPD="$httpd"
             ASAN_OPTIONS="log_path=$work/asan/report:detect_leaks=1:abort_on_error=0"
             LSAN_OPTIONS="exitcode=0"
             UBSAN_OPTIONS="print_stacktrace=1:log_path=$work/asan/report")
fi

files=${CLINIC_TEST_FILES:-}
if [ -z "$files" ] && [ -n "${CLINIC_TEST_SKIP:-}" ]; then
    for f in "$work"/t/*.t; do
        case " $CLINIC_TEST_SKIP " in *" t/${f##*/} "*) ;; *) files="$files t/${f##*/}" ;; esac
    done
fi

passed=0
failed=0
status=0
for db in $dbs; do
    case $db in
    sqlite)
        mkdir -p "$work/sqlite"
        sqlite3 "$work/sqlite/clinic.db" < "$work/sql/schema-sqlite.sql" >/dev/null
        sqlite3 "$work/sqlite/clinic.db" < "$work/sql/demo-data.sql"
        # a version-1 database (t/82_wrong_db.t)
        sqlite3 -bail "$work/sqlite/clinic-v1.db" < "$work/sql/upgrade/sqlite-1.sql" >/dev/null
        sqlite3 -bail "$work/sqlite/clinic-v1.db" < "$work/sql/demo-data.sql"
        chown -R "$user" "$work/sqlite" 2>/dev/null || true
        driver=sqlite3 params="$work/sqlite/clinic.db" dsn="dbi:SQLite:dbname=$work/sqlite/clinic.db"
        down="$work/no-such-dir/clinic.db"
        params_v1="$work/sqlite/clinic-v1.db" dsn_v1="dbi:SQLite:dbname=$work/sqlite/clinic-v1.db"
        ;;
    pgsql)
        start_pgsql
        driver=pgsql
        params="host=$pgdata dbname=clinic user=$user connect_timeout=2 options='-c statement_timeout=3000'"
        dsn="dbi:Pg:host=$pgdata;dbname=clinic"
        down="host=$work/no-such-dir dbname=clinic user=$user connect_timeout=2"
        as_user "$pgbin/createdb" -h "$pgdata" clinic_v1   # a version-1 database (t/82_wrong_db.t)
        as_user psql -q -h "$pgdata" -d clinic_v1 -v ON_ERROR_STOP=1 -f "$work/sql/upgrade/pgsql-1.sql" \
            -f "$work/sql/demo-data.sql" -f "$work/sql/demo-sequences-pgsql.sql" >/dev/null
        params_v1="host=$pgdata dbname=clinic_v1 user=$user connect_timeout=2"
        dsn_v1="dbi:Pg:host=$pgdata;dbname=clinic_v1"
        ;;
    *) echo "test: unknown database '$db'" >&2; exit 2 ;;
    esac

    echo "=== Apache::Test on $db"
    log="$work/apache-test-$db.log"
    set +e
    (cd "$work" && as_user env CLINIC_DB="$db" CLINIC_DBD_DRIVER="$driver" \
        CLINIC_DBD_PARAMS="$params" CLINIC_DBD_PARAMS_DOWN="$down" CLINIC_DB_DSN="$dsn" CLINIC_KEYS="$keys" \
        CLINIC_DBD_PARAMS_V1="$params_v1" CLINIC_DB_DSN_V1="$dsn_v1" \
        CLINIC_MKJWT="$work/mkjwt" CLINIC_MODULE="$work/mod_clinic.so" \
        CLINIC_MODDIR="$moddir" CLINIC_PGDATA="$pgdata" CLINIC_PGBIN="$pgbin" CLINIC_FULLFS="$fullfs" \
        CLINIC_HTTPD="$httpd_cmd" CLINIC_OPENAPI="$work/openapi" CLINIC_RACE_ROUNDS="${CLINIC_RACE_ROUNDS:-}" "${san_env[@]}" \
        perl t/TEST -httpd "$httpd_cmd" -apxs "$(command -v apxs)" -port select -verbose \
        ${files}) 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    p=$(grep -cE '^ok [0-9]+' "$log" || true)
    f=$(grep -cE '^not ok [0-9]+' "$log" || true)
    passed=$((passed + p))
    failed=$((failed + f))
    echo "apache-test $db: $p passed, $f failed (t/TEST exit $rc)"
    [ "$rc" = 0 ] && [ "$f" = 0 ] || status=1
    cp "$work/t/logs/error_log" "$work/error_log-$db" 2>/dev/null || true
    [ "$db" = pgsql ] && stop_pgsql
done

if [ -n "${CLINIC_ASAN:-}" ]; then
    # shellcheck disable=SC2046
    if ! perl "$top/scripts/san-check.pl" $(find "$work/asan" -name 'report.*'); then
        status=1
        failed=$((failed + 1))
    fi
fi

echo "apache-test: $passed passed, $failed failed"
exit $status
