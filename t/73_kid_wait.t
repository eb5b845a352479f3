# Requests naming an unknown kid while the key provider is slow: a bounded
# number wait for the refetch, the rest answer 401 at once, so made-up kids
# (no valid signature needed) cannot park every worker. A clinic httpd of its
# own (one child process, 64 threads) has the provider's last good document
# kept on disk; the "provider" is a loopback socket that accepts connections
# and never answers, so every fetch hangs until libcurl gives up.
use strict;
use warnings FATAL => 'all';

use Test::More;
use Digest::SHA ();
use IO::Socket::INET ();
use JSON::PP ();
use LWP::UserAgent ();
use MIME::Base64 ();
use POSIX ();
use Time::HiRes ();
use lib 't/lib';
use Clinic::Test;
use Clinic::Httpd;

my ($httpd, $moddir, $module, $keys) = own_httpd_env();

my $clients = 40;     # concurrent requests with made-up kids
my $waiters = 4;      # at most this many wait (remote.c WAITERS_MAX)

# The provider: listens (the kernel completes the TCP handshake), never reads or answers.
my $hang = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 256, ReuseAddr => 1)
    or die "listen: $!";
my $url = 'https://localhost:' . $hang->sockport . '/jwks.json';

my $C = Clinic::Httpd->new;
my ($cport, $cd) = ($C->port, $C->dir);
# The kept last good document (remote.c: jwks-<first 16 bytes of SHA-256(url) in hex>.json).
mkdir "$cd/kept", 0700 or die "$cd/kept: $!";
{
    open(my $in, '<', "$keys/jwks.json") or die "$keys/jwks.json: $!";
    local $/;
    my $doc = <$in>;
    my $kept = "$cd/kept/jwks-" . substr(Digest::SHA::sha256_hex($url), 0, 32) . '.json';
    open(my $out, '>', $kept) or die "$kept: $!";
    print $out $doc;
    close $out or die "$kept: $!";
    chmod 0600, $kept;
}
$C->write_conf(<<"CONF");
LogLevel warn
StartServers 1
ServerLimit 1
ThreadsPerChild 64
ThreadLimit 64
MaxRequestWorkers 64
MinSpareThreads 1
MaxSpareThreads 64
DBDriver $ENV{CLINIC_DBD_DRIVER}
DBDParams "$ENV{CLINIC_DBD_PARAMS}"
DBDMin 0
ClinicJWKSCacheDir "$cd/kept"
<Location "/slow/visits">
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicJWKSURL $url
    ClinicJWTIssuer *
    ClinicJWTAudience *
    ClinicJWKSRefresh 1
</Location>
CONF
eval { $C->start; 1 } or BAIL_OUT("$@");

my $ua = LWP::UserAgent->new(timeout => 15);
sub call {
    my ($tok) = @_;
    return $ua->post("http://127.0.0.1:$cport/slow/visits", 'Content-Type' => 'application/json',
                     Authorization => "Bearer $tok", Content => '{}');
}

# The kept keys are in use: a token of a known kid verifies (the empty body is then a 400).
my $known = token(alg => 'RS256', kid => 'rsa-1', key => "$keys/rsa-private.pem", exp_in => 900,
                  claims => { sub => 'doc-1' });
is(call($known)->code, 400, 'the kept document\'s key verifies while the provider hangs');

# Made-up kids, all at once, each in a process of its own: "code seconds" per line.
my $json = JSON::PP->new->canonical;
my $b64 = sub { MIME::Base64::encode_base64url($_[0]) };
pipe(my $r, my $w) or die "pipe: $!";
my @pids;
for my $i (1 .. $clients) {
    my $fake = $b64->($json->encode({ alg => 'RS256', kid => "made-up-$$-$i" })) . '.'
             . $b64->($json->encode({ sub => 'x', exp => time + 600 })) . '.' . $b64->('x' x 256);
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $r;
        my $t0 = Time::HiRes::time();
        my $code = call($fake)->code;
        syswrite($w, sprintf("%d %.3f\n", $code, Time::HiRes::time() - $t0));
        POSIX::_exit(0);
    }
    push @pids, $pid;
}
close $w;
my @res = map { [split ' '] } grep { /\S/ } <$r>;
waitpid($_, 0) for @pids;
$C->stop;

is(scalar @res, $clients, "$clients requests answered");
is(scalar(grep { $_->[0] == 401 } @res), $clients, 'every made-up kid: 401');
my $slow = grep { $_->[1] >= 2 } @res;
my $fast = grep { $_->[1] < 1.5 } @res;
ok($slow >= 1 && $slow <= $waiters, "at most $waiters waited for the refetch ($slow did)")
    or diag(join ' ', map { $_->[1] } @res);
ok($fast >= $clients - $waiters, "the others answered at once ($fast under 1.5 s)");

done_testing();
