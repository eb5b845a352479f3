# Sourced by scripts/lib.sh (for scripts/test.sh, farm-test.sh and bench.sh): a PostgreSQL cluster
# in a temp dir, unix socket only, owned and run by the unprivileged test
# user (PostgreSQL refuses root). Needs: as_user, $pgbin, $user, $work.
#
#   pg_temp_start DATADIR "extra postgresql.conf lines"
# The settings go into the cluster's postgresql.conf, so that a fault test
# can stop, start and restart it with plain pg_ctl. Loads the schema and the
# demo data into database "clinic".
pg_temp_start() {
    local data=$1 extra=$2
    as_user "$pgbin/initdb" -D "$data" -E UTF8 --locale=C.UTF-8 -A trust -U "$user" >/dev/null
    printf "unix_socket_directories = '%s'\nlisten_addresses = ''\nfsync = off\n%s\n" "$data" "$extra" \
        | as_user tee -a "$data/postgresql.conf" >/dev/null
    as_user "$pgbin/pg_ctl" -D "$data" -l "$work/pg.log" -w start >/dev/null
    as_user "$pgbin/createdb" -h "$data" clinic
    as_user psql -q -h "$data" -d clinic -v ON_ERROR_STOP=1 -f "$work/sql/schema-pgsql.sql" \
        -f "$work/sql/demo-data.sql" -f "$work/sql/demo-sequences-pgsql.sql" >/dev/null
}
