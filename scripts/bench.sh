#!/bin/bash
# `make bench`: mod_clinic against PostgreSQL on this machine, measured, no
# timed assertions (BENCHMARKS.md reads its report). About 3 minutes on 2 cores.
#
#  1. throughput: a PostgreSQL cluster made here (initdb in a temp dir,
#     synchronous_commit on) and Apache (event MPM) with the module;
#     1,000 patients and enough free appointments for every link request
#     (bench/fixtures.sql). wrk, 16 connections, 10 s each: POST /visits and
#     POST /patients/add_and_link with an RS256 and an HS256 token
#     (bench/visits.lua, bench/link.lua); then pgbench -M prepared -c 16 -j 2
#     -T 10 running exactly the SQL each route runs (bench/*.pgbench): the
#     ceiling. Rows written are checked against the 200s: the client's count
#     and the server's access log. Besides: /visits with a new RS256 token on
#     every request (token-cache misses), a static file of the same size (the
#     httpd floor), pgbench again at mod_clinic's rate, and the CPU each run
#     cost in wrk/pgbench, Apache and PostgreSQL, per request.
#  2. memory: one child process (ServerLimit 1, 16 threads), RSS after a
#     warm-up and after 200,000 more /visits requests.
#  3. instructions: httpd -X under callgrind, N requests per case; the
#     module's own Ir per request = the handler's inclusive Ir minus what it
#     spends inside mod_dbd/apr_dbd/libpq (bench/cgsplit.pl); and the native
#     CPU cost of the token work (bench/tokens.c).
#
# As root, PostgreSQL, Apache and the clients run as the unprivileged user
# `clinictest` (created if missing), as in scripts/test.sh. Only 127.0.0.1.
# Everything lives in a temp dir removed at exit (BENCH_KEEP=1 keeps it).
#
#   BENCH_DURATION=10        seconds per wrk / pgbench run
#   BENCH_CONNECTIONS=16     wrk connections and pgbench clients
#   BENCH_THREADS=2          wrk threads and pgbench -j
#   BENCH_MEM_WARMUP=20000   memory run: requests before the first RSS sample
#   BENCH_MEM_REQUESTS=200000  ... and between the two samples
#   BENCH_CG_N=200           callgrind: requests per case
#   BENCH_TOKEN_POOL=5000    distinct RS256 tokens for the cache-miss run
#   BENCH_SKIP="mem cg"      skip parts (throughput, mem, cg)
#   BENCH_OUT=FILE           also write the report there
#   BENCH_KEEP=1             keep the work dir (logs, callgrind files)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
DUR=${BENCH_DURATION:-10}
CONN=${BENCH_CONNECTIONS:-16}
THREADS=${BENCH_THREADS:-2}
MEM_WARMUP=${BENCH_MEM_WARMUP:-20000}
MEM_REQ=${BENCH_MEM_REQUESTS:-200000}
CG_N=${BENCH_CG_N:-200}
CG_WARM=20
SKIP=" ${BENCH_SKIP:-} "
# Free appointments per wrk thread and run, and per pgbench client: about
# twice what this 2-core machine links in BENCH_DURATION seconds (5,300
# requests/s through the module, 9,500 transactions/s with pgbench). Running
# out shows: wrk counts 404s, and pgbench's linked rows fall short of its
# transactions; both fail the run's check.
WRK_CAP=$((5000 * DUR))
PG_CAP=$((1200 * DUR))    # unthrottled pgbench; then the run at mod_clinic's rate:
PG_CAP2=$((700 * DUR))
CG_CAP=$((CG_N + CG_WARM + 10))

pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
httpd=$(apxs -q SBINDIR)/$(apxs -q TARGET)
moddir=$(apxs -q LIBEXECDIR)

for f in mod_clinic.so tools/mkjwt; do
    [ -x "$top/$f" ] || [ -f "$top/$f" ] || { echo "bench: $f missing: make mod_clinic.so tools/mkjwt" >&2; exit 2; }
done
for c in wrk curl valgrind callgrind_annotate callgrind_control psql "$pgbin/pgbench" "$httpd"; do
    command -v "$c" >/dev/null || { echo "bench: $c not found (scripts/deps.sh)" >&2; exit 2; }
done
case $CONN in *[!0-9]*) echo "bench: BENCH_CONNECTIONS" >&2; exit 2 ;; esac
[ "$CONN" -le 16 ] && [ "$THREADS" -le 16 ] || { echo "bench: at most 16 connections and 16 threads (fixtures)" >&2; exit 2; }

# shellcheck source=scripts/unpriv.sh
. "$top/scripts/unpriv.sh"

work=$(mktemp -d /tmp/mod_clinic-bench.XXXXXX)
chmod 755 "$work"
pgdata="$work/pg"
sock="$work/sock"
apache_pid=
vg_pid=
wrk_pid=
t0=$(date +%s)

