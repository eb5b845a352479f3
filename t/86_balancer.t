# A real balancer on /ready (FARM.md "Health checks"): a front httpd with
# mod_proxy_balancer and mod_proxy_hcheck (hcmethod GET, hcuri /ready,
# hcinterval 1, hcfails 2, hcpasses 2) over two nodes, each reaching
# PostgreSQL through its own PgBouncer. Under load through the front (16
# clients posting visits, no retries counted as success): node a's PgBouncer
# stopped, then frozen (SIGSTOP). The front takes node a out within
# hcinterval x hcfails plus the probe's deadline, answers nothing but 200
# after that window, and sends node a work again by itself once its
# PgBouncer is back. Then a graceful stop of node b: no error through the
# front. The take-out and come-back times are printed (FARM.md).
use strict;
use warnings FATAL => 'all';

use Test::More;
use File::Temp ();
use HTTP::Tiny ();
use POSIX ();
use Time::HiRes qw(time sleep);
use lib 't/lib';
use Clinic::Test;
use Clinic::Httpd;
use Clinic::PgBouncer;
use Clinic::PgCluster ();
use Clinic::Stall qw(stall_httpd);

plan skip_all => 'PostgreSQL only' unless db_kind() eq 'pgsql';
own_httpd_env();
my $m = $ENV{CLINIC_MODDIR};
plan skip_all => 'no mod_proxy_hcheck' unless -f "$m/mod_proxy_hcheck.so";

my $dir = File::Temp::tempdir('clinic-balancer-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{CLINIC_TEST_KEEP});
my $pg = bless { dir => $ENV{CLINIC_PGDATA}, port => 5432 }, 'Clinic::PgCluster';
my (%pgb, %node);
for my $n (qw(a b)) {
    $pgb{$n} = Clinic::PgBouncer->new(dir => "$dir/pgb-$n", cluster => $pg)->start;
    $node{$n} = stall_httpd(driver => 'pgsql', threads => 8, dbd_max => 4, waiting => 2,
                            timeout => 3, extra => "GracefulShutdownTimeout 15\n",
                            params => 'host=127.0.0.1 port=' . $pgb{$n}->port
                                    . ' dbname=clinic connect_timeout=2');
}
my $front = Clinic::Httpd->new;
my $fd = $front->dir;
my $member = sub {
    my ($n) = @_;
    return qq(    BalancerMember "http://127.0.0.1:) . $node{$n}->port . qq(" route=$n )
         . "connectiontimeout=1 retry=1 timeout=10 hcmethod=GET hcuri=/ready hcinterval=1 "
         . "hcfails=2 hcpasses=2\n";
};
$front->write_conf(<<"CONF" . join('', map { $member->($_) } qw(a b)) . <<"CONF2");
LoadModule proxy_module "$m/mod_proxy.so"
LoadModule proxy_http_module "$m/mod_proxy_http.so"
LoadModule proxy_balancer_module "$m/mod_proxy_balancer.so"
LoadModule proxy_hcheck_module "$m/mod_proxy_hcheck.so"
LoadModule slotmem_shm_module "$m/mod_slotmem_shm.so"
LoadModule lbmethod_byrequests_module "$m/mod_lbmethod_byrequests.so"
StartServers 1
ServerLimit 1
ThreadsPerChild 32
MaxRequestWorkers 32
LogFormat "%{%s}t.%{usec_frac}t %D %>s %r" front
CustomLog "$fd/access_log" front
<Proxy "balancer://clinic">
CONF
    ProxySet lbmethod=byrequests maxattempts=1 forcerecovery=On
</Proxy>
ProxyPass "/visits" "balancer://clinic/visits"
CONF2
$front->start('/visits');

my $tok = token(claims => { sub => 'balancer', userId => 'doc-balancer' }, exp_in => 3600);
my $ua = HTTP::Tiny->new(timeout => 20, keep_alive => 0);
my $run = "$$-" . int(time);
my @log;   # [start, status, seconds]
my $stop_at;

# Load through the front from forked clients, each logging "start status seconds".
sub load {
    my ($secs) = @_;
    my @kids;
    for my $c (1 .. 8) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            open(my $fh, '>', "$dir/load-$c") or POSIX::_exit(1);
            $fh->autoflush(1);
            my $end = time + $secs;
            for (my $i = 0; time < $end; $i++) {
                my $t0 = time;
                my $res = $ua->request('POST', $front->url('/visits'), {
                    headers => { Authorization => "Bearer $tok", 'Content-Type' => 'application/json',
                                 'Idempotency-Key' => "bal-$run-$c-$i-" . int($t0 * 1000) },
                    content => qq({"patient": 1750, "status": "balancer"}) });
                printf $fh "%.3f %d %.3f\n", $t0, $res->{status}, time - $t0;
                sleep 0.05;
            }
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }
    return sub {
        waitpid($_, 0) for @kids;
        return map { open(my $fh, '<', $_) or die; map { [split ' '] } <$fh> } glob("$dir/load-*");
    };
}

# Node a's requests in its access log (the first column is the time).
sub node_times {
    my ($n) = @_;
    open(my $fh, '<', $node{$n}->dir . '/access_log') or return ();
    return map { /^(\S+) \S+ \d+ POST \/visits/ ? $1 : () } <$fh>;
}

sub scenario {
    my ($name, $break, $mend) = @_;
    my $wait = load(24);
    sleep 4;
    my $broke = time;
    $break->();
    sleep 10;
    my $mended = time;
    $mend->();
    my @all = $wait->();
    my @after = grep { $_->[0] > $broke } @all;
    my @bad = grep { $_->[1] != 200 } @after;
    my $last_bad = @bad ? (sort { $b <=> $a } map { $_->[0] + $_->[2] } @bad)[0] - $broke : 0;
    my @a_after = grep { $_ > $broke + 8 && $_ < $mended } node_times('a');
    my ($back) = sort { $a <=> $b } grep { $_ > $mended } node_times('a');
    my $window = 1 * 2 + 3 + 1;   # hcinterval x hcfails, the probe's deadline, a margin
    cmp_ok($last_bad, '<=', $window,
           sprintf('%s: the last error through the front %.1f s after the break (%d errors of %d)',
                   $name, $last_bad, scalar @bad, scalar @after));
    is(scalar @a_after, 0, "$name: node a gets no request once out");
    ok(defined $back, sprintf('%s: node a back in rotation %.1f s after its PgBouncer was',
                              $name, defined $back ? $back - $mended : -1));
    cmp_ok(scalar(grep { $_->[0] > $broke + $window && $_->[1] != 200 } @all), '==', 0,
           "$name: nothing but 200 after the window");
    diag(sprintf('%s: take-out %.1f s, come-back %.1f s', $name, $last_bad,
                 defined $back ? $back - $mended : -1));
}

scenario('PgBouncer stopped', sub { $pgb{a}->stop }, sub { $pgb{a}->start });
scenario('PgBouncer frozen', sub { kill 'STOP', $pgb{a}{pid} }, sub { kill 'CONT', $pgb{a}{pid} });

# --- a graceful stop of node b under load: no error through the front ---
my $wait = load(10);
sleep 3;
kill 'WINCH', $node{b}->pid or die "WINCH: $!";
my @all = $wait->();
my @bad = grep { $_->[1] != 200 } @all;
is(scalar @bad, 0, sprintf('graceful stop of node b: %d requests, no error through the front',
                           scalar @all));

done_testing();
