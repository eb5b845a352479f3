# HAProxy as the balancer on /ready (FARM.md "Health checks", "HAProxy"):
# Debian's haproxy, started here in the foreground on a free loopback port
# with a configuration written here (option httpchk GET /ready, http-check
# expect status 200, inter 1s fall 2 rise 2), over two nodes each reaching
# PostgreSQL through its own PgBouncer (t/lib/Clinic/Balancer.pm, as
# t/86_balancer.t). Under load through HAProxy: node a's PgBouncer stopped,
# then frozen (SIGSTOP): HAProxy takes node a out within inter x fall plus
# the probe's deadline, answers nothing but 200 after that window, and sends
# node a work again by itself once its PgBouncer is back. Then a graceful
# stop of node b: no error through HAProxy. The take-out and come-back
# times are printed (FARM.md).
use strict;
use warnings FATAL => 'all';

use Test::More;
use File::Temp ();
use IO::Socket::INET ();
use POSIX ();
use lib 't/lib';
use Clinic::Test;
use Clinic::Procs qw(on_exit free_port stop_pid wait_until);
use Clinic::Balancer qw(check_uri two_nodes outages);

plan skip_all => 'PostgreSQL only' unless db_kind() eq 'pgsql';
own_httpd_env();
my ($haproxy) = grep { -x } map { "$_/haproxy" } split(/:/, $ENV{PATH} // ''), '/usr/sbin';
plan skip_all => 'no haproxy (scripts/deps.sh installs it)' unless $haproxy;

my $dir = File::Temp::tempdir('clinic-haproxy-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{CLINIC_TEST_KEEP});
my ($pgb, $node) = two_nodes($dir);

# ---- HAProxy, run by this test's user, stopped by its PID ----
my $port = free_port();
my $check = check_uri();
open(my $fh, '>', "$dir/haproxy.cfg") or die "$dir/haproxy.cfg: $!";
print $fh <<"CFG";
global
    maxconn 256
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    retries 2
    option redispatch 1
frontend clinic
    bind 127.0.0.1:$port
    default_backend clinic
backend clinic
    balance roundrobin
    option httpchk GET $check
    http-check expect status 200
    timeout check 5s
    default-server inter 1s fall 2 rise 2
    server a 127.0.0.1:@{[ $node->{a}->port ]} check
    server b 127.0.0.1:@{[ $node->{b}->port ]} check
CFG
close $fh or die $!;
my $pid = fork // die "fork: $!";
if (!$pid) {
    open(STDIN, '<', '/dev/null');
    open(STDOUT, '>', "$dir/haproxy.log");
    open(STDERR, '>&', \*STDOUT);
    exec($haproxy, '-db', '-f', "$dir/haproxy.cfg") or POSIX::_exit(127);
}
on_exit(sub { stop_pid($pid, 'TERM', 5) });
ok(wait_until(10, sub { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) }),
   "HAProxy listens on $port") or BAIL_OUT(`cat $dir/haproxy.log`);
sleep 3;   # the first checks

my $tok = token(claims => { sub => 'balancer', userId => 'doc-balancer' }, exp_in => 3600);
outages(dir => $dir, url => "http://127.0.0.1:$port/visits", token => $tok, pgb => $pgb, nodes => $node,
        window => 1 * 2 + 3 + 1);   # inter x fall, the probe's deadline, a margin

done_testing();
