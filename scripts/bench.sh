#!/bin/bash
# `make bench`: mod_clinic against PostgreSQL and against this Apache's own
# static-file floor on this machine, measured, no timed assertions
# (BENCHMARKS.md reads its report). About 8 minutes on 2 cores.
#
# This script prepares: a work dir, keys, a PostgreSQL cluster (initdb in the
# work dir, unix socket only, bench/postgresql.conf: synchronous_commit on).
# bench/bench.pl measures the cases of bench/cases.pl (wrk on both routes with
# RS256/HS256 tokens, a new token every request, 64 and 256 connections,
# configuration variants; the static floor; pgbench running the least SQL a
# correct implementation must run: the ceiling), the memory run, callgrind
# and the native token costs, and writes them to one JSON file;
# bench/report.pl renders that as the Markdown report.
#
# As root, PostgreSQL, Apache and the clients run as the unprivileged user
# `clinictest` (created if missing), as in scripts/test.sh. Only 127.0.0.1.
# Everything lives in a temp dir removed at exit (BENCH_KEEP=1 keeps it).
#
#   BENCH_DURATION=10        seconds per wrk / pgbench run
#   BENCH_CONNECTIONS=16     wrk connections and pgbench clients (cases may say otherwise)
#   BENCH_THREADS=2          wrk threads and pgbench -j
#   BENCH_CASES="visits.rs static pg.visits"  only these cases of bench/cases.pl
#   BENCH_MEM_WARMUP=20000   memory run: requests before the first RSS sample
#   BENCH_MEM_REQUESTS=200000  ... and between the two samples
#   BENCH_CG_N=200           callgrind: requests per case
#   BENCH_TOKEN_POOL=5000    distinct RS256 tokens for the new-token cases
#   BENCH_SKIP="mem cg"      skip parts (throughput, bigdata, mem, cg, tokens)
#   BENCH_JSON=FILE          where the results go (default bench-results.json in the tree)
#   BENCH_OUT=FILE           also write the Markdown report there
#   BENCH_KEEP=1             keep the work dir (logs, callgrind files)
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

need_file "$top/mod_clinic.so" "$top/tools/mkjwt"
for c in wrk curl valgrind callgrind_annotate callgrind_control psql "$pgbin/pgbench" "$httpd"; do
    command -v "$c" >/dev/null || { echo "bench: $c not found (scripts/deps.sh)" >&2; exit 2; }
done
results=${BENCH_JSON:-$top/bench-results.json}

work=$(mktemp -d /tmp/mod_clinic-bench.XXXXXX)
chmod 755 "$work"
pgdata="$work/pg"
sock="$work/sock"
cleanup() {
    set +e
    stop_pidfile "$work/httpd.pid" 100
    if [ -f "$pgdata/postmaster.pid" ]; then
        as_user "$pgbin/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1
    fi
    if [ -n "${BENCH_KEEP:-}" ]; then echo "bench: work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$sock" "$work/keys" "$work/htdocs" "$work/logs" "$work/cg"
# Apache loads a copy: every part measures the same binary, and a rebuild of
# the tree during the run cannot pull the file from under a running server.
cp -r "$top/bench" "$work/bench"
cp "$top/mod_clinic.so" "$top/tools/mkjwt" "$work/"
mkdir -p "$work/t" && cp -r "$top/t/lib" "$work/t/lib"

rev=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$top" status --porcelain -- src mod_clinic.c 2>/dev/null | wc -l)
[ "$dirty" -gt 0 ] && rev="$rev + uncommitted changes in $dirty module file(s)"
rev="$rev; mod_clinic.so built $(date -u -r "$top/mod_clinic.so" +%Y-%m-%dT%H:%M:%SZ), sha256 $(sha256sum "$work/mod_clinic.so" | cut -c1-12)"

make_rsa_key "$work/keys" rsa
make_hs_secret "$work/keys/hs-secret"
chown -R "$user" "$work" 2>/dev/null || true

as_user "$pgbin/initdb" -D "$pgdata" -E UTF8 --locale=C.UTF-8 -A trust -U "$user" >/dev/null
{ cat "$top/bench/postgresql.conf"; echo "unix_socket_directories = '$sock'"; } | as_user tee -a "$pgdata/postgresql.conf" >/dev/null
as_user "$pgbin/pg_ctl" -D "$pgdata" -l "$work/logs/pg.log" -w start >/dev/null
as_user "$pgbin/createdb" -h "$sock" clinic
as_user psql -X -q -h "$sock" -d clinic -v ON_ERROR_STOP=1 -f "$top/sql/schema-pgsql.sql" >/dev/null

status=0
as_user perl "$work/bench/bench.pl" --work "$work" --sock "$sock" --pgdata "$pgdata" --pgbin "$pgbin" \
    --httpd "$httpd" --moddir "$moddir" --mkjwt "$work/mkjwt" --rev "$rev" --out "$work/results.json" || status=$?
[ -f "$work/results.json" ] || { echo "bench: no results (bench.pl exit $status)" >&2; exit 1; }
cp "$work/results.json" "$results"
perl "$top/bench/report.pl" "$results" > "$work/report.md"
cat "$work/report.md"
[ -n "${BENCH_OUT:-}" ] && cp "$work/report.md" "$BENCH_OUT"
echo "bench: results in $results (bench/report.pl renders them)"
exit $status
