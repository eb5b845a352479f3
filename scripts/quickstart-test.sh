#!/bin/bash
# docs/quickstart.md, run as written: called by scripts/package-test.sh (root, its own
# network namespace, the package installed, the stock Apache stopped).
#
# For each flavour (sqlite, then pgsql) the ```sh blocks that follow a
# `<!-- run: ... -->` comment naming it are taken from the document, in order,
# and run as they are, in one bash (-e -o pipefail), from an empty folder.
# Then the results are checked: both curls answered 200 with the documented
# bodies' shape, the audit log has their lines, /clinic-metrics answers with
# the package's version, configtest passes. Every step is undone after each
# flavour: Apache stopped, the conf files disabled and removed, the keys, the
# database and the audit logs deleted; for PostgreSQL the role and database
# dropped, the system cluster stopped again if it was down, and postgresql
# purged if this script installed it.
#
#   scripts/quickstart-test.sh [FLAVOUR...]   (default: sqlite pgsql)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
doc=$top/docs/quickstart.md
pkg=libapache2-mod-clinic
confs="clinic-database clinic-routes"

passed=0
failed=0
work=$(mktemp -d /tmp/mod_clinic-quickstart.XXXXXX)
chmod 755 "$work"
label=package
check() {   # check NAME COMMAND...: one result line; fails as the command does
    local name=$1; shift
    if "$@" > "$work/check.out" 2>&1; then
        passed=$((passed + 1)); echo "ok - quickstart $label: $name"
    else
        failed=$((failed + 1)); echo "not ok - quickstart $label: $name"
        sed 's/^/#   /' "$work/check.out" | tail -30
        return 1
    fi
}

# The blocks marked for FLAVOUR, one after another.
extract() {
    awk -v want="$1" '
        /^<!-- run: .* -->$/ { n = split($0, w, /[ :]+/); mark = 0
                               for (i = 1; i <= n; i++) if (w[i] == want) mark = 1; next }
        mark && /^```sh$/     { inblock = 1; next }
        inblock && /^```$/    { inblock = 0; mark = 0; print ""; next }
        inblock               { print; next }
        /[^[:space:]]/        { mark = 0 }
    ' "$doc"
}

audit_logs() { find /var/log/apache2 -maxdepth 1 -name 'clinic-audit.*.log' | sort; }

apache_stop() {
    [ -f /var/run/apache2/apache2.pid ] || return 0
    apache2ctl stop >/dev/null 2>&1 || true
    for _ in $(seq 100); do [ -f /var/run/apache2/apache2.pid ] || return 0; sleep 0.1; done
}

# What the quick start makes, removed; only called once its absence was checked before.
undo() {
    apache_stop
    local c
    for c in $confs; do
        [ -e "/etc/apache2/conf-enabled/$c.conf" ] && a2disconf -q "$c" >/dev/null
        rm -f "/etc/apache2/conf-available/$c.conf" "/var/lib/apache2/conf/disabled_by_admin/$c"
    done
    rm -rf /etc/apache2/clinic /var/lib/clinic
    comm -13 "$work/audit-before.txt" <(audit_logs) | while read -r f; do rm -f "$f"; done
    [ "$flavour" != pgsql ] || pg_undo
}

# --- PostgreSQL: Debian's system cluster, started for the test if it is down ---
pg_installed_here=
pg_started_here=
pg_cluster=
installed() { dpkg-query -W -f='${db:Status-Status} ${Package}\n' | awk '$1 == "installed" { print $2 }' | sort; }
pg_prepare() {
    if ! installed | grep -x postgresql >/dev/null; then
        installed > "$work/packages-before.txt"
        pg_installed_here=1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 postgresql >/dev/null
    fi
    pg_cluster=$(pg_lsclusters -h | awk 'NR == 1 { print $1 " " $2 }')
    [ -n "$pg_cluster" ] || { echo "no PostgreSQL cluster (pg_lsclusters)"; return 1; }
    if pg_lsclusters -h | awk 'NR == 1 { print $4 }' | grep -qx online; then
        echo "the system cluster $pg_cluster runs already (outside this network namespace): not touching it"
        return 1
    fi
    pg_ctlcluster $pg_cluster start
    pg_started_here=1
    if runuser -u postgres -- psql -Atqc "SELECT 1 FROM pg_roles WHERE rolname = 'clinic'
                                          UNION ALL SELECT 1 FROM pg_database WHERE datname = 'clinic'" \
            -d postgres | grep -q 1; then
        echo "a role or database named clinic exists already: not touching it"
        pg_ours=
        return 1
    fi
    pg_ours=1
}
pg_ours=
pg_undo() {
    if [ -n "$pg_ours" ]; then
        (cd / && runuser -u postgres -- dropdb --if-exists clinic && runuser -u postgres -- dropuser --if-exists clinic)
    fi
    [ -z "$pg_started_here" ] || pg_ctlcluster $pg_cluster stop
    if [ -n "$pg_installed_here" ]; then   # what the install brought, purged
        comm -13 "$work/packages-before.txt" <(installed) | xargs -r env DEBIAN_FRONTEND=noninteractive \
            apt-get purge -y -qq -o DPkg::Lock::Timeout=300 >/dev/null
    fi
    pg_started_here= pg_installed_here= pg_ours=
}

