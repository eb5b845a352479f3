#!/bin/bash
# make test-package: the Debian package on this machine's stock Apache.
#
# Builds the .deb (scripts/deb.sh, lintian included), installs it with
# `apt-get install ./….deb`, checks that configtest still passes with the
# module enabled, adds a site (Listen 127.0.0.1:<port chosen now>) that
# enables both routes against a SQLite database made from the installed
# schema, starts the stock Apache with `apache2ctl start`, sends the seeds'
# two requests (200 each) with tokens from the installed clinic-mkjwt,
# stops Apache, removes and purges the package, and checks that the machine
# is as before: no module file, configtest passing, /etc/apache2 unchanged.
#
# Needs root. Everything runs in a network namespace of its own (unshare
# --net, loopback only), so the stock configuration's `Listen 80` (and an
# Apache a maintainer script might start) binds nothing the rest of the
# machine sees. The trap undoes every step also after a failure
# (CLINIC_PKGTEST_BREAK=1 fails on purpose once Apache is up, to show it).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
pkg=libapache2-mod-clinic
site=clinic-pkgtest

if [ "$(id -u)" != 0 ]; then
    echo "package-test: needs root (apt-get install); skipped"
    echo "package-test: 0 passed, 0 failed"
    exit 0
fi
if [ -z "${CLINIC_PKGTEST_NETNS:-}" ]; then
    exec env CLINIC_PKGTEST_NETNS=1 unshare --net -- "$0" "$@"
fi
ip link set lo up

passed=0
failed=0
ok() {   # ok NAME COMMAND...: one check, reported as a TAP-like line
    local name=$1; shift
    if "$@" > "$work/last.out" 2>&1; then
        passed=$((passed + 1)); echo "ok - $name"
    else
        failed=$((failed + 1)); echo "not ok - $name"; sed 's/^/#   /' "$work/last.out" | tail -20
    fi
}
configtest() { apache2ctl configtest; }
# The package leaves server-wide settings alone: no ErrorLogFormat in effect in clinic.conf.
no_server_log_format() { ! grep -iE '^[[:space:]]*ErrorLogFormat' /etc/apache2/mods-enabled/clinic.conf; }
not_installed() { ! dpkg-query -W -f='${db:Status-Status}\n' "$pkg" 2>/dev/null | grep -qx installed; }
absent() { local f; for f in "$@"; do [ ! -e "$f" ] || { echo "$f still there"; return 1; }; done; }
# What the package may touch: the Apache configuration and a2enmod's state, the module directory.
snapshot() {
    find /etc/apache2 /var/lib/apache2 /usr/lib/apache2/modules \( -type f -o -type l \) \
        -printf '%p %y %l\n' | sort
    find /etc/apache2 -type f -exec md5sum {} + | sort
}

work=$(mktemp -d /tmp/mod_clinic-pkgtest.XXXXXX)
chmod 755 "$work"
site_conf=/etc/apache2/sites-available/$site.conf
dbd_before=
state_dirs=$(for k in module site conf; do for s in enabled disabled; do for w in admin maint; do
    echo "/var/lib/apache2/$k/${s}_by_$w"; done; done; done)
summary=
cleanup() {
    local rc=$?
    set +e
    if [ -z "$summary" ]; then   # stopped early by a failing step
        echo "not ok - stopped early (exit $rc)"
        echo "package-test: $passed passed, $((failed + 1)) failed"
    fi
    if [ -f /var/run/apache2/apache2.pid ] && [ -n "${started:-}" ]; then
        apache2ctl stop >/dev/null 2>&1
        for _ in $(seq 50); do [ -f /var/run/apache2/apache2.pid ] || break; sleep 0.1; done
    fi
    [ -e "/etc/apache2/sites-enabled/$site.conf" ] && a2dissite -q "$site" >/dev/null
    rm -f "$site_conf" "/var/lib/apache2/site/disabled_by_admin/$site"
    not_installed || DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq -o DPkg::Lock::Timeout=300 "$pkg" >/dev/null 2>&1
    # mod_dbd, enabled through clinic.load's "Depends: dbd", is left enabled by the
    # package (as Debian does for a module's dependencies); put it back as it was.
    if [ "$dbd_before" = no ] && [ -e /etc/apache2/mods-enabled/dbd.load ]; then
        a2dismod -q -f dbd >/dev/null
        rm -f /var/lib/apache2/module/enabled_by_maint/dbd /var/lib/apache2/module/disabled_by_admin/dbd
    fi
    # a2enmod's state directories that the steps above created, if left empty.
    for d in $state_dirs; do grep -qx "$d" "$work/dirs-before.txt" 2>/dev/null || rmdir "$d" 2>/dev/null; done
    rm -rf "$work"
}
# --- the machine before: refused before the cleanup is set, so that a refusal undoes nothing ---
refuse() { echo "package-test: $1; not touching it" >&2; rm -rf "$work"; exit 1; }
not_installed || refuse "$pkg is installed already"
[ ! -e /etc/apache2/mods-available/clinic.load ] ||
    refuse "/etc/apache2/mods-available/clinic.load exists (make install?)"
