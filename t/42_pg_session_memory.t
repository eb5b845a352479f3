# A long-lived pooled PostgreSQL session does not grow with each reconnect:
# its statements are prepared into a pool of their own, replaced each time.
# A clinic httpd of its own (one child, one thread, one pooled session) has
# its session ended by the server (pg_terminate_backend) again and again;
# each next request reconnects and prepares the statements again. The
# child's resident memory is compared before and after.
use strict;
use warnings FATAL => 'all';

use Test::More;
use DBI ();
use LWP::UserAgent ();
use lib 't/lib';
use Clinic::Test;
use Clinic::Httpd;

plan skip_all => 'PostgreSQL only' unless db_kind() eq 'pgsql';
my ($httpd, $moddir, $module, $keys) = own_httpd_env();
# ASan's allocator (redzones, a quarantine of freed memory) makes resident memory another measure.
plan skip_all => 'resident memory is not comparable under ASan' if $ENV{CLINIC_ASAN_RUNTIME};

my $app = "clinic-mem-$$";
my $C = Clinic::Httpd->new;
$C->write_conf(<<"CONF");
LogLevel warn
@{[ Clinic::Httpd::one_worker() ]}DBDriver pgsql
DBDParams "$ENV{CLINIC_DBD_PARAMS} application_name=$app"
DBDMin 1
DBDKeep 1
DBDMax 1
<Location "/visits">
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicJWTKeyFile "$keys/rsa-public.pem"
</Location>
CONF
eval { $C->start; 1 } or BAIL_OUT("$@");

my $dbh = DBI->connect($ENV{CLINIC_DB_DSN}, '', '', { RaiseError => 1, AutoCommit => 1, PrintError => 0 });
my $ua = LWP::UserAgent->new(timeout => 15, keep_alive => 1);
my $tok = token(claims => { sub => 'mem' }, exp_in => 3600);
# A read only request (no such patient: 400), so that no answer depends on a write's fate.
sub ask {
    return $ua->post($C->url('/visits'), 'Content-Type' => 'application/json',
                     Authorization => "Bearer $tok", Content => '{"patient": 99, "status": "mem"}')->code;
}
# End the clinic's session from the server side, and wait until it is gone.
sub kill_session {
    return $dbh->selectrow_array('SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity '
                                 . 'WHERE application_name = ?', undef, $app);
}
sub cycles {
    my ($n) = @_;
    my ($killed, $ok) = (0, 0);
    for (1 .. $n) {
        $killed += kill_session();
        $ok++ if ask() == 400;
    }
    return ($killed, $ok);
}

is(ask(), 400, 'the clinic answers (no such patient: 400)');
my ($killed, $ok) = cycles(100);
is($killed, 100, 'warm-up: the session ended 100 times');
is($ok, 100, 'warm-up: every request after it answered, on a new session');
my $before = $C->child_kb('VmRSS');
($killed, $ok) = cycles(600);
my $after = $C->child_kb('VmRSS');
is($ok, 600, '600 more reconnects: every request answered');
ok(defined $before && defined $after, "the child's resident memory is read") or diag(`ps -ef | grep -v grep | grep apache`);
my $growth = ($after // 0) - ($before // 0);
cmp_ok($growth, '<', 2048, "600 reconnects, each preparing the statements again: resident memory grew ${growth} kB (< 2 MB)");
$C->stop;

done_testing();
