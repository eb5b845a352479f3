# What synchronous replication costs: wrk on both routes against one Apache
# node whose primary has a synchronous standby, then the same with the
# standby asynchronous (synchronous_standby_names = ''), in one run.
# Measures and prints; asserts only that the runs answered 200. Not in
# make test: CLINIC_FAILOVER_WRK=SECONDS ./scripts/failover-test.sh
use strict;
use warnings;

use Test::More;
use lib 't/lib';
use Clinic::Procs qw(wait_until);
use Clinic::PgCluster;
use Clinic::Failover qw(work schema_files keys_once node);

my $secs = $ENV{CLINIC_FAILOVER_WRK} or plan skip_all => 'set CLINIC_FAILOVER_WRK=SECONDS to measure';
my $d = work() . '/synccost';
mkdir $d;
my $user = getpwuid($<);
my $cap = 200_000;

# fsync on here (the other tests turn it off): the standby's flush is what a
# synchronous commit waits for.
my $p = Clinic::PgCluster->new(dir => "$d/p", conf => ['max_connections = 200', 'fsync = on'])->init->start;
$p->load_schema(schema_files());
my $s = Clinic::PgCluster->new(dir => "$d/s", conf => ["synchronous_standby_names = ''", 'fsync = on'])
    ->standby_of($p)->start;
my $db = $p->dbh;
$db->do(q(INSERT INTO appointments (id, doctor_id)
          SELECT lpad(to_hex(s), 12, '0') || lpad(to_hex(n), 12, '0'), 'doc-bench'
          FROM (SELECT 16 + 16 * r + t FROM generate_series(0, 3) r, generate_series(0, 1) t) w(s),
               generate_series(1, ?) n), undef, $cap / 10);   # bench/link.lua's ids, runs 0-3
my $h = node('sc', 'host=' . $p->host . " dbname=clinic user=$user connect_timeout=2"
                   . q( options='-c statement_timeout=5000'));
my $k = keys_once();
my $vt = $k->token({ sub => 'bench' });
my $lt = $k->token({ sub => 'doc-bench', userId => 'doc-bench' });

sub wrk {
    my ($script, $url, @args) = @_;
    my $out = `wrk -t2 -c16 -d${secs}s -s bench/$script '$url' -- @args 2>&1`;
    my ($rps) = $out =~ /Requests\/sec:\s+([\d.]+)/;
    my ($non2xx) = $out =~ /Non-2xx or 3xx responses: (\d+)/;
    return ($rps // 0, $non2xx // 0);
}

# Alternated twice, so that a burst of other load on the machine does not
# fall on one mode only.
my %r;
my $run = 0;
for my $mode (([sync => "synchronous_standby_names = '*'"], [async => "synchronous_standby_names = ''"]) x 2) {
    my ($name, $line) = @$mode;
    $p->set($line, 'synchronous_commit = on');
    my $want = $name eq 'sync' ? 'sync' : 'async';
    ok(wait_until(20, sub { (($db->selectrow_array('SELECT sync_state FROM pg_stat_replication'))[0] // '') eq $want }),
       "standby is $want");
    $r{$name}{visits} = [wrk('visits.lua', $h->url('/visits'), $vt, 1)];
    $r{$name}{link} = [wrk('link.lua', $h->url('/patients/add_and_link?uid=doc-bench'), $lt, $run++, $cap / 10)];
    diag(sprintf('%-5s standby: /visits %.0f req/s (%d non-2xx), add_and_link %.0f req/s (%d non-2xx)',
                 $name, @{ $r{$name}{visits} }, @{ $r{$name}{link} }));
    is($r{$name}{$_}[1], 0, "$name: $_ answered 200 only") for qw(visits link);
}
done_testing();