if [ -f /var/run/apache2/apache2.pid ] && kill -0 "$(cat /var/run/apache2/apache2.pid)" 2>/dev/null; then
    refuse "the stock Apache is running"
fi
trap cleanup EXIT
trap 'exit 130' INT TERM

ok "configtest passes before installing" configtest
[ -e /etc/apache2/mods-enabled/dbd.load ] && dbd_before=yes || dbd_before=no
snapshot > "$work/before.txt"
for d in $state_dirs; do [ -d "$d" ] && echo "$d"; done > "$work/dirs-before.txt"

# --- build and install ---
ok "make deb: the package builds and lintian reports no errors" env CLINIC_DEB_OUT="$work" "$top/scripts/deb.sh"
deb=$(ls "$work"/${pkg}_*.deb)
ok "apt-get install ./$(basename "$deb")" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 "$deb"
ok "the module is enabled" test -L /etc/apache2/mods-enabled/clinic.load
ok "configtest passes with the module enabled and nothing configured" configtest
ok "clinic.conf leaves the server's ErrorLogFormat alone" no_server_log_format
ok "the module file is installed" test -f /usr/lib/apache2/modules/mod_clinic.so
conffiles() { dpkg-query -W -f='${Conffiles}\n' "$pkg" | awk 'NF { print $1 }' | sort | tr '\n' ' '; }
ok "clinic.load and clinic.conf are conffiles" \
    test "$(conffiles)" = "/etc/apache2/mods-available/clinic.conf /etc/apache2/mods-available/clinic.load "
ok "schemas in /usr/share/$pkg/sql" test -f "/usr/share/$pkg/sql/schema-sqlite.sql" -a -f "/usr/share/$pkg/sql/schema-pgsql.sql"
ok "README, the docs pages and the OpenAPI document in /usr/share/doc/$pkg" \
    test -f "/usr/share/doc/$pkg/README.md.gz" -a -f "/usr/share/doc/$pkg/clinic.yaml" \
        -a -f "/usr/share/doc/$pkg/directives.md.gz" -a -f "/usr/share/doc/$pkg/operations.md.gz" \
        -a -f "/usr/share/doc/$pkg/security.md.gz" -a -f "/usr/share/doc/$pkg/contributing.md.gz"
ok "the Prometheus alerts example in /usr/share/doc/$pkg/examples" \
    test -f "/usr/share/doc/$pkg/examples/clinic-alerts.yml"
ok "clinic-mkjwt --help" grep -q '^usage: ' <(clinic-mkjwt --help)

# --- a site with both routes against SQLite from the installed schema ---
mkdir -p "$work/db" "$work/keys"
sqlite3 "$work/db/clinic.db" < "/usr/share/$pkg/sql/schema-sqlite.sql" >/dev/null
sqlite3 "$work/db/clinic.db" < "/usr/share/$pkg/sql/demo-data.sql"
chown -R www-data "$work/db"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/keys/private.pem" 2>/dev/null
openssl pkey -in "$work/keys/private.pem" -pubout -out "$work/keys/public.pem"
chmod 644 "$work/keys/public.pem"
port=$(perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1)->sockport')
sed -e "s|@PORT@|$port|g" -e "s|@DB@|$work/db/clinic.db|g" -e "s|@KEY@|$work/keys/public.pem|g" \
    "$top/conf/pkgtest-site.conf.in" > "$site_conf"
