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
#
# Before that, node a is started while its keys provider (an HTTPS httpd with
# a test CA, t/lib/Clinic/Provider.pm) is down and no fetched document is
# kept; once the front has checked it, under load on a route that needs those keys, the front sends node a
# no request (node b, with a key file, serves them all), then the provider
# comes up, node a fetches the keys (ClinicJWKSRefresh 1) and is sent work
# again by itself; the come-back time is printed.
#
# CLINIC_BALANCER_CHECK=/live probes /live instead of /ready: the tests fail.
use strict;
use warnings FATAL => 'all';

use Test::More;
use File::Temp ();
use lib 't/lib';
use Clinic::Test;
use Clinic::Httpd;
use Clinic::Provider qw(run_quiet);
use Clinic::Balancer qw(check_uri two_nodes outages load node_times);
use Time::HiRes qw(time sleep);

plan skip_all => 'PostgreSQL only' unless db_kind() eq 'pgsql';
own_httpd_env();
my $m = $ENV{CLINIC_MODDIR};
plan skip_all => 'no mod_proxy_hcheck' unless -f "$m/mod_proxy_hcheck.so";

my $dir = File::Temp::tempdir('clinic-balancer-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{CLINIC_TEST_KEEP});
my $k = $ENV{CLINIC_KEYS};
my $prov = Clinic::Provider->new("$dir/pki");   # started once node a runs without it
$prov->serve('jwks.json', run_quiet($ENV{CLINIC_MKJWT}, 'jwks', '--kid', 'k1', '--alg', 'RS256',
                                    "$k/rsa-public.pem"));
my $remote = sub {
    my (@keys) = @_;
    return qq(<Location "/remote/visits">\n    SetHandler clinic-visits\n    ClinicJWTAlgorithm RS256\n)
         . join('', map { "    $_\n" } @keys, 'ClinicJWTIssuer *', 'ClinicJWTAudience *')
         . "</Location>\n";
};
my ($pgb, $node) = two_nodes($dir,
    a => { extra => $remote->('ClinicJWKSURL ' . $prov->base . '/jwks.json',
                                          'ClinicJWKSRefresh 1',
                                          'ClinicTLSCAFile "' . $prov->ca_file . '"',
                                          qq(ClinicJWKSCacheDir "$dir/kept")) },
    b => { extra => $remote->(qq(ClinicJWTKeyFile "$k/rsa-public.pem")) });
my $front = Clinic::Httpd->new;
my $fd = $front->dir;
my $member = sub {
    my ($n) = @_;
    return qq(    BalancerMember "http://127.0.0.1:) . $node->{$n}->port . qq(" route=$n )
         . "connectiontimeout=1 retry=1 timeout=10 hcmethod=GET hcuri=" . check_uri() . " hcinterval=1 "
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
ProxyPass "/remote/visits" "balancer://clinic/remote/visits"
CONF2
$front->start('/visits');

my %claims = (claims => { sub => 'balancer', userId => 'doc-balancer' }, exp_in => 3600);
my $tok = token(%claims);

# ---- node a started while its keys provider is unreachable ----
sleep 3;   # the front's first checks (hcinterval x hcfails) have found node a not ready
my $wait = load($dir, $front->url('/remote/visits'), token(%claims, kid => 'k1'), 22);
my $ready = $node->{a}->ua->get($node->{a}->url('/ready'));
is($ready->code, 503, 'node a started without its keys provider: /ready 503');
like($ready->content, qr/"keys":\{"state":"fail","loaded":0,"expected":1\}/, 'node a: its keys not loaded');
sleep 7;
my $up = time;
$prov->start;
my @all = $wait->();
is(scalar(grep { $_->[1] != 200 } @all), 0,
   sprintf('keys provider down, then up: %d requests through the front, no error', scalar @all));
is(scalar(grep { $_ < $up } node_times($node->{a})), 0, 'node a gets no request before its keys');
my ($back) = sort { $a <=> $b } grep { $_ > $up } node_times($node->{a});
ok(defined $back, sprintf('node a in rotation %.1f s after its keys provider came up',
                          defined $back ? $back - $up : -1));
diag(sprintf('keys provider up: node a come-back %.1f s', defined $back ? $back - $up : -1));

outages(dir => $dir, url => $front->url('/visits'), token => $tok, pgb => $pgb, nodes => $node,
        window => 1 * 2 + 3 + 1);   # hcinterval x hcfails, the probe's deadline, a margin

done_testing();
