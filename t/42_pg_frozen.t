# PostgreSQL frozen under load (docs/API.md §8): the postmaster and every
# backend stopped with SIGSTOP for 8 s while 16 clients (twice the server's
# 8 workers) post visits with an Idempotency-Key, retrying each 503 with the
# same key. Every answer comes within ClinicDBTimeout (3 s) + 1 s, the
# static file, mod_status and clinic-metrics answer within a second all
# along, service comes back by itself after SIGCONT, and every key ends with
# exactly one visit.
use strict;
use warnings FATAL => 'all';

use Test::More;
use File::Temp ();
use HTTP::Tiny ();
use JSON::PP ();
use Time::HiRes qw(time sleep);
use lib 't/lib';
use Clinic::Test;
use Clinic::Stall qw(stall_httpd pg_freeze pg_thaw prober metric visit_load);

plan skip_all => 'PostgreSQL only' unless db_kind() eq 'pgsql';
own_httpd_env();

my $timeout = 3;
my $params = $ENV{CLINIC_DBD_PARAMS};   # connect_timeout=2: 2 s of the 3 kept for connecting
my $h = stall_httpd(driver => 'pgsql', params => $params, threads => 8, dbd_max => 4,
                    waiting => 2, timeout => $timeout);
my $dir = File::Temp::tempdir('clinic-frozen-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{CLINIC_TEST_KEEP});
my $tok = token(claims => { sub => 'frozen', userId => 'doc-frozen' }, exp_in => 3600);
my ($load, $run) = visit_load($h, $dir, $tok, 'frozen', 16, give_up => 60, retry_pause => 0.2);
my $probe = prober("$dir/probe.log", 0.2, map { $h->url($_) }
                   '/static.txt', '/server-status?auto', '/clinic-metrics');

$load->start;
sleep 2;
my $frozen_at = time;
ok(pg_freeze() >= 2, 'PostgreSQL frozen (postmaster and backends stopped)');
sleep 1;
# add-and-link during the freeze answers in its own shape, within the deadline
my $t0 = time;
my $link = HTTP::Tiny->new(timeout => 30)->request('POST',
    $h->url('/patients/add_and_link?uid=doc-frozen'), {
        headers => { Authorization => "Bearer $tok", 'Content-Type' => 'application/json' },
        content => '{"appointment_id": "' . new_hex24() . '", "firstName": "F", "lastName": "Z"}' });
my $link_took = time - $t0;
is($link->{status}, 503, 'add-and-link while frozen: 503');
is($link->{content}, '{"success":false,"error":"The database is unavailable; retry later.",'
                     . '"code":"DATABASE_UNAVAILABLE"}', 'add-and-link 503 in the envelope');
cmp_ok($link_took, '<=', $timeout + 1, sprintf('add-and-link answered in %.2f s', $link_took));
my $metrics_frozen = HTTP::Tiny->new(timeout => 5)->get($h->url('/clinic-metrics'));
sleep 7;
my $thawed_at = time;
pg_thaw();
sleep 6;
$load->stop;
my @probes = $probe->();
my @done = $load->results;

# --- answers within the deadline, and 503s while frozen ---
my @tries = map { @{ $_->{tries} } } @done;
cmp_ok(scalar @done, '>', 50, scalar(@done) . ' keyed requests finished');
my @slow = grep { $_->[1] > $timeout + 1 } @tries;
is(scalar @slow, 0, sprintf('every answer within %d s (slowest %.2f s of %d)', $timeout + 1,
                            (sort { $b <=> $a } map { $_->[1] } @tries)[0], scalar @tries));
diag(sprintf('slow: started %+.2f s after the freeze, %.2f s, %d', $_->[0] - $frozen_at, $_->[1], $_->[2]))
    for @slow[0 .. ($#slow > 9 ? 9 : $#slow)];
my @while = grep { $_->[0] > $frozen_at + 0.5 && $_->[0] + $_->[1] < $thawed_at } @tries;
cmp_ok(scalar(grep { $_->[2] == 503 } @while), '>', 10,
       scalar(grep { $_->[2] == 503 } @while) . ' answers 503 while frozen');
is(scalar(grep { $_->[2] != 503 } @while), 0, 'nothing but 503 while frozen');
is(scalar(grep { $_->[2] == 503 && ($_->[3] // '') ne '5' } @tries), 0, 'every 503 has Retry-After: 5');

# --- service back by itself ---
my @late = grep { $_->[0] > $thawed_at + 3 } @tries;
cmp_ok(scalar @late, '>', 20, scalar(@late) . ' answers from 3 s after the thaw on');
is(scalar(grep { $_->[2] != 200 } @late), 0, 'all 200 from 3 s after the thaw: no restart needed')
    or diag(join ' ', map { sprintf('%+.2f:%d', $_->[0] - $thawed_at, $_->[2]) } grep { $_->[2] != 200 } @late);

# --- exactly one visit per key ---
is(scalar(grep { $_->{status} != 200 } @done), 0, 'every keyed request ended 200 after its retries');
my $rows = dbh()->selectall_hashref(
    "SELECT status, count(*) AS n FROM visits WHERE status LIKE '$run-%' GROUP BY status",
    'status');
is(scalar(keys %$rows), scalar(@done), 'one visit status per finished key');
is(scalar(grep { $_->{n} != 1 } values %$rows), 0, 'exactly one visit per Idempotency-Key');

# --- the rest of Apache stayed up ---
for my $path ('/static.txt', '/server-status?auto', '/clinic-metrics') {
    my @p = grep { $_->[0] eq $h->url($path) } @probes;
    cmp_ok(scalar @p, '>', 20, scalar(@p) . " fetches of $path");
    is(scalar(grep { $_->[1] != 200 } @p), 0, "$path: always 200");
    is(scalar(grep { $_->[2] > 1 } @p), 0,
       sprintf("$path: always within 1 s (slowest %.3f s)", (sort { $b <=> $a } map { $_->[2] } @p)[0]));
}

# --- visible: metrics, mod_status, the log ---
my $m = HTTP::Tiny->new->get($h->url('/clinic-metrics'))->{content};
cmp_ok(metric($m, 'clinic_db_deadline_expired_total{phase="statement"}'), '>', 0,
       'clinic_db_deadline_expired_total{phase="statement"} counts the cut statements');
ok(defined metric($m, 'clinic_db_pool_wait_seconds_count'), 'the pool wait histogram is there');
is(metric($m, 'clinic_db_pool_max'), 4, 'clinic_db_pool_max: DBDMax of the one child');
cmp_ok(metric($metrics_frozen->{content}, 'clinic_db_pool_connections_in_use'), '>', 0,
       'while frozen, connections in use are shown');
my $status = HTTP::Tiny->new->get($h->url('/server-status?auto'))->{content};
like($status, qr/^ClinicDBDeadlineExpired: [1-9]/m, 'mod_status: deadline expiries');
like($status, qr/^ClinicDBPool\d+: \d+ in use, \d+ waiting, 4 max$/m, 'mod_status: the pool per process');
my $log = do { open(my $fh, '<', $h->dir . '/error_log') or die; local $/; <$fh> };
like($log, qr/ClinicDBTimeout \(3 s\) ran out after 3\.\d+ s running \S+ .*the connection was closed/,
     'the log names the phase (a statement) and the time');

done_testing();
