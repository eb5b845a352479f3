# Keys that rotate (issue 11): a real HTTPS key provider (an httpd with
# mod_ssl and a test CA made here with openssl) serves a JWKS and an OpenID
# Connect discovery document that this test rewrites; a second mod_clinic
# httpd of its own (one child process, so fetches can be counted per process
# in the provider's access log) is configured with ClinicJWKSURL and,
# separately, ClinicOIDCIssuer. Both servers run on loopback ports chosen at
# run time and are stopped by PID.
use strict;
use warnings FATAL => 'all';

use Test::More;
use File::Temp ();
use JSON::PP ();
use LWP::UserAgent ();
use MIME::Base64 ();
use Time::HiRes ();
use lib 't/lib';
use Clinic::Test;
use Clinic::Httpd;
use Clinic::Provider qw(run_quiet);

my ($httpd, $moddir, $module, $keys) = own_httpd_env();
plan skip_all => "no mod_ssl in $moddir" unless -f "$moddir/mod_ssl.so";

my $json = JSON::PP->new->canonical;
my $dir = File::Temp::tempdir('clinic-jwks-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{CLINIC_TEST_KEEP});
my $P = Clinic::Provider->new("$dir/pki");   # the provider (with a test CA and another CA)
my $C = Clinic::Httpd->new;   # the clinic
my ($pport, $cport, $pd, $cd) = ($P->port, $C->port, $P->dir, $C->dir);
my $base = "https://localhost:$pport";
my $issuer = "$base/realms/t";

sub slurp {
    my ($path) = @_;
    open(my $fh, '<', $path) or return '';
    local $/;
    return <$fh>;
}
# ---- the documents: JWKS of kid k1 (rsa) and k2 (rsa2) ----
my %jwks;
$jwks{k1} = run_quiet($ENV{CLINIC_MKJWT}, 'jwks', '--kid', 'k1', '--alg', 'RS256',
                      "$keys/rsa-public.pem");
$jwks{k2} = run_quiet($ENV{CLINIC_MKJWT}, 'jwks', '--kid', 'k2', '--alg', 'RS256',
                      "$keys/rsa2-public.pem");
$jwks{both} = run_quiet($ENV{CLINIC_MKJWT}, 'jwks', '--kid', 'k1', '--alg', 'RS256',
                        "$keys/rsa-public.pem", '--kid', 'k2', '--alg', 'RS256',
                        "$keys/rsa2-public.pem");
my $docs = $P->docs;
sub serve { $P->serve(@_) }
serve('u/jwks.json', $jwks{k1});
serve('k/jwks.json', $jwks{k1});
serve('ca/jwks.json', $jwks{k1});
serve('o/jwks.json', $jwks{k1});
serve('realms/t/.well-known/openid-configuration',
      $json->encode({ issuer => $issuer, jwks_uri => "$base/o/jwks.json" }));

# ---- the clinic: one child process ----
# The tokens here carry no aud (any audience, said explicitly); a JWKS URL's Locations take
# any issuer, a discovery Location the discovered one.
my @any = ('ClinicJWTIssuer *');
sub clinic_loc {
    my ($path, $src, @more) = @_;
    my $lines = join '', map { "    $_\n" } @more;
    return <<"LOC";
<Location "/$path/visits">
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    $src
$lines</Location>
<Location "/$path/patients/add_and_link">
    SetHandler clinic-add-and-link
    ClinicJWTAlgorithm RS256
    ClinicUidClaim none
    $src
$lines</Location>
LOC
}
$C->write_conf(<<"CONF" . join('',
LogLevel warn
StartServers 1
ServerLimit 1
ThreadsPerChild 16
MaxRequestWorkers 16
MinSpareThreads 1
MaxSpareThreads 16
DBDriver $ENV{CLINIC_DBD_DRIVER}
DBDParams "$ENV{CLINIC_DBD_PARAMS}"
DBDMin 0
ClinicTLSCAFile "@{[ $P->ca_file ]}"
ClinicJWKSCacheDir "$cd/kept"
ClinicJWTAudience *
<Location "/clinic-metrics">
    SetHandler clinic-metrics
</Location>
CONF
    clinic_loc('u', "ClinicJWKSURL $base/u/jwks.json", 'ClinicJWKSRefresh 1', @any),
    clinic_loc('o', "ClinicOIDCIssuer $issuer", 'ClinicJWKSRefresh 1'),
    clinic_loc('k', "ClinicJWKSURL $base/k/jwks.json", @any),
    clinic_loc('ca', "ClinicJWKSURL $base/ca/jwks.json", 'ClinicJWKSRefresh 1',
               "ClinicTLSCAFile \"" . $P->other_ca_file . "\"", @any),
    clinic_loc('host', "ClinicJWKSURL https://127.0.0.1:$pport/u/jwks.json", 'ClinicJWKSRefresh 1', @any),
    clinic_loc('never', "ClinicJWKSURL $base/never/jwks.json", 'ClinicJWKSRefresh 1', @any)));

sub start { my ($h) = @_; eval { $h->start; 1 } or BAIL_OUT("$@") }
start($P->httpd);
start($C);
my $cpid = $C->pid;

# ---- helpers ----
my $ua = LWP::UserAgent->new(timeout => 15);
sub tok {
    my ($kid, %o) = @_;
    my $k = $kid eq 'k2' ? "$keys/rsa2-private.pem" : "$keys/rsa-private.pem";
    return token(alg => 'RS256', kid => $kid, key => $k, exp_in => 900,
                 claims => { sub => 'doc-1', %{ $o{claims} || {} } });
}
sub call {
    my ($path, $tok, $body) = @_;
    my $route = $path =~ /visits$/ ? $path : "$path?uid=doc-1";
    return $ua->post("http://127.0.0.1:$cport/$route", 'Content-Type' => 'application/json',
                     (defined $tok ? (Authorization => "Bearer $tok") : ()),
                     Content => $body // '{}');
}
# 400 = the token was accepted (the empty body then fails validation); 401 = rejected.
sub code { call(@_)->code }
sub wait_for {
    my ($what, $secs, $cond) = @_;
    my $t0 = Time::HiRes::time();
    while (Time::HiRes::time() - $t0 < $secs) {
        return 1 if $cond->();
        Time::HiRes::sleep(0.2);
    }
    return 0;
}
sub fetches { my ($path) = @_; my @l = grep { m{^GET \Q$path\E } } split /\n/, slurp("$pd/access_log"); scalar @l }
sub errors { my ($re) = @_; my @l = grep { /$re/ } split /\n/, slurp("$cd/error_log"); scalar @l }

my %t = (k1 => tok('k1'), k2 => tok('k2'),
         ok1 => tok('k1', claims => { iss => $issuer }), ok2 => tok('k2', claims => { iss => $issuer }));

# ---- served keys accepted, both routes, both sources ----
ok(wait_for('keys', 10, sub { code('u/visits', $t{k1}) == 400 }), 'JWKS URL: k1 token accepted');
my $r = call('u/visits', $t{k1}, '{"patient": 1, "status": "started"}');
is($r->code, 200, 'JWKS URL: a visit created with a k1 token') or diag($r->content);
is(code('u/patients/add_and_link', $t{k1}), 400, 'JWKS URL, add-and-link: k1 token accepted');
is(code('u/visits', $t{k2}), 401, 'JWKS URL: k2 (not served) rejected');
ok(wait_for('oidc', 10, sub { code('o/visits', $t{ok1}) == 400 }),
   'discovery: k1 token with iss = issuer accepted');
is(code('o/patients/add_and_link', $t{ok1}), 400, 'discovery, add-and-link: accepted');
is(code('o/visits', $t{k1}), 401, 'discovery: a token without the issuer\'s iss rejected');

# ---- rotation within the refresh interval, no restart ----
serve('u/jwks.json', $jwks{k2});
serve('o/jwks.json', $jwks{k2});
ok(wait_for('rotation', 6, sub { code('u/visits', $t{k2}) == 400 }),
   'rotation: the new key accepted within the refresh interval');
is(code('u/visits', $t{k1}), 401, 'rotation: the removed key rejected (not from the cache)');
is(code('u/patients/add_and_link', $t{k1}), 401, 'rotation: removed key rejected, add-and-link');
ok(wait_for('rotation', 6, sub { code('o/patients/add_and_link', $t{ok2}) == 400 }),
   'rotation through discovery: the new key accepted');
is(code('o/visits', $t{ok1}), 401, 'rotation through discovery: the removed key rejected');
ok(kill(0, $cpid) && $C->pid == $cpid, 'no restart: the same httpd');

# ---- an unknown kid: one immediate refetch, then at most one per 60 s ----
ok(wait_for('k fetch', 5, sub { fetches('/k/jwks.json') >= 1 }), 'k: fetched at start-up');
my $before = fetches('/k/jwks.json');
serve('k/jwks.json', $jwks{both});
is(code('k/visits', $t{k2}), 400, 'unknown kid: refetched at once and accepted');
is(fetches('/k/jwks.json'), $before + 1, 'unknown kid: exactly one refetch');
my $b64 = sub { my $s = MIME::Base64::encode_base64url($_[0]); $s };
my $rejected = 0;
for my $i (1 .. 200) {
    my $kid = join '', map { ('a' .. 'z')[int rand 26] } 1 .. 12;
    my $fake = $b64->($json->encode({ alg => 'RS256', kid => $kid })) . '.'
             . $b64->($json->encode({ sub => 'x', exp => time + 600 })) . '.' . $b64->('x' x 256);
    $rejected++ if code('k/visits', $fake) == 401;
}
is($rejected, 200, '200 random unknown kids: all rejected');
is(fetches('/k/jwks.json'), $before + 1, '200 random unknown kids: no further fetch in 60 s');

# ---- provider trouble: last good keys kept, one log line per failure streak ----
my $ufail = qr{fetching the keys of \Q$base\E/u/jwks\.json .*failed};
my @trouble = (['HTML', "<html><body>Maintenance</body></html>\n", qr/HTML/],
               ['invalid JSON', '{"keys": [', qr/not valid JSON/],
               ['an empty set', '{"keys": []}', qr/no usable signing key/],
               ['a missing document (404)', undef, qr/HTTP status 404/]);
for my $case (@trouble) {
    my ($what, $text, $reason) = @$case;
    my $n = errors($ufail);
    my $f = fetches('/u/jwks.json');
    if (defined $text) { serve('u/jwks.json', $text) } else { unlink "$docs/u/jwks.json" }
    ok(wait_for($what, 8, sub { fetches('/u/jwks.json') >= $f + 3 }), "$what: fetched again");
    is(code('u/visits', $t{k2}), 400, "$what: the last good key still accepted");
    is(errors($ufail), $n + 1, "$what: one log line for the streak");
    like((grep { /$ufail/ } split /\n/, slurp("$cd/error_log"))[-1] // '', $reason,
         "$what: the line says why");
    my $ok = errors(qr{keys of \Q$base\E/u/jwks\.json fetched again});
    serve('u/jwks.json', $jwks{k2});
    ok(wait_for('recovery', 6, sub { errors(qr{keys of \Q$base\E/u/jwks\.json fetched again}) > $ok }),
       "$what: recovery logged");
}

# ---- the fetches in the metrics (the metrics code's key-set series) ----
{
    my $m = $ua->get("http://127.0.0.1:$cport/clinic-metrics")->content;
    my ($failures) = $m =~ /^clinic_jwks_fetch_failures_total\{url="\Q$base\E\/u\/jwks\.json"\} (\d+)$/m;
    my ($nkeys) = $m =~ /^clinic_jwks_keys\{url="\Q$base\E\/u\/jwks\.json"\} (\d+)$/m;
    ok(($failures // 0) >= 4, 'metrics: the failed fetches counted') or diag($m);
    is($nkeys, 1, 'metrics: one key loaded');
}

# ---- TLS: wrong CA, wrong host name: refused, logged, no keys (503) ----
for my $case (['ca', "$base/ca/jwks.json", 'a certificate of another CA', qr/certificate/i],
              ['host', "https://127.0.0.1:$pport/u/jwks.json", 'a host name not in the certificate',
               qr/subject name|host name/i]) {
    my ($p, $url, $what, $reason) = @$case;
    my $re = qr{fetching the keys of \Q$url\E .*failed};
    ok(wait_for($p, 6, sub { errors($re) >= 1 }), "$what: the failure is logged");
    is(code("$p/visits", $t{k2}), 503, "$what: refused, no keys: 503");
    like((grep { /$re/ } split /\n/, slurp("$cd/error_log"))[0] // '', $reason,
         "$what: the log says why");
    is(errors($re), 1, "$what: logged once although retried every second");
}

# ---- no keys yet: 503 with Retry-After in each route's shape ----
$r = call('never/visits', $t{k2});
is($r->code, 503, 'no keys: /visits 503');
is($r->header('Retry-After'), '5', 'no keys: Retry-After');
is($r->content, '{"detail":"Token keys are not available yet; try again later."}', 'no keys: DRF shape');
$r = call('never/patients/add_and_link', $t{k2});
is($r->code, 503, 'no keys: add-and-link 503');
is($r->content, '{"success":false,"error":"Token keys are not available yet","code":"KEYS_UNAVAILABLE"}',
   'no keys: envelope shape');
is(code('never/visits', undef), 401, 'no keys, no token: still 401');

# ---- provider stopped: known keys keep working ----
my $n = errors($ufail);
$P->stop;
ok(wait_for('down', 8, sub { errors($ufail) > $n }), 'provider down: logged')
    or diag(`tail -5 $cd/error_log; tail -3 $pd/error_log; tail -3 $pd/access_log`);
Time::HiRes::sleep(2.5);
is(code('u/visits', $t{k2}), 400, 'provider down: the known key still accepted');
is(errors($ufail), $n + 1, 'provider down: one log line for the streak');

# ---- Apache started while the provider is down: the kept document ----
my @kept = glob("$cd/kept/jwks-*.json");
ok(scalar @kept >= 2, 'kept documents on disk');
is(sprintf('%o', (stat "$cd/kept")[2] & 07777), '700', 'kept directory mode 0700');
is(sprintf('%o', (stat $kept[0])[2] & 07777), '600', 'kept document mode 0600');
$C->stop;
start($C);
is(code('u/visits', $t{k2}), 400, 'restarted with the provider down: kept keys accepted');
is(code('u/visits', $t{k1}), 401, 'restarted: the kept set is the rotated one');
is(code('o/visits', $t{ok2}), 400, 'restarted: discovery source served from its kept document');
is(code('never/visits', $t{k2}), 503, 'restarted: no document and no provider: 503');
$C->stop;

unlike(slurp("$cd/error_log"), qr/\Q$t{k2}\E|\Q$t{k1}\E/, 'no token in the error log');

done_testing();
