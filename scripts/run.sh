#!/bin/sh
# `make run`: the embedded-default demo. A SQLite database (kept between
# runs), a development RS256 key pair, Apache (event MPM) on 127.0.0.1:PORT
# (default 8080) in the foreground, and a ready curl for each route. Ctrl-C
# stops it.
#
# Run state (database, key pair, config, logs) lives in run/ in the clone,
# unless the server's user cannot reach it (run as root, Apache's children
# are www-data; a clone under /root or in a mktemp -d folder is closed to
# them): then in /var/lib/mod_clinic/run-<clone folder name>-<hash of its path>.
# RUN_DIR=... chooses another place.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
port=${PORT:-8080}
moddir=$(apxs -q LIBEXECDIR)
httpd=$(apxs -q SBINDIR)/$(apxs -q TARGET)

case $port in
    ''|*[!0-9]*) echo "run: PORT=$port is not a port number; e.g. make run PORT=8081" >&2; exit 2 ;;
esac
if [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
    echo "run: PORT=$port is not a port number; e.g. make run PORT=8081" >&2; exit 2
fi
if perl "$top/scripts/port.pl" in-use "$port"; then
    echo "run: port $port on 127.0.0.1 is already in use; choose another: make run PORT=$((port == 8081 ? 8082 : 8081))" >&2
    exit 1
fi

if [ "$(id -u)" = 0 ]; then user=www-data; group=www-data; else user=$(id -un); group=$(id -gn); fi
if [ -n "${RUN_DIR:-}" ]; then
    run=$RUN_DIR
elif [ "$(id -u)" != 0 ] || runuser -u "$user" -- test -x "$top"; then
    run="$top/run"
else
    run=/var/lib/mod_clinic/run-$(basename "$top")-$(printf '%s' "$top" | sha256sum | cut -c1-8)
    echo "run: $user cannot reach $top: run state is in $run"
    mkdir -p "$run"
    chmod 755 /var/lib/mod_clinic "$run"
fi
mkdir -p "$run"

if [ ! -f "$run/clinic.db" ]; then
    sqlite3 "$run/clinic.db" < "$top/sql/schema-sqlite.sql" >/dev/null
    sqlite3 "$run/clinic.db" < "$top/sql/demo-data.sql"
    echo "run: created $run/clinic.db from sql/schema-sqlite.sql and sql/demo-data.sql"
fi
# A database made by an older make run: bring it up to date (docs/operations.md: Upgrading the schema).
v=$(sqlite3 "$run/clinic.db" "SELECT max(version) FROM clinic_schema" 2>/dev/null || echo 1)
n=$((${v:-1} + 1))
while [ -f "$top/sql/upgrade/sqlite-$n.sql" ]; do
    sqlite3 -bail "$run/clinic.db" < "$top/sql/upgrade/sqlite-$n.sql"
    echo "run: upgraded $run/clinic.db to schema version $n (sql/upgrade/sqlite-$n.sql)"
    n=$((n + 1))
done
if [ ! -f "$run/jwt-private.pem" ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$run/jwt-private.pem" 2>/dev/null
    openssl pkey -in "$run/jwt-private.pem" -pubout -out "$run/jwt-public.pem"
    chmod 600 "$run/jwt-private.pem"
fi

sed -e "s|@RUNDIR@|$run|g" -e "s|@TOPDIR@|$top|g" -e "s|@MODDIR@|$moddir|g" \
    -e "s|@USER@|$user|g" -e "s|@GROUP@|$group|g" -e "s|@PORT@|$port|g" \
    "$top/conf/run.conf.in" > "$run/httpd.conf"
"$httpd" -t -f "$run/httpd.conf"

visit_token=$("$top/tools/mkjwt" sign --alg RS256 --key "$run/jwt-private.pem" \
    --claims '{"sub":"registration-desk"}' --exp-in 3600)
link_token=$("$top/tools/mkjwt" sign --alg RS256 --key "$run/jwt-private.pem" \
    --claims '{"sub":"doctor_uid_123","userId":"doctor_uid_123"}' --exp-in 3600)
appt=$(sqlite3 "$run/clinic.db" "SELECT id FROM appointments WHERE doctor_id = 'doctor_uid_123' AND patient_id IS NULL ORDER BY id LIMIT 1")
# The server's user writes the database and its WAL next to it.
if [ "$(id -u)" = 0 ]; then chown "$user:$group" "$run" "$run"/clinic.db*; fi

cat <<MSG

mod_clinic is starting on http://127.0.0.1:$port (Ctrl-C stops it; logs in $run).
Tokens below are valid for one hour.

# Record a visit for patient 1750:
curl -s -X POST http://127.0.0.1:$port/visits \\
  -H "Authorization: Bearer $visit_token" \\
  -H "Content-Type: application/json" \\
  -d '{"patient": 1750, "status": "started", "visit_date": "21 November 2026 14:05"}'

# Create a patient and link it to doctor_uid_123's free appointment ${appt:-"(none left: rm -r $run to reset)"}:
curl -s -X POST 'http://127.0.0.1:$port/patients/add_and_link?uid=doctor_uid_123' \\
  -H "Authorization: Bearer $link_token" \\
  -H "Content-Type: application/json" \\
  -d '{"appointment_id": "$appt", "firstName": "Jane", "lastName": "Smith", "dateOfBirth": "1990-03-20"}'

MSG
exec "$httpd" -D FOREGROUND -f "$run/httpd.conf"
