# A database that crawls behind a small pool (docs/API.md §8): each visit's
# INSERT takes 1.5 s (a trigger with pg_sleep), the server has 8 workers,
# mod_dbd's pool 2 connections per process, and 24 clients post at once.
# Requests beyond the pool wait at most until ClinicDBTimeout less the time
# kept for connecting, no more than ClinicDBMaxWaiting of them; the others
# answer 503 at once. No answer takes longer than the deadline + 1 s, and
# the static file is served within a second all along.
use strict;
use warnings FATAL => 'all';

use Test::More;
use File::Temp ();
use HTTP::Tiny ();
use Time::HiRes qw(time sleep);
use lib 't/lib';
use Clinic::Test;
use Clinic::Stall qw(stall_httpd prober metric visit_load);
use Clinic::Procs qw(on_exit);

plan skip_all => 'PostgreSQL only' unless db_kind() eq 'pgsql';
own_httpd_env();

my $timeout = 3;
my $dbh = dbh();
$dbh->do(q{CREATE OR REPLACE FUNCTION clinic_test_crawl() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN IF NEW.status LIKE 'slow-%' THEN PERFORM pg_sleep(1.5); END IF; RETURN NEW; END $$});
$dbh->do('CREATE TRIGGER clinic_test_crawl BEFORE INSERT ON visits FOR EACH ROW EXECUTE FUNCTION clinic_test_crawl()');
on_exit(sub { dbh()->do('DROP TRIGGER IF EXISTS clinic_test_crawl ON visits') });

my $h = stall_httpd(driver => 'pgsql', params => $ENV{CLINIC_DBD_PARAMS}, threads => 8,
                    dbd_max => 2, waiting => 2, timeout => $timeout);
my $dir = File::Temp::tempdir('clinic-slow-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $tok = token(claims => { sub => 'slow', userId => 'doc-slow' }, exp_in => 3600);
my ($load, $run) = visit_load($h, $dir, $tok, 'slow', 24, give_up => 0, timeout => 30);
my $probe = prober("$dir/probe.log", 0.2, map { $h->url($_) } '/static.txt', '/clinic-metrics');
$load->start;
sleep 8;
$load->stop;
my @probes = $probe->();
my @tries = map { @{ $_->{tries} } } $load->results;

cmp_ok(scalar @tries, '>', 50, scalar(@tries) . ' answers');
my ($slowest) = sort { $b <=> $a } map { $_->[1] } @tries;
cmp_ok($slowest, '<=', $timeout + 1, sprintf('every answer within %d s (slowest %.2f s)', $timeout + 1, $slowest));
my @ok = grep { $_->[2] == 200 } @tries;
my @busy = grep { $_->[2] == 503 } @tries;
cmp_ok(scalar @ok, '>', 3, scalar(@ok) . ' visits recorded at the database\'s pace');
is(scalar(@ok) + scalar(@busy), scalar @tries, 'every other answer is 503');
cmp_ok(scalar(grep { $_->[1] < 0.5 } @busy), '>', scalar(@busy) / 2,
       scalar(grep { $_->[1] < 0.5 } @busy) . ' of ' . scalar(@busy) . ' 503s at once (under 0.5 s)');
is(scalar(grep { ($_->[3] // '') ne '5' } @busy), 0, 'every 503 with Retry-After: 5');
my @static = grep { $_->[0] eq $h->url('/static.txt') } @probes;
cmp_ok(scalar @static, '>', 20, scalar(@static) . ' fetches of the static file');
is(scalar(grep { $_->[1] != 200 || $_->[2] > 1 } @static), 0,
   sprintf('the static file: always 200 within 1 s (slowest %.3f s)',
           (sort { $b <=> $a } map { $_->[2] } @static)[0]));

my $m = HTTP::Tiny->new->get($h->url('/clinic-metrics'))->{content};
cmp_ok(metric($m, 'clinic_db_pool_refused_total'), '>', 0, 'clinic_db_pool_refused_total counts them');
cmp_ok(metric($m, 'clinic_db_pool_wait_seconds_count'), '>', 0, 'the pool wait histogram counts the waits');
cmp_ok(metric($m, 'clinic_db_pool_wait_seconds_bucket{le="0.25"}'), '<',
       metric($m, 'clinic_db_pool_wait_seconds_count'), 'some waited longer than 0.25 s');
is(metric($m, 'clinic_db_pool_max'), 2, 'clinic_db_pool_max: 2');
my $log = do { open(my $fh, '<', $h->dir . '/error_log') or die; local $/; <$fh> };
like($log, qr/every pooled connection of this process is in use \(2 of 2\) and 2 requests wait already/,
     'the log says why requests are refused');
my $rows = $dbh->selectrow_array("SELECT count(*) FROM visits WHERE status LIKE '$run-%'");
cmp_ok($rows, '>=', scalar @ok, "$rows visits written for " . scalar(@ok) . ' answers 200');

done_testing();
