#!/bin/sh
# `make run`: the embedded-default demo. A SQLite database (kept between
# runs), a development RS256 key pair, Apache (event MPM) on 127.0.0.1:8080
# in the foreground, and a ready curl for each route. Ctrl-C stops it.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
run="$top/run"
moddir=$(apxs -q LIBEXECDIR)
httpd=$(apxs -q SBINDIR)/$(apxs -q TARGET)
mkdir -p "$run"

if [ "$(id -u)" = 0 ]; then user=www-data; group=www-data; else user=$(id -un); group=$(id -gn); fi

if [ ! -f "$run/clinic.db" ]; then
    sqlite3 "$run/clinic.db" < "$top/sql/schema-sqlite.sql" >/dev/null
    sqlite3 "$run/clinic.db" < "$top/sql/demo-data.sql"
    echo "run: created $run/clinic.db from sql/schema-sqlite.sql and sql/demo-data.sql"
fi
if [ ! -f "$run/jwt-private.pem" ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$run/jwt-private.pem" 2>/dev/null
    openssl pkey -in "$run/jwt-private.pem" -pubout -out "$run/jwt-public.pem"
    chmod 600 "$run/jwt-private.pem"
fi
# The server's user writes the database and its WAL next to it.
[ "$(id -u)" = 0 ] && chown "$user:$group" "$run" "$run"/clinic.db*

sed -e "s|@RUNDIR@|$run|g" -e "s|@TOPDIR@|$top|g" -e "s|@MODDIR@|$moddir|g" \
    -e "s|@USER@|$user|g" -e "s|@GROUP@|$group|g" "$top/conf/run.conf.in" > "$run/httpd.conf"
"$httpd" -t -f "$run/httpd.conf"

visit_token=$("$top/tools/mkjwt" sign --alg RS256 --key "$run/jwt-private.pem" \
    --claims '{"sub":"registration-desk"}' --exp-in 3600)
link_token=$("$top/tools/mkjwt" sign --alg RS256 --key "$run/jwt-private.pem" \
    --claims '{"sub":"doctor_uid_123","userId":"doctor_uid_123"}' --exp-in 3600)
appt=$(sqlite3 "$run/clinic.db" "SELECT id FROM appointments WHERE doctor_id = 'doctor_uid_123' AND patient_id IS NULL ORDER BY id LIMIT 1")

cat <<MSG

mod_clinic is starting on http://127.0.0.1:8080 (Ctrl-C stops it; logs in $run).
Tokens below are valid for one hour.

# Record a visit for patient 1750:
curl -s -X POST http://127.0.0.1:8080/visits \\
  -H "Authorization: Bearer $visit_token" \\
  -H "Content-Type: application/json" \\
  -d '{"patient": 1750, "status": "started", "visit_date": "21 November 2026 14:05"}'

# Create a patient and link it to doctor_uid_123's free appointment ${appt:-"(none left: rm -r run/ to reset)"}:
curl -s -X POST 'http://127.0.0.1:8080/patients/add_and_link?uid=doctor_uid_123' \\
  -H "Authorization: Bearer $link_token" \\
  -H "Content-Type: application/json" \\
  -d '{"appointment_id": "$appt", "firstName": "Jane", "lastName": "Smith", "dateOfBirth": "1990-03-20"}'

MSG
exec "$httpd" -D FOREGROUND -f "$run/httpd.conf"