stop_apache() {
    local pid
    pid=$(cat "$work/httpd.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$work/httpd.pid"
}
cleanup() {
    set +e
    [ -n "$wrk_pid" ] && kill -INT "$wrk_pid" 2>/dev/null
    [ -n "${vg_pid:-}" ] && kill -TERM "$vg_pid" 2>/dev/null && sleep 2
    stop_apache
    if [ -f "$pgdata/postmaster.pid" ]; then
        as_user "$pgbin/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1
    fi
    if [ -n "${BENCH_KEEP:-}" ]; then echo "bench: work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '[bench %3ds] %s\n' $(($(date +%s) - t0)) "$*" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

mkdir -p "$sock" "$work/keys" "$work/htdocs" "$work/logs" "$work/cg"
cp "$top/bench/"*.pgbench "$top/bench/"*.lua "$top/bench/fixtures.sql" "$work/"
# Apache loads a copy: every part measures the same binary, and a rebuild of
# the tree during the run cannot pull the file from under a running server.
cp "$top/mod_clinic.so" "$work/mod_clinic.so"
chown -R "$user" "$work" 2>/dev/null || true

# ---- the machine -----------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
rev=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$top" status --porcelain -- src mod_clinic.c 2>/dev/null | wc -l)
[ "$dirty" -gt 0 ] && rev="$rev + uncommitted changes in $dirty module file(s)"
rev="$rev; mod_clinic.so built $(date -u -r "$top/mod_clinic.so" +%Y-%m-%dT%H:%M:%SZ), sha256 $(sha256sum "$work/mod_clinic.so" | cut -c1-12)"
say "machine: $(nproc) cores, $cpu, $mem; load $(load); module at $rev"

# ---- keys and tokens ---------------------------------------------------------
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/keys/rsa-private.pem" 2>/dev/null
openssl pkey -in "$work/keys/rsa-private.pem" -pubout -out "$work/keys/rsa-public.pem"
openssl rand -hex 32 > "$work/keys/hs-secret"
chown -R "$user" "$work/keys" 2>/dev/null || true
claims='{"sub":"bench","userId":"doc-bench"}'
tok_rs=$("$top/tools/mkjwt" sign --alg RS256 --key "$work/keys/rsa-private.pem" --claims "$claims" --exp-in 3600)
tok_hs=$("$top/tools/mkjwt" sign --alg HS256 --key "$work/keys/hs-secret" --claims "$claims" --exp-in 3600)
echo "$tok_rs" > "$work/keys/rs256.token"
echo "$tok_hs" > "$work/keys/hs256.token"
# bench/tokens.c: a pool of distinct RS256 tokens (more than the module's
# cache of verified tokens holds: every request a full verification), and
# the native cost of the token work.
${CC:-cc} -O2 -o "$work/tokens" "$top/bench/tokens.c" -ljwt -ljansson -lcrypto
POOL=${BENCH_TOKEN_POOL:-5000}
"$work/tokens" mint "$work/keys/rsa-private.pem" "$POOL" > "$work/keys/rs256-pool"
chown -R "$user" "$work/keys" 2>/dev/null || true

# ---- PostgreSQL --------------------------------------------------------------
# The settings README/BENCHMARKS.md propose for a server like this one:
# synchronous_commit stays on (every 200 is on disk), checkpoints spaced so
# that none falls inside a 10 s run, room for 2 Apache pools + pgbench.
say "PostgreSQL: initdb, fixtures (1000 patients, $(( (3 * THREADS * WRK_CAP + CONN * (PG_CAP + PG_CAP2) + 8 * CG_CAP) )) free appointments)"
as_user "$pgbin/initdb" -D "$pgdata" -E UTF8 --locale=C.UTF-8 -A trust -U "$user" >/dev/null
cat <<EOF | as_user tee -a "$pgdata/postgresql.conf" >/dev/null
# ---- scripts/bench.sh
listen_addresses = ''
unix_socket_directories = '$sock'
max_connections = 100
shared_buffers = 2GB
effective_cache_size = 8GB
synchronous_commit = on
fsync = on
full_page_writes = on
wal_buffers = 16MB
max_wal_size = 8GB
min_wal_size = 1GB
checkpoint_timeout = 30min
checkpoint_completion_target = 0.9
log_checkpoints = on
# Benchmark only: autovacuum would start in whichever timed run it overlaps
# and its CPU would be counted there; the script runs VACUUM ANALYZE between
# runs instead (untimed). Keep autovacuum on in production.
autovacuum = off
EOF
as_user "$pgbin/pg_ctl" -D "$pgdata" -l "$work/logs/pg.log" -w start >/dev/null
as_user "$pgbin/createdb" -h "$sock" clinic
sql() { as_user psql -X -q -A -t -h "$sock" -d clinic -v ON_ERROR_STOP=1 "$@"; }
sql -f "$top/sql/schema-pgsql.sql" >/dev/null
sql -v wrk_threads="$THREADS" -v wrk_cap="$WRK_CAP" -v pg_clients="$CONN" -v pg_cap="$((PG_CAP + PG_CAP2))" \
    -v cg_cap="$CG_CAP" -f "$work/fixtures.sql" >/dev/null
sql -c CHECKPOINT
count() { sql -c "$1"; }
n_visits() { count "SELECT count(*) FROM visits"; }
n_pp() { count "SELECT count(*) FROM practice_patients"; }
n_linked() { count "SELECT count(*) FROM appointments WHERE patient_id IS NOT NULL"; }

# ---- Apache ------------------------------------------------------------------
port=
for p in $(seq 18080 18380); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || { echo "bench: no free port" >&2; exit 1; }
sed -e "s|@WORK@|$work|g" -e "s|@MODDIR@|$moddir|g" -e "s|@PORT@|$port|g" \
    -e "s|@SOCK@|$sock|g" -e "s|@DBUSER@|$user|g" "$top/bench/httpd.conf.in" > "$work/httpd.conf"
chown "$user" "$work/httpd.conf" 2>/dev/null || true
base="http://127.0.0.1:$port"

wait_port() {   # until Apache answers (any status), at most $1 seconds
    local i
    for i in $(seq 1 $(($1 * 10))); do
        curl -s -o /dev/null -m 2 "$base/" && return 0
        sleep 0.1
    done
    echo "bench: Apache did not come up; error log:" >&2
    tail -20 "$work/error.log" >&2
    return 1
}
start_apache() {   # [-D NAME]
    as_user "$httpd" -f "$work/httpd.conf" "$@"
    wait_port 30
}
ok200() { grep -c "^200 $1\$" "$work/access.log" 2>/dev/null || true; }

# ---- 1. throughput -------------------------------------------------------------
# CPU time (clock ticks) of a process tree: the process, its reaped children
# and its live children. Apache: the parent; PostgreSQL: the postmaster.
tck=$(getconf CLK_TCK)
ticks_of() {   # pid with-reaped-children(0|1)
    sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk -v all="$2" '{print $12 + $13 + (all ? $14 + $15 : 0)}'
}
tree_ticks() {
    local p=$1 t c
    [ -n "$p" ] && [ -r "/proc/$p/stat" ] || { echo 0; return; }
    t=$(ticks_of "$p" 1)
    for c in $(ps -o pid= --ppid "$p"); do t=$((t + $(ticks_of "$c" 0 || echo 0))); done
    echo "$t"
}
apache_ticks() { tree_ticks "$(cat "$work/httpd.pid" 2>/dev/null)"; }
pg_ticks() { tree_ticks "$(head -1 "$pgdata/postmaster.pid")"; }
vacuum() { sql -c "VACUUM ANALYZE visits, practice_patients, appointments"; }
cpu_begin() { vacuum; C_w0=$(sql -c "SELECT pg_current_wal_lsn()"); C_a0=$(apache_ticks); C_p0=$(pg_ticks); }
cpu_end() {   # name: client CPU from bash's time in $work/time-name; -> C_client C_apache C_pg (seconds)
    C_apache=$(awk -v a="$(apache_ticks)" -v b="$C_a0" -v t="$tck" 'BEGIN {printf "%.2f", (a - b) / t}')
    C_pg=$(awk -v a="$(pg_ticks)" -v b="$C_p0" -v t="$tck" 'BEGIN {printf "%.2f", (a - b) / t}')
    C_client=$(awk '{printf "%.2f", $1 + $2}' "$work/time-$1")
    C_wal=$(sql -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$C_w0')::bigint")
}

run_wrk() {   # name script path args...   -> $work/wrk-name.out, BENCH line parsed into W_*
    local name=$1 script=$2 path=$3
    shift 3
    local TIMEFORMAT='%3U %3S'
    C_load=$(cut -d' ' -f1 /proc/loadavg)
    cpu_begin
    { time wrk -t"$THREADS" -c"$CONN" -d"${DUR}s" --timeout 10s -s "$work/$script" "$base$path" -- "$@" \
        > "$work/wrk-$name.out" 2>&1 ; } 2> "$work/time-$name"
    sleep 1   # requests in flight when wrk stopped finish on the server
    cpu_end "$name"
    local line
    line=$(grep '^BENCH ' "$work/wrk-$name.out" || true)
    [ -n "$line" ] || { echo "bench: wrk $name gave no summary:" >&2; cat "$work/wrk-$name.out" >&2; exit 1; }
    eval "$(echo "${line#BENCH }" | tr ' ' '\n' | sed -e 's/^\([a-z0-9_]*\)=\(.*\)$/W_\1="\2"/')"
}

pg_pct() {   # percentile of the latency (us) column of pgbench logs, in ms
    cat "$work"/pglog-"$1".* | awk '{print $3}' | sort -n |
        awk -v p="$2" '{v[NR] = $1} END {i = int(NR * p / 100 + 0.999999); if (i < 1) i = 1; printf "%.3f", v[i] / 1000}'
}
run_pgbench() {   # name script -D...
    local name=$1 script=$2
    shift 2
    local TIMEFORMAT='%3U %3S'
    C_load=$(cut -d' ' -f1 /proc/loadavg)
    cpu_begin
    local rc=0
    { time (cd "$work" && as_user "$pgbin/pgbench" -h "$sock" -n -M prepared -c "$CONN" -j "$THREADS" -T "$DUR" \
        --log --log-prefix="$work/pglog-$name" "$@" -f "$work/$script" clinic > "$work/pgbench-$name.out" 2>&1) ; } \
        2> "$work/time-$name" || rc=$?
    [ "$rc" = 0 ] || { cat "$work/pgbench-$name.out" >&2; exit 1; }
    sleep 1   # pgbench's backends exit: their CPU moves to the postmaster's reaped-children count
    cpu_end "$name"
    P_tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/pgbench-$name.out" | awk '{printf "%.1f", $1}')
    P_txn=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/pgbench-$name.out")
    P_failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$work/pgbench-$name.out")
    if [ -z "$P_txn" ] || [ "$P_txn" = 0 ]; then
        echo "bench: pgbench $name processed no transaction:" >&2
        cat "$work/pgbench-$name.out" >&2
        P_txn=0; P_tps=0; P_p50=0; P_p99=0; status=1
        return 0
    fi
    P_p50=$(pg_pct "$name" 50)
    P_p99=$(pg_pct "$name" 99)
}

declare -A R   # results: R[key.field]
status=0
check() {   # key rows server200 -- marks the run and the exit status
    local k=$1
    if [ "${R[$k.ok]}" = 0 ] || [ "${R[$k.non2xx]}" != 0 ] || [ "${R[$k.rows]}" != "${R[$k.srv]}" ] ||
       [ "${R[$k.rows]}" -lt "${R[$k.ok]}" ] || [ "${R[$k.rows]}" -gt $((R[$k.ok] + CONN)) ]; then
        R[$k.check]="FAILED"
        status=1
    else
        R[$k.check]="ok"
    fi
}

if [[ $SKIP != *" throughput "* ]]; then
    # The floor under every 200 that writes: one session's commit (WAL
    # flush) latency on this disk, nothing else running in PostgreSQL.
    (cd "$work" && as_user "$pgbin/pgbench" -h "$sock" -n -M prepared -c 1 -T 3 -D visit_ts=2026-11-21T07:05:00Z \
        -D status=started -f "$work/commit.pgbench" clinic) > "$work/pgbench-commit.out" 2>&1
    commit_ms=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$work/pgbench-commit.out")
    say "one session's INSERT + COMMIT: $commit_ms ms on average"
    start_apache
    say "Apache on $base; warm-up (2 s per route); load $(load)"
    wrk -t"$THREADS" -c"$CONN" -d2s -s "$work/visits.lua" "$base/visits" -- "$tok_rs" > "$work/wrk-warm-visits.out" 2>&1
    wrk -t"$THREADS" -c"$CONN" -d2s -s "$work/link.lua" "$base/patients/add_and_link?uid=doc-bench" \
        -- "$tok_rs" 0 "$WRK_CAP" > "$work/wrk-warm-link.out" 2>&1
    sleep 1

    for kind in rs hs; do
        if [ $kind = rs ]; then tok=$tok_rs; pre=; run=1; else tok=$tok_hs; pre=/hs; run=2; fi
        k=visits.$kind
        say "wrk POST $pre/visits (${kind^^}256), ${CONN} connections, ${DUR} s; load $(load)"
        b_rows=$(n_visits); b_srv=$(ok200 "$pre/visits")
        run_wrk "$k" visits.lua "$pre/visits" "$tok" 1000
        R[$k.rows]=$(($(n_visits) - b_rows)); R[$k.srv]=$(($(ok200 "$pre/visits") - b_srv))
        R[$k.rps]=$W_rps; R[$k.p50]=$W_p50_ms; R[$k.p99]=$W_p99_ms; R[$k.ok]=$W_ok
        R[$k.non2xx]=$W_non2xx; R[$k.codes]=$W_codes; R[$k.sock]=$W_sockerr
        R[$k.cpu]="$C_client $C_apache $C_pg $C_load $C_wal"
        check "$k"

        k=link.$kind
        say "wrk POST $pre/patients/add_and_link (${kind^^}256), ${CONN} connections, ${DUR} s; load $(load)"
        b_rows=$(n_pp); b_linked=$(n_linked); b_srv=$(ok200 "$pre/patients/add_and_link")
        run_wrk "$k" link.lua "$pre/patients/add_and_link?uid=doc-bench" "$tok" "$run" "$WRK_CAP"
        R[$k.rows]=$(($(n_pp) - b_rows)); R[$k.linked]=$(($(n_linked) - b_linked))
        R[$k.srv]=$(($(ok200 "$pre/patients/add_and_link") - b_srv))
        R[$k.rps]=$W_rps; R[$k.p50]=$W_p50_ms; R[$k.p99]=$W_p99_ms; R[$k.ok]=$W_ok
        R[$k.non2xx]=$W_non2xx; R[$k.codes]=$W_codes; R[$k.sock]=$W_sockerr; R[$k.maxn]=$W_maxn
        R[$k.cpu]="$C_client $C_apache $C_pg $C_load $C_wal"
        check "$k"
        [ "${R[$k.linked]}" = "${R[$k.rows]}" ] || { R[$k.check]="FAILED (linked ${R[$k.linked]})"; status=1; }
    done

    k=visits.rsmiss
    say "wrk POST /visits (RS256, a different token on every request: $POOL in turn), ${DUR} s; load $(load)"
    b_rows=$(n_visits); b_srv=$(ok200 /visits)
    run_wrk "$k" visits.lua /visits "@$work/keys/rs256-pool" 1000 "$THREADS"
    R[$k.rows]=$(($(n_visits) - b_rows)); R[$k.srv]=$(($(ok200 /visits) - b_srv))
    R[$k.rps]=$W_rps; R[$k.p50]=$W_p50_ms; R[$k.p99]=$W_p99_ms; R[$k.ok]=$W_ok
    R[$k.non2xx]=$W_non2xx; R[$k.codes]=$W_codes; R[$k.sock]=$W_sockerr
    R[$k.cpu]="$C_client $C_apache $C_pg $C_load $C_wal"
    check "$k"

    # The floor: the same Apache serving a static file of the size of a
    # /visits answer, no module, no database.
    k=static
    R[static.bytes]=$(curl -s -X POST "$base/visits" -H "Authorization: Bearer $tok_rs" \
        -H "Content-Type: application/json" -d '{"patient": 1000, "status": "started"}' | wc -c)
    head -c $((R[static.bytes] - 11)) /dev/zero | tr '\0' 'x' | sed 's/^/{"pad": "/; s/$/"}/' > "$work/htdocs/static.json"
    say "wrk GET a static file of the same size (httpd floor), 5 s; load $(load)"
    b_srv=$(ok200 /static.json)
    DUR_SAVE=$DUR; DUR=5
    run_wrk "$k" get.lua /static.json
    DUR=$DUR_SAVE
    R[$k.srv]=$(($(ok200 /static.json) - b_srv))
    R[$k.rps]=$W_rps; R[$k.p50]=$W_p50_ms; R[$k.p99]=$W_p99_ms; R[$k.ok]=$W_ok
    R[$k.non2xx]=$W_non2xx; R[$k.codes]=$W_codes; R[$k.sock]=$W_sockerr
    R[$k.cpu]="$C_client $C_apache $C_pg $C_load $C_wal"
    R[$k.rows]=${R[$k.srv]}
    check "$k"
    stop_apache

    say "pgbench visits SQL, -c $CONN -j $THREADS -T $DUR; load $(load)"
    b_rows=$(n_visits)
    run_pgbench visits visits.pgbench -D npatients=1000 -D visit_ts=2026-11-21T07:05:00.000000Z -D status=started
    R[pg.visits.rows]=$(($(n_visits) - b_rows))
    R[pg.visits.rps]=$P_tps; R[pg.visits.p50]=$P_p50; R[pg.visits.p99]=$P_p99
    R[pg.visits.txn]=$P_txn; R[pg.visits.failed]=${P_failed:-0}
    R[pg.visits.cpu]="$C_client 0 $C_pg $C_load $C_wal"

    say "pgbench add_and_link SQL, -c $CONN -j $THREADS -T $DUR; load $(load)"
    b_rows=$(n_pp); b_linked=$(n_linked)
    run_pgbench link link.pgbench -D n=0 -D doc=doc-bench -D first=Jane -D last=Smith -D dob=1990-03-20 \
        -D created=2026-11-21T07:05:00.000000Z
    R[pg.link.rows]=$(($(n_pp) - b_rows)); R[pg.link.linked]=$(($(n_linked) - b_linked))
    R[pg.link.rps]=$P_tps; R[pg.link.p50]=$P_p50; R[pg.link.p99]=$P_p99
    R[pg.link.txn]=$P_txn; R[pg.link.failed]=${P_failed:-0}
    R[pg.link.cpu]="$C_client 0 $C_pg $C_load $C_wal"

    # PostgreSQL's CPU per transaction depends on the rate (group commit,
    # wake-ups): run the same SQL again at the rate mod_clinic reached with
    # RS256, to compare the database's work per request at equal load.
    rv=${R[visits.rs.rps]%.*}; rl=${R[link.rs.rps]%.*}
    say "pgbench visits SQL at mod_clinic's rate (-R $rv); load $(load)"
    b_rows=$(n_visits)
    run_pgbench visits-rate visits.pgbench -R "$rv" -D npatients=1000 -D visit_ts=2026-11-21T07:05:00.000000Z \
        -D status=started
    R[pg.visits-rate.rows]=$(($(n_visits) - b_rows))
    R[pg.visits-rate.rps]=$P_tps; R[pg.visits-rate.p50]=$P_p50; R[pg.visits-rate.p99]=$P_p99
    R[pg.visits-rate.txn]=$P_txn; R[pg.visits-rate.failed]=${P_failed:-0}
    R[pg.visits-rate.cpu]="$C_client 0 $C_pg $C_load $C_wal"
    say "pgbench add_and_link SQL at mod_clinic's rate (-R $rl); load $(load)"
    b_rows=$(n_pp); b_linked=$(n_linked)
    run_pgbench link-rate link.pgbench -R "$rl" -D n="$PG_CAP" -D doc=doc-bench -D first=Jane -D last=Smith \
        -D dob=1990-03-20 -D created=2026-11-21T07:05:00.000000Z
    R[pg.link-rate.rows]=$(($(n_pp) - b_rows)); R[pg.link-rate.linked]=$(($(n_linked) - b_linked))
    R[pg.link-rate.rps]=$P_tps; R[pg.link-rate.p50]=$P_p50; R[pg.link-rate.p99]=$P_p99
    R[pg.link-rate.txn]=$P_txn; R[pg.link-rate.failed]=${P_failed:-0}
    R[pg.link-rate.cpu]="$C_client 0 $C_pg $C_load $C_wal"

    for k in pg.visits pg.link pg.visits-rate pg.link-rate; do
        if [ "${R[$k.rows]}" = "${R[$k.txn]}" ] && [ "${R[$k.failed]}" = 0 ] &&
           { [[ $k == pg.visits* ]] || [ "${R[$k.linked]}" = "${R[$k.txn]}" ]; }; then
            R[$k.check]=ok
        else
            R[$k.check]=FAILED; status=1
        fi
    done
fi

# ---- 2. memory -----------------------------------------------------------------
rss_of() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
children() { ps -o pid= --ppid "$(cat "$work/httpd.pid")" | tr -d ' ' | sort -n | tr '\n' ' '; }
visits_served() { grep -c '^200 /visits$' "$work/access.log" 2>/dev/null || true; }
drive_until() {   # send /visits (RS256) until $1 more 200s were logged
    local goal=$(($(visits_served) + $1))
    wrk -t"$THREADS" -c"$CONN" -d3600s --timeout 10s -s "$work/visits.lua" "$base/visits" -- "$tok_rs" 1000 \
        > "$work/wrk-mem.out" 2>&1 &
    wrk_pid=$!
    while [ "$(visits_served)" -lt "$goal" ]; do
        kill -0 "$wrk_pid" 2>/dev/null || { cat "$work/wrk-mem.out" >&2; exit 1; }
        sleep 0.2
    done
    kill -INT "$wrk_pid"
    wait "$wrk_pid" || true
    wrk_pid=
    sleep 1
    grep -q '^BENCH .* non2xx=0 ' "$work/wrk-mem.out" || { echo "bench: memory run had errors:" >&2; cat "$work/wrk-mem.out" >&2; status=1; }
}

if [[ $SKIP != *" mem "* ]]; then
    start_apache -D MEMTEST
    say "memory: one child, warm-up of $MEM_WARMUP requests; load $(load)"
    drive_until "$MEM_WARMUP"
    M_kids=$(children)
    declare -A RSS0
    for c in $M_kids; do RSS0[$c]=$(rss_of "$c"); done
    m0=$(visits_served)
    say "memory: $MEM_REQ more requests (children: $M_kids); load $(load)"
    drive_until "$MEM_REQ"
    M_served=$(($(visits_served) - m0))
    M_lines=""
    for c in $M_kids; do
        if [ -r "/proc/$c/status" ]; then
            r1=$(rss_of "$c")
            M_lines+="| $c | ${RSS0[$c]} | $r1 | $((r1 - RSS0[$c])) | $(awk '/^VmHWM/ {print $2}' "/proc/$c/status") |"$'\n'
        else
            M_lines+="| $c | ${RSS0[$c]} | (exited) | - | - |"$'\n'
            status=1
        fi
    done
    [ "$(children)" = "$M_kids" ] || M_lines+="(children changed during the run: $(children))"$'\n'
    stop_apache
fi

# ---- 3. callgrind ----------------------------------------------------------------
# Module work = inclusive Ir of clinic_handler (and of the module's own
# request-pool cleanups, which free its JSON after the handler returns) minus
# the inclusive Ir of the calls module code makes into the database layer
# (mod_dbd's acquire, apr_dbd_*, libpq): bench/cgsplit.pl.
curl_cfg() {   # out path token n kind [distinct-token-file]
    local out=$1 path=$2 tok=$3 n=$4 kind=$5 toks=${6:-} i body
    : > "$out"
    for i in $(seq 1 "$n"); do
        [ -n "$toks" ] && tok=$(sed -n "${i}p" "$toks")
        if [ "$kind" = visits ]; then
            body="{\\\"patient\\\": $((1 + (i * 7919) % 1000)), \\\"status\\\": \\\"started\\\", \\\"visit_date\\\": \\\"21 November 2026 14:05\\\"}"
        else
            CG_SEQ=$((CG_SEQ + 1))
            body=$(printf '{\\"appointment_id\\": \\"%012x%012x\\", \\"firstName\\": \\"Jane\\", \\"lastName\\": \\"Smith\\", \\"dateOfBirth\\": \\"1990-03-20\\"}' "$CG_SLOT" "$CG_SEQ")
        fi
        [ "$i" = 1 ] || echo next >> "$out"
        printf 'url = "%s%s"\nheader = "Authorization: Bearer %s"\nheader = "Content-Type: application/json"\ndata = "%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' \
            "$base" "$path" "$tok" "$body" >> "$out"
    done
}
curl_run() {   # cfg -> fails unless every answer is 200
    local codes
    codes=$(curl -s -K "$1" | sort | uniq -c | tr -s ' ')
    [ "$(echo "$codes" | wc -l)" = 1 ] && [[ $codes == *" 200" ]] ||
        { echo "bench: callgrind requests answered: $codes" >&2; tail -5 "$work/error.log" >&2; return 1; }
}

if [[ $SKIP != *" cg "* ]]; then
    say "callgrind: httpd -X, $CG_N requests per case; load $(load)"
    # Tokens that differ per request (a jti each): every one is verified in
    # full even where the module caches verified tokens.
    for alg in RS256 HS256; do
        key=$work/keys/rsa-private.pem; [ $alg = HS256 ] && key=$work/keys/hs-secret
        for i in $(seq 1 "$CG_N"); do
            "$top/tools/mkjwt" sign --alg $alg --key "$key" --claims "{\"sub\":\"bench\",\"userId\":\"doc-bench\",\"jti\":\"cg-$i\"}" --exp-in 3600
        done > "$work/cg/tokens-$alg"
    done
    (cd "$work/cg" && as_user valgrind --tool=callgrind --callgrind-out-file="$work/cg/callgrind.out" \
        --collect-atstart=no --toggle-collect=clinic_handler --toggle-collect=json_cleanup \
        --toggle-collect=txn_cleanup --vgdb=yes \
        "$httpd" -X -f "$work/httpd.conf" -D CALLGRIND > "$work/logs/valgrind.log" 2>&1) &
    apache_pid=$!
    wait_port 180
    vg_pid=
    for _ in $(seq 1 50); do
        vg_pid=$(sed -n 's/^==\([0-9]*\)==.*/\1/p' "$work/logs/valgrind.log" | head -1)
        [ -n "$vg_pid" ] && break
        sleep 0.1
    done
    CG_CASES="visits.rs visits.hs link.rs link.hs visits.rs-distinct visits.hs-distinct"
    ncase=0
    for case in $CG_CASES; do
        kind=${case%%.*}; v=${case#*.}; alg=${v%%-*}
        tok=$tok_rs; pre=; [ "$alg" = hs ] && { tok=$tok_hs; pre=/hs; }
        path=$pre/visits; [ "$kind" = link ] && path="$pre/patients/add_and_link?uid=doc-bench"
        ncase=$((ncase + 1)); CG_SLOT=$((511 + ncase)); CG_SEQ=0
        toks=; [[ $v == *-distinct ]] && toks=$work/cg/tokens-${alg^^}256
        curl_cfg "$work/cg/warm-$case" "$path" "$tok" "$CG_WARM" "$kind"
        curl_cfg "$work/cg/run-$case" "$path" "$tok" "$CG_N" "$kind" "$toks"
        curl_run "$work/cg/warm-$case"
        as_user callgrind_control -z "$vg_pid" >/dev/null 2>&1
        curl_run "$work/cg/run-$case"
        as_user callgrind_control -d "$case" "$vg_pid" >/dev/null 2>&1
    done
    kill -TERM "$vg_pid" 2>/dev/null || true
    wait "$apache_pid" 2>/dev/null || true
    apache_pid=
    vg_pid=
    # One dump per case, numbered in case order.
    declare -A CG
    i=0
    for case in $CG_CASES; do
        i=$((i + 1))
        f=$(ls "$work"/cg/callgrind.out*.$i 2>/dev/null | head -1)
        [ -n "$f" ] || { echo "bench: no callgrind dump $i ($case)" >&2; ls "$work/cg" >&2; exit 1; }
        cp "$f" "$work/cg/callgrind.$case"
        callgrind_annotate --inclusive=yes --auto=no --threshold=100 "$f" > "$work/cg/annotate-$case.txt" 2>/dev/null
        while read -r key val; do CG[$case.$key]=$val; done < <(perl "$top/bench/cgsplit.pl" mod_clinic.so "$CG_N" "$f")
    done
fi

# ---- native token costs ----------------------------------------------------------
declare -A TC
while read -r key val; do TC[$key]=$val; done < <("$work/tokens" cost "$work/keys/rs256.token" \
    "$work/keys/rsa-public.pem" "$work/keys/hs256.token" "$work/keys/hs-secret")
ckpt=$(grep -c 'checkpoint starting: time\|checkpoint starting: wal' "$work/logs/pg.log" || true)

# ---- report -----------------------------------------------------------------------
{
echo "## mod_clinic benchmark"
echo
echo "- machine: $(nproc) cores, $cpu, $mem; load average at the end $(load)"
echo "- module: $rev; $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "- wrk -t$THREADS -c$CONN -d${DUR}s; pgbench -M prepared -c $CONN -j $THREADS -T $DUR"
echo
if [[ $SKIP != *" throughput "* ]]; then
    echo "| run | requests/s | p50 ms | p99 ms | 2xx (client) | non-2xx | 200s (server log) | rows written | check |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
    for k in visits.rs visits.hs link.rs link.hs visits.rsmiss static; do
        route=/visits; [[ $k == link.* ]] && route=/patients/add_and_link
        kind=${k#*.}; kind=${kind^^}256
        [ $k = visits.rsmiss ] && kind="RS256, a new token every request"
        if [ $k = static ]; then
            echo "| wrk GET a ${R[static.bytes]:-430}-byte static file (no module, no database; 5 s) | ${R[$k.rps]} | ${R[$k.p50]} | ${R[$k.p99]} | ${R[$k.ok]} | ${R[$k.non2xx]} | ${R[$k.srv]} | - | ${R[$k.check]} |"
            continue
        fi
        rows=${R[$k.rows]}; [[ $k == link.* ]] && rows="$rows patients, ${R[$k.linked]} linked"
        nn=${R[$k.non2xx]}; [ "$nn" != 0 ] && nn="$nn (${R[$k.codes]})"
        echo "| wrk POST $route, $kind | ${R[$k.rps]} | ${R[$k.p50]} | ${R[$k.p99]} | ${R[$k.ok]} | $nn | ${R[$k.srv]} | $rows | ${R[$k.check]} |"
    done
    echo "| pgbench visits SQL (SELECT + INSERT) | ${R[pg.visits.rps]} | ${R[pg.visits.p50]} | ${R[pg.visits.p99]} | ${R[pg.visits.txn]} txns | ${R[pg.visits.failed]} failed | - | ${R[pg.visits.rows]} | ${R[pg.visits.check]} |"
    echo "| pgbench add_and_link SQL (BEGIN, INSERT, UPDATE, COMMIT) | ${R[pg.link.rps]} | ${R[pg.link.p50]} | ${R[pg.link.p99]} | ${R[pg.link.txn]} txns | ${R[pg.link.failed]} failed | - | ${R[pg.link.rows]} patients, ${R[pg.link.linked]} linked | ${R[pg.link.check]} |"
    echo "| pgbench visits SQL at mod_clinic's RS256 rate (-R) | ${R[pg.visits-rate.rps]} | ${R[pg.visits-rate.p50]} | ${R[pg.visits-rate.p99]} | ${R[pg.visits-rate.txn]} txns | ${R[pg.visits-rate.failed]} failed | - | ${R[pg.visits-rate.rows]} | ${R[pg.visits-rate.check]} |"
    echo "| pgbench add_and_link SQL at mod_clinic's RS256 rate (-R) | ${R[pg.link-rate.rps]} | ${R[pg.link-rate.p50]} | ${R[pg.link-rate.p99]} | ${R[pg.link-rate.txn]} txns | ${R[pg.link-rate.failed]} failed | - | ${R[pg.link-rate.rows]} patients, ${R[pg.link-rate.linked]} linked | ${R[pg.link-rate.check]} |"
    echo
    echo "CPU used during each run (seconds, of $(($(nproc) * DUR)) core-seconds on $(nproc) cores in ${DUR} s (static: 5 s), shared with"
    echo "whatever else runs on the machine), and per request or transaction:"
    echo
    echo "| run | load average before | load generator s | Apache s | PostgreSQL s | total s | generator us/req | Apache us/req | PostgreSQL us/req | total us/req | WAL bytes/req | req/s if CPU-bound on $(nproc) idle cores |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for k in visits.rs visits.hs link.rs link.hs visits.rsmiss static pg.visits pg.link pg.visits-rate pg.link-rate; do
        n=${R[$k.srv]:-${R[$k.txn]}}
        read -r cc ca cp cl cw <<< "${R[$k.cpu]}"
        awk -v k="$k" -v n="$n" -v c="$cc" -v a="$ca" -v p="$cp" -v l="$cl" -v w="$cw" -v cores="$(nproc)" 'BEGIN { if (n < 1) n = 1;
            tot = c + a + p; if (tot <= 0) tot = 1e-9;
            printf "| %s | %s | %.2f | %s | %.2f | %.2f | %.0f | %s | %.0f | %.0f | %.0f | %.0f |\n", k, l, c, (k ~ /^pg/ ? "-" : sprintf("%.2f", a)),
                p, c + a + p, 1e6 * c / n, (k ~ /^pg/ ? "-" : sprintf("%.0f", 1e6 * a / n)), 1e6 * p / n, 1e6 * (c + a + p) / n, w / n,
                cores * n / tot }'
    done
    echo
    echo "mod_clinic / pgbench: measured requests/s over transactions/s, and the same ratio of the CPU-bound"
    echo "projections (CPU per request of pgbench's run over CPU per request of mod_clinic's, load generators"
    echo "included), which depends much less on what else the machine runs:"
    echo
    cpr() { read -r a b c _ <<< "${R[$1.cpu]}"; awk -v a="$a" -v b="$b" -v c="$c" -v n="${R[$1.srv]:-${R[$1.txn]}}" 'BEGIN {print (a + b + c) / (n > 0 ? n : 1)}'; }
    for k in visits.rs visits.hs link.rs link.hs; do
        pg=pg.${k%%.*}
        kind=${k#*.}
        awk -v a="${R[$k.rps]}" -v b="${R[$pg.rps]}" -v ca="$(cpr "$k")" -v cb="$(cpr "$pg")" -v n="${k%%.*} ${kind^^}256" \
            'BEGIN {printf "- %s: %.2f measured, %.2f CPU-bound\n", n, (b > 0 ? a / b : 0), (ca > 0 ? cb / ca : 0)}'
    done
    echo
    echo "(pgbench -R latencies count from each transaction's scheduled start, so they include schedule lag.)"
    echo "(rows written may exceed the client's 2xx count by the requests in flight when wrk stopped, at most $CONN; they must equal the server's 200s.)"
    echo
    echo "One session's INSERT + COMMIT (synchronous_commit on, pgbench -c 1 -T 3): $commit_ms ms on average."
    echo "PostgreSQL checkpoints started by time or WAL volume during the whole run: $ckpt."
    echo
fi
if [[ $SKIP != *" mem "* ]]; then
    echo "### Memory: one child (ServerLimit 1, ThreadsPerChild 16), POST /visits RS256"
    echo
    echo "RSS sampled after $MEM_WARMUP warm-up requests and again after $M_served more."
    echo
    echo "| child pid | VmRSS after warm-up (kB) | VmRSS at the end (kB) | growth (kB) | VmHWM (kB) |"
    echo "|---|---:|---:|---:|---:|"
    printf '%s' "$M_lines"
    echo
fi
echo "### Native token costs on this CPU (bench/tokens.c, CPU microseconds per operation, best of 7)"
echo
echo "| operation | us |"
echo "|---|---:|"
for key in jwt_decode_rs256 pem_parse evp_verify_rs256 jwt_decode_hs256 sha256_token_implicit sha256_token_fetched; do
    echo "| $key | ${TC[$key]:-?} |"
done
echo
if [[ $SKIP != *" cg "* ]]; then
    echo "### Instructions per request (callgrind, httpd -X, $CG_N requests per case after $CG_WARM warm-up)"
    echo
    echo "| case | handler + its pool cleanups (incl. database client) | database client | module | of which: module code | jansson | libjwt | libcrypto | httpd + APR | libc | jwt_decode calls |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for case in $CG_CASES; do
        echo "| $case | ${CG[$case.total]} | ${CG[$case.db]} | ${CG[$case.module]} | ${CG[$case.self]} | ${CG[$case.lib:jansson]:-0} | ${CG[$case.lib:jwt]:-0} | ${CG[$case.lib:crypto]:-0} | $(( ${CG[$case.lib:apache2]:-0} + ${CG[$case.lib:apr-1]:-0} + ${CG[$case.lib:aprutil-1]:-0} )) | ${CG[$case.lib:c]:-0} | ${CG[$case.jwt_decode]} of $CG_N |"
    done
    echo
    echo "Ir per request. Cases: visits/link = route; rs/hs = RS256/HS256 with one token for every"
    echo "request; -distinct = a different token (jti) on every request. Collected: clinic_handler and the"
    echo "module's request-pool cleanups (json_cleanup, txn_cleanup), inclusive. Database client = inclusive Ir"
    echo "of the module's calls into ap_dbd_acquire, apr_dbd_* and libpq; module = handler - database"
    echo "client; the columns after it split the module's Ir by where it runs (its own code, and its"
    echo "calls into each library, inclusive)."
    echo
    h=$(grep -E ':clinic_handler \[' "$work/cg/annotate-visits.rs.txt" | head -1 | awk '{gsub(",", "", $1); print int($1 / '"$CG_N"')}')
    echo "Top functions by inclusive Ir below clinic_handler ($h Ir/request), POST /visits RS256 (one token), per request:"
    echo
    echo "| function | Ir/request | share of all collected Ir |"
    echo "|---|---:|---:|"
    # Below clinic_handler only (the frames above it, and clinic_visits_handle
    # under it, have its inclusive cost); shares of all collected Ir.
    grep -E '^ *[0-9,]+ +\( *[0-9.]+%\) +[^ ]+ \[' "$work/cg/annotate-visits.rs.txt" |
        awk -v n="$CG_N" -v t="${CG[visits.rs.total]}" -v h="$h" '{gsub(",", "", $1); ir = int($1 / n);
            if (ir >= 0.995 * h || k >= 15 || index($0, "'\''")) next;
            f = $0; sub(/^[^)]*\) +/, "", f); ob = f; sub(/ \[.*/, "", f); sub(/^.*:/, "", f);
            sub(/^.*\[/, "", ob); sub(/\].*/, "", ob); sub(/.*\//, "", ob); sub(/\.so.*/, "", ob);
            if (f ~ /^0x/) f = "(" ob " internal " f ")"; else f = f " (" ob ")";
            if (seen[f]++) next; k++; printf "| %s | %d | %.1f%% |\n", f, ir, 100 * ir / t}'
    echo
fi
} > "$work/report.md"
cat "$work/report.md"
[ -n "${BENCH_OUT:-}" ] && cp "$work/report.md" "$BENCH_OUT"
say "done in $(($(date +%s) - t0)) s"
exit $status