a2ensite -q "$site" >/dev/null
ok "configtest passes with the site" configtest
started=1
ok "apache2ctl start" apache2ctl start
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
# CLINIC_PKGTEST_BREAK=1: fail here, with Apache up and the package installed, to try the clean-up.
[ -z "${CLINIC_PKGTEST_BREAK:-}" ] || { echo "package-test: broken on purpose" >&2; exit 1; }

tok_visits=$(clinic-mkjwt sign --alg RS256 --key "$work/keys/private.pem" --claims '{"sub":"registration-desk"}')
tok_link=$(clinic-mkjwt sign --alg RS256 --key "$work/keys/private.pem" --claims '{"userId":"doctor_uid_123"}')
post() {   # post PATH TOKEN BODYFILE: status and body in $work/res
    curl -s -o "$work/res.body" -w '%{http_code}' -H "Authorization: Bearer $2" \
        -H 'Content-Type: application/json' --data-binary "@$3" "http://127.0.0.1:$port$1" > "$work/res.code" || true
}
seeds=$top/t/seeds
post /visits "$tok_visits" "$seeds/visits.json"
ok "seed 000: POST /visits answers 200" grep -qx 200 "$work/res.code"
ok "seed 000: the created visit" grep -q '^\[{"id":[0-9]*,"patient":{"model":"clinicmodels.patient","pk":1750,.*"status":"started"}\]$' "$work/res.body"
post "/patients/add_and_link?uid=doctor_uid_123" "$tok_link" "$seeds/add_and_link.json"
ok "seed 004: POST /patients/add_and_link answers 200" grep -qx 200 "$work/res.code"
ok "seed 004: the linked patient" grep -q '^{"success":true,"data":{"_id":"[0-9a-f]\{24\}","doctor_id":"doctor_uid_123","firstName":"Jane"' "$work/res.body"
ok "seed 004: the appointment is linked in the database" \
    test "$(sqlite3 "$work/db/clinic.db" "SELECT count(*) FROM appointments WHERE id = '65f8a1b2c3d4e5f6789012ef' AND patient_id IS NOT NULL")" = 1

ok "apache2ctl stop" apache2ctl stop
for _ in $(seq 50); do [ -f /var/run/apache2/apache2.pid ] || break; sleep 0.1; done
started=
a2dissite -q "$site" >/dev/null
rm -f "$site_conf" "/var/lib/apache2/site/disabled_by_admin/$site"   # a2dissite's marker: ours, not the package's
"$top/scripts/quickstart-test.sh" && passed=$((passed + 1)) || failed=$((failed + 1))   # docs/quickstart.md, as written

# --- remove, purge: the machine as before ---
ok "apt-get remove" env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq -o DPkg::Lock::Timeout=300 "$pkg"
ok "after remove: the module is disabled" absent /etc/apache2/mods-enabled/clinic.load /usr/lib/apache2/modules/mod_clinic.so
ok "after remove: configtest passes" configtest
ok "apt-get purge" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq -o DPkg::Lock::Timeout=300 "$pkg"
ok "after purge: the package is gone" not_installed
ok "after purge: no module file, no conffiles, no tool, no schemas" \
    absent /usr/lib/apache2/modules/mod_clinic.so /etc/apache2/mods-available/clinic.load \
        /etc/apache2/mods-available/clinic.conf /usr/bin/clinic-mkjwt "/usr/share/$pkg" "/usr/share/doc/$pkg"
ok "after purge: configtest passes" configtest
snapshot > "$work/after.txt"
# The one expected difference: mod_dbd, enabled as clinic's dependency, stays enabled.
dbd_diff() {
    diff "$work/before.txt" "$work/after.txt" | grep '^[<>]' \
        | grep -v -e '^> /etc/apache2/mods-enabled/dbd.load l ../mods-available/dbd.load$' \
                  -e '^> /var/lib/apache2/module/enabled_by_maint/dbd f $' || true
}
ok "after purge: /etc/apache2 and the module directory as before (mod_dbd aside)" test -z "$(dbd_diff)"
[ -z "$(dbd_diff)" ] || dbd_diff | sed 's/^/#   /'

summary=1
echo "package-test: $passed passed, $failed failed"
[ "$failed" = 0 ]
