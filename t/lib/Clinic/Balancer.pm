package Clinic::Balancer;
# What the balancer tests (t/86_balancer.t: mod_proxy_hcheck, t/87_haproxy.t:
# HAProxy) share: two clinic nodes, each reaching PostgreSQL through its own
# PgBouncer; load through the balancer from forked clients posting visits;
# a node's requests read from its access log; a break-and-mend scenario
# measured and judged; a graceful stop under load.
#
# The balancer's health check probes check_uri(): /ready, or what
# CLINIC_BALANCER_CHECK says (=/live shows that the tests fail without the
# readiness check).
use strict;
use warnings;

use Exporter 'import';
use HTTP::Tiny ();
use POSIX ();
use Test::More ();
use Time::HiRes qw(time sleep);
use Clinic::PgBouncer ();
use Clinic::PgCluster ();
use Clinic::Stall qw(stall_httpd);

our @EXPORT_OK = qw(check_uri two_nodes load node_times scenario graceful_stop outages);

sub check_uri { $ENV{CLINIC_BALANCER_CHECK} || '/ready' }

# Nodes a and b (Clinic::Stall httpds), each through its own PgBouncer under
# $dir; $o{a}, $o{b}: more for that node: extra (configuration lines).
# Returns (\%pgbouncer, \%node).
sub two_nodes {
    my ($dir, %o) = @_;
    my $pg = bless { dir => $ENV{CLINIC_PGDATA}, port => 5432 }, 'Clinic::PgCluster';
    my (%pgb, %node);
    for my $n (qw(a b)) {
        my %more = %{ $o{$n} // {} };
        $pgb{$n} = Clinic::PgBouncer->new(dir => "$dir/pgb-$n", cluster => $pg)->start;
        $node{$n} = stall_httpd(driver => 'pgsql', threads => 8, dbd_max => 4, waiting => 2,
                                timeout => 3,
                                extra => "GracefulShutdownTimeout 15\n" . ($more{extra} // ''),
                                params => 'host=127.0.0.1 port=' . $pgb{$n}->port
                                        . ' dbname=clinic connect_timeout=2');
    }
    return (\%pgb, \%node);
}

# 8 forked clients posting visits to $url (the balancer's, up to the path)
# for $secs seconds, each logging "start status seconds" under $dir. Returns
# a sub that waits for them and returns every [start, status, seconds].
sub load {
    my ($dir, $url, $tok, $secs) = @_;
    my $ua = HTTP::Tiny->new(timeout => 20, keep_alive => 0);
    my $run = "$$-" . int(time);
    my @kids;
    for my $c (1 .. 8) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            open(my $fh, '>', "$dir/load-$c") or POSIX::_exit(1);
            $fh->autoflush(1);
            my $end = time + $secs;
            for (my $i = 0; time < $end; $i++) {
                my $t0 = time;
                my $res = $ua->request('POST', $url, {
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
        return map { open(my $fh, '<', "$dir/load-$_") or die; map { [split ' '] } <$fh> } 1 .. 8;
    };
}

# The times of a node's POSTs (visits, any Location) in its access log.
sub node_times {
    my ($node) = @_;
    open(my $fh, '<', $node->dir . '/access_log') or return ();
    return map { m{^(\S+) \S+ \d+ POST \S*/visits} ? $1 : () } <$fh>;
}

# Under load through the balancer: $o{break}->() breaks node a's way to the
# database, $o{mend}->() repairs it 10 s later. The last error must come
# within $o{window} seconds of the break, node a must get no request once out
# and must be sent work again after the repair. Returns (take-out, come-back).
sub scenario {
    my (%o) = @_;
    my ($name, $na) = ($o{name}, $o{node});
    my $wait = load($o{dir}, $o{url}, $o{token}, 24);
    sleep 4;
    my $broke = time;
    $o{break}->();
    sleep 10;
    my $mended = time;
    $o{mend}->();
    my @all = $wait->();
    my @after = grep { $_->[0] > $broke } @all;
    my @bad = grep { $_->[1] != 200 } @after;
    my $last_bad = @bad ? (sort { $b <=> $a } map { $_->[0] + $_->[2] } @bad)[0] - $broke : 0;
    my @a_after = grep { $_ > $broke + 8 && $_ < $mended } node_times($na);
    my ($back) = sort { $a <=> $b } grep { $_ > $mended } node_times($na);
    my $come_back = defined $back ? $back - $mended : -1;
    Test::More::cmp_ok($last_bad, '<=', $o{window},
        sprintf('%s: the last error through the balancer %.1f s after the break (%d errors of %d)',
                $name, $last_bad, scalar @bad, scalar @after));
    Test::More::is(scalar @a_after, 0, "$name: node a gets no request once out");
    Test::More::ok(defined $back,
        sprintf('%s: node a back in rotation %.1f s after the repair', $name, $come_back));
    Test::More::cmp_ok(scalar(grep { $_->[0] > $broke + $o{window} && $_->[1] != 200 } @all),
        '==', 0, "$name: nothing but 200 after the window");
    Test::More::diag(sprintf('%s: take-out %.1f s, come-back %.1f s', $name, $last_bad, $come_back));
    return ($last_bad, $come_back);
}

# A graceful stop (SIGWINCH) of $node under load through the balancer: no error.
sub graceful_stop {
    my (%o) = @_;
    my $wait = load($o{dir}, $o{url}, $o{token}, 10);
    sleep 3;
    kill 'WINCH', $o{node}->pid or die "WINCH: $!";
    my @all = $wait->();
    my @bad = grep { $_->[1] != 200 } @all;
    Test::More::is(scalar @bad, 0, sprintf('%s: %d requests, no error through the balancer',
                                           $o{name}, scalar @all));
}

# The outages both balancer tests put the nodes of two_nodes() through, under
# load through the balancer (%o: dir, url, token, window, pgb, nodes): node
# a's PgBouncer stopped, then frozen; then a graceful stop of node b.
sub outages {
    my (%o) = @_;
    my ($pgb, $nodes) = (delete $o{pgb}, delete $o{nodes});
    my %common = (%o, node => $nodes->{a});
    scenario(%common, name => 'PgBouncer stopped', break => sub { $pgb->{a}->stop },
             mend => sub { $pgb->{a}->start });
    scenario(%common, name => 'PgBouncer frozen', break => sub { kill 'STOP', $pgb->{a}{pid} },
             mend => sub { kill 'CONT', $pgb->{a}{pid} });
    graceful_stop(%common, name => 'graceful stop of node b', node => $nodes->{b});
}

1;
