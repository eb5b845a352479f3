# The measured cases of `make bench` (bench/bench.pl runs them in this
# order, bench/report.pl renders them). One hash per case:
#
#   name    unique; shown in the report
#   kind    wrk (a module route), static (the httpd floor), pgbench
#   route   visits or link (wrk, pgbench); the report compares a route's wrk
#           cases with its ceiling (role => 'ceiling') and the static floor
#   token   wrk: rs256 or hs256 (one token, cached by the module after the
#           first request; rs256-kid the same with kid bench-1, for key sets)
#           or rs256-new (a new token every request: a pool
#           of BENCH_TOKEN_POOL distinct tokens from bench/tokens.c, in turn)
#           or rs256-dpop (DPoP: one RS256 token bound to a P-256 key and a
#           new ES256 proof every request, BENCH_DPOP_POOL of them; with
#           conf => 'dpop')
#   conns   wrk connections / pgbench clients (default BENCH_CONNECTIONS, 16)
#   conf    wrk: a snippet from bench/conf/NAME.conf appended to the end of
#           Apache's configuration for this case (Apache is restarted with
#           it); it may add server directives or override the routes'
#           <Location> blocks. Placeholders: @WORK@ @PORT@ @MODDIR@ @SOCK@.
#   script  pgbench: the file in bench/; role => 'ceiling' marks the least SQL
#           a correct implementation must run for the route (issue 13)
#   rate_of pgbench: run at the req/s that wrk case reached (pgbench -R)
#   data    '2m': run after every other throughput case, once bench/bigdata.sql
#           has put 2 million visits and 2 million appointments in the tables
#           (the same route and token as a case without it: cost must not grow
#           with the data; BENCH_SKIP=bigdata leaves them out)
#   note    one line for the report
#
# A configuration VARIANT is one more wrk case: the same route and token with
# a conf snippet, e.g.
#   { name => 'visits.rs.jwks-url', kind => 'wrk', route => 'visits', token => 'rs256',
#     conf => 'jwks-url', note => 'key set fetched from a URL' },
# with bench/conf/jwks-url.conf holding the <Location "/visits"> override.
(
    { name => 'visits.rs',      kind => 'wrk', route => 'visits', token => 'rs256' },
    { name => 'visits.hs',      kind => 'wrk', route => 'visits', token => 'hs256' },
    { name => 'link.rs',        kind => 'wrk', route => 'link',   token => 'rs256' },
    { name => 'link.hs',        kind => 'wrk', route => 'link',   token => 'hs256' },
    { name => 'visits.rs-new',  kind => 'wrk', route => 'visits', token => 'rs256-new' },
    { name => 'link.rs-new',    kind => 'wrk', route => 'link',   token => 'rs256-new' },
    { name => 'visits.rs.c64',  kind => 'wrk', route => 'visits', token => 'rs256', conns => 64, conf => 'many-workers' },
    { name => 'visits.rs.c256', kind => 'wrk', route => 'visits', token => 'rs256', conns => 256, conf => 'many-workers' },
    { name => 'link.rs.c64',    kind => 'wrk', route => 'link',   token => 'rs256', conns => 64, conf => 'many-workers' },
    { name => 'link.rs.c256',   kind => 'wrk', route => 'link',   token => 'rs256', conns => 256, conf => 'many-workers' },
    { name => 'visits.rs.dpop', kind => 'wrk', route => 'visits', token => 'rs256-dpop', conf => 'dpop',
      note => 'ClinicDPoP require: a new ES256 proof every request (its signature checked, its jti inserted)' },
    { name => 'link.rs.dpop',   kind => 'wrk', route => 'link',   token => 'rs256-dpop', conf => 'dpop',
      note => 'ClinicDPoP require: a new ES256 proof every request (its signature checked, its jti inserted)' },
    { name => 'visits.rs.pool8', kind => 'wrk', route => 'visits', token => 'rs256', conf => 'pool8',
      note => 'DBDMax 8 for 16 workers per process: requests beyond 8 wait at the gate for a connection' },
    { name => 'link.rs.pool8',   kind => 'wrk', route => 'link',   token => 'rs256', conf => 'pool8',
      note => 'DBDMax 8 for 16 workers per process: requests beyond 8 wait at the gate for a connection' },
    { name => 'static',         kind => 'static',
      note => 'the httpd floor: the size of a /visits answer, no module, no database' },
    { name => 'visits.rs.jwks-file', kind => 'wrk', route => 'visits', token => 'rs256-kid', conf => 'jwks-file',
      note => 'keys from a JWKS file (ClinicJWKSFile) instead of a PEM key file' },
    { name => 'visits.rs.access-log', kind => 'wrk', route => 'visits', token => 'rs256', conf => 'access-log',
      note => 'a second, detailed CustomLog' },
    { name => 'visits.rs.jwks-url', kind => 'wrk', route => 'visits', token => 'rs256-kid', conf => 'jwks-url',
      note => 'keys from a JWKS URL (ClinicJWKSURL, kept document) instead of a PEM key file' },
    { name => 'visits.rs.audit', kind => 'wrk', route => 'visits', token => 'rs256', conf => 'audit',
      note => 'the clinic_audit CustomLog on' },
    { name => 'link.rs.audit', kind => 'wrk', route => 'link', token => 'rs256', conf => 'audit',
      note => 'the clinic_audit CustomLog on' },
    { name => 'visits.rs.override-all', kind => 'wrk', route => 'visits', token => 'rs256', conf => 'override-all',
      note => 'AllowOverride All everywhere: the clinic routes skip .htaccess' },
    { name => 'visits.rs.metrics-off', kind => 'wrk', route => 'visits', token => 'rs256', conf => 'metrics-off',
      note => 'ClinicMetrics Off (the other cases count metrics)' },
    { name => 'link.rs.metrics-off', kind => 'wrk', route => 'link', token => 'rs256', conf => 'metrics-off',
      note => 'ClinicMetrics Off (the other cases count metrics)' },
    { name => 'visits.rs.2m', kind => 'wrk', route => 'visits', token => 'rs256', data => '2m',
      note => '2 million visits and 2 million appointments in the tables' },
    { name => 'link.rs.2m', kind => 'wrk', route => 'link', token => 'rs256', data => '2m',
      note => '2 million visits and 2 million appointments in the tables' },

    { name => 'pg.visits', kind => 'pgbench', route => 'visits', script => 'visits-min.pgbench', role => 'ceiling',
      note => 'one statement: INSERT the visit from the patient row, RETURNING what the answer needs' },
    { name => 'pg.link', kind => 'pgbench', route => 'link', script => 'link.pgbench', role => 'ceiling',
      note => 'BEGIN; INSERT patient; conditional UPDATE; COMMIT' },
    { name => 'pg.link-cte', kind => 'pgbench', route => 'link', script => 'link-cte.pgbench',
      note => 'add-and-link in 3 round trips (a design measured, not what the module runs)' },
    { name => 'pg.link-one', kind => 'pgbench', route => 'link', script => 'link-one.pgbench',
      note => 'add-and-link in 1 statement, a lost race aborted by 1/0 (a design measured, not what the module runs)' },
    { name => 'pg.link-module', kind => 'pgbench', route => 'link', script => 'link-module.pgbench',
      note => "the module's PostgreSQL SQL: clinic_link_one, one autocommit statement" },
    { name => 'pg.visits-module', kind => 'pgbench', route => 'visits', script => 'visits.pgbench',
      note => "SELECT the patient, then INSERT: the module's SQL on SQLite, and on PostgreSQL before one statement" },
    { name => 'pg.visits-rate', kind => 'pgbench', route => 'visits', script => 'visits-min.pgbench',
      rate_of => 'visits.rs', note => "the ceiling's SQL at mod_clinic's RS256 rate" },
    { name => 'pg.link-rate', kind => 'pgbench', route => 'link', script => 'link.pgbench',
      rate_of => 'link.rs', note => "the ceiling's SQL at mod_clinic's RS256 rate" },
    { name => 'pg.visits.2m', kind => 'pgbench', route => 'visits', script => 'visits-min.pgbench', data => '2m',
      note => "the /visits ceiling's SQL with 2 million visits and appointments in the tables" },
    { name => 'pg.link.2m', kind => 'pgbench', route => 'link', script => 'link.pgbench', data => '2m',
      note => "the add-and-link ceiling's SQL with 2 million visits and appointments in the tables" },
);