flavour=
cleanup() {
    local rc=$?
    set +e
    [ -z "$flavour" ] || undo
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fresh() {   # what the quick start makes is absent, so that undo() removes only its own
    local f
    for f in /etc/apache2/clinic /var/lib/clinic /etc/apache2/conf-available/clinic-database.conf \
             /etc/apache2/conf-available/clinic-routes.conf; do
        [ ! -e "$f" ] || { echo "$f exists already: not touching it"; return 1; }
    done
    [ ! -f /var/run/apache2/apache2.pid ] || { echo "Apache runs already"; return 1; }
}

# --- the checks after the blocks ---
visits_answered() { grep -q '^\[{"id":[0-9]*,"patient":{"model":"clinicmodels.patient","pk":1750,.*,"date":"2026-11-21T14:05:00+07:00","status":"started"}\]$' "$work/run.out"; }
link_answered() { grep -q '^{"success":true,"data":{"_id":"[0-9a-f]\{24\}","doctor_id":"doctor_uid_123","firstName":"Jane","lastName":"Smith","dateOfBirth":"1990-03-20"}}$' "$work/run.out"; }
audit_has() {   # audit_has ROUTE: a status=200 line of ROUTE in a new audit log, within 5 s
    local f
    for _ in $(seq 50); do
        for f in $(comm -13 "$work/audit-before.txt" <(audit_logs)); do
            grep -q "route=$1 status=200 " "$f" && return 0
        done
        sleep 0.1
    done
    echo "no route=$1 status=200 line in /var/log/apache2/clinic-audit.*.log"; audit_logs; return 1
}
metrics_answer() {
    local version
    version=$(dpkg-query -W -f='${Version}' "$pkg")
    curl -sS --fail-with-body http://localhost/clinic-metrics > "$work/metrics.out"
    grep -qx "clinic_build_info{version=\"$version\"} 1" "$work/metrics.out" \
        || { echo "package $version:"; grep build_info "$work/metrics.out"; return 1; }
    grep -q '^clinic_requests_total{route="visits",status="200"' "$work/metrics.out"
}
mkjwt_named() { clinic-mkjwt --help | grep -q '^usage: clinic-mkjwt sign '; }

run_flavour() {
    label=$1
    audit_logs > "$work/audit-before.txt"
    check "nothing of the quick start there before" fresh || return 0
    flavour=$1
    if [ "$flavour" = pgsql ]; then
        check "Debian's PostgreSQL cluster started" pg_prepare || { undo; flavour=; return 0; }
    fi
    extract "$flavour" > "$work/quickstart-$flavour.sh"
    check "the document has blocks to run" test -s "$work/quickstart-$flavour.sh" || true
    mkdir -p "$work/cwd"
    if (cd "$work/cwd" && bash -e -o pipefail "$work/quickstart-$flavour.sh") > "$work/run.out" 2>&1; then
        passed=$((passed + 1)); echo "ok - quickstart $flavour: its blocks run as written"
    else
        failed=$((failed + 1)); echo "not ok - quickstart $flavour: its blocks run as written"
        sed 's/^/#   /' "$work/run.out" | tail -30
    fi
    check "POST /visits answered the created visit" visits_answered || true
    check "POST /patients/add_and_link answered the linked patient" link_answered || true
    check "the audit log has the visit's line" audit_has visits || true
    check "the audit log has the link's line" audit_has add_and_link || true
    check "/clinic-metrics answers, with the package's version" metrics_answer || true
    check "configtest passes" apache2ctl configtest || true
    undo
    flavour=
    check "after undoing: configtest passes" apache2ctl configtest || true
}

check "clinic-mkjwt --help names itself" mkjwt_named || true
check "the quick start is installed with the package" test -f "/usr/share/doc/$pkg/quickstart.md.gz" || true
for f in "${@:-sqlite pgsql}"; do
    for one in $f; do run_flavour "$one"; done
done
echo "quickstart-test: $passed passed, $failed failed"
[ "$failed" = 0 ]
