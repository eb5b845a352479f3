# Start-up checks (docs/API.md §2): a clinic Location with ClinicAuth jwt
# and no usable key stops Apache at start-up, naming the Location; bad
# directive values are refused. Each case is a throwaway httpd config checked
# with `httpd -t`; no server is started.
use strict;
use warnings FATAL => 'all';
use utf8;

use Test::More;
use Cwd ();
use File::Temp ();
use JSON::PP ();
use lib 't/lib';
use Clinic::Test;

my ($httpd, $moddir, $module, $keys) = own_httpd_env();

my $dir = File::Temp::tempdir('clinic-configtest-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $port = 20000 + ($$ % 20000);
my $n = 0;

sub write_file {
    my ($path, $text) = @_;
    open(my $fh, '>', $path) or die "$path: $!";
    print $fh $text;
    close $fh or die "$path: $!";
    return $path;
}

# The server-level frame around a case's own lines. dbd => 0 leaves mod_dbd
# (and its directives) out.
sub conf_text {
    my ($body, %o) = @_;
    my $dbd = $o{dbd} // 1;
    my $t = "ServerRoot \"$dir\"\n"
          . "ServerName localhost\n"
          . "Listen 127.0.0.1:$port\n"
          . "PidFile \"$dir/httpd.pid\"\n"
          . "ErrorLog \"$dir/error_log\"\n"
          . "LoadModule mpm_event_module \"$moddir/mod_mpm_event.so\"\n"
          . "LoadModule authz_core_module \"$moddir/mod_authz_core.so\"\n";
    $t .= "LoadModule dbd_module \"$moddir/mod_dbd.so\"\n" if $dbd;
    $t .= "LoadModule clinic_module \"$module\"\n";
    $t .= "DBDriver sqlite3\nDBDParams \"$dir/clinic.db\"\n" if $dbd;
    return $t . $body;
}

# Run `httpd -t -f` on a config; returns (exit status, stdout+stderr, file name).
sub configtest {
    my ($body, %o) = @_;
    my $file = write_file("$dir/case-" . ++$n . '.conf', conf_text($body, %o));
    my $pid = open(my $fh, '-|');
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open(STDERR, '>&', \*STDOUT) or die "dup: $!";
        exec($httpd, '-t', '-f', $file) or die "exec $httpd: $!";
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return ($? >> 8, $out, $file);
}

sub conf_ok {
    my ($what, $body, %o) = @_;
    my ($rc, $out) = configtest($body, %o);
    is($rc, 0, "$what: configtest passes") or diag($out);
    like($out, qr/Syntax OK/, "$what: Syntax OK");
}

# $wants: patterns every one of which the output must match.
sub conf_fails {
    my ($what, $body, $wants, %o) = @_;
    my ($rc, $out) = configtest($body, %o);
    isnt($rc, 0, "$what: configtest fails");
    unlike($out, qr/Syntax OK/, "$what: no Syntax OK");
    for my $w (@$wants) {
        like($out, $w, "$what: output matches $w");
    }
}

my $rsa_pub  = "$keys/rsa-public.pem";
my $ec_pub   = "$keys/ec-public.pem";
my $jwks     = "$keys/jwks.json";

# A JWKS document holding only the EC key (ec-1), written here.
my $ec_only = do {
    open(my $fh, '<', $jwks) or die "$jwks: $!";
    local $/;
    my $doc = JSON::PP->new->decode(<$fh>);
    my @ec = grep { $_->{kty} eq 'EC' } @{ $doc->{keys} };
    die 'jwks.json has no EC key' unless @ec == 1;
    write_file("$dir/ec-only.jwks", JSON::PP->new->encode({ keys => \@ec }));
};
my $empty_key = write_file("$dir/empty.pem", '');
my $nl_only   = write_file("$dir/newline-only.secret", "\n");
my $bad_jwks  = write_file("$dir/bad.jwks", '{"keys": [ {"kty": "RSA", "n": ');

# --- accepted ---
conf_ok('valid RS256 Location', <<"EOF");
<Location /v>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicJWTKeyFile "$rsa_pub"
</Location>
EOF

conf_ok('valid ES256 Location and a JWKS Location', <<"EOF");
<Location /es>
    SetHandler clinic-visits
    ClinicJWTAlgorithm ES256
    ClinicJWTKeyFile "$ec_pub"
</Location>
<Location /jwks>
    SetHandler clinic-add-and-link
    ClinicJWTAlgorithm RS256
    ClinicJWKSFile "$jwks"
</Location>
EOF

conf_ok('key inherited from a parent Location', <<"EOF");
<Location /api>
    ClinicJWTKeyFile "$rsa_pub"
</Location>
<Location /api/visits>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
</Location>
EOF

conf_ok('algorithm and key inherited from a parent Location', <<"EOF");
<Location /api>
    ClinicJWTAlgorithm RS256
    ClinicJWTKeyFile "$rsa_pub"
</Location>
<Location /api/visits>
    SetHandler clinic-visits
</Location>
EOF

conf_ok('ClinicAuth off needs no key', <<"EOF");
<Location /open>
    SetHandler clinic-visits
    ClinicAuth off
</Location>
EOF

conf_ok('good directive values', <<"EOF");
<Location /v>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicJWTKeyFile "$rsa_pub"
    ClinicTimeOffset +07:00
    ClinicMaxBody 1
    ClinicJWTLeeway 0
</Location>
EOF

# --- refused: no usable key ---
conf_fails('no ClinicJWTAlgorithm', <<"EOF", [qr/<Location \/v>/, qr/ClinicJWTAlgorithm/]);
<Location /v>
    SetHandler clinic-visits
    ClinicJWTKeyFile "$rsa_pub"
</Location>
EOF

conf_fails('no algorithm and no key', <<"EOF", [qr/<Location \/v>/, qr/ClinicJWTAlgorithm/]);
<Location /v>
    SetHandler clinic-visits
</Location>
EOF

conf_fails('algorithm but no key', <<"EOF", [qr/<Location \/link>/, qr/ClinicJWTKeyFile/]);
<Location /link>
    SetHandler clinic-add-and-link
    ClinicJWTAlgorithm RS256
</Location>
EOF

conf_fails('ES256 with an RSA public key', <<"EOF", [qr/<Location \/v>/, qr/does not fit/]);
<Location /v>
    SetHandler clinic-visits
    ClinicJWTAlgorithm ES256
    ClinicJWTKeyFile "$rsa_pub"
</Location>
EOF

conf_fails('RS256 with an EC public key', <<"EOF", [qr/<Location \/v>/, qr/does not fit/]);
<Location /v>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicJWTKeyFile "$ec_pub"
</Location>
EOF

conf_fails('RS256 with a JWKS of EC keys only', <<"EOF", [qr/<Location \/v>/, qr/ClinicJWKSFile/]);
<Location /v>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicJWKSFile "$ec_only"
</Location>
EOF

conf_fails('a parent Location with ClinicAuth off does not key the one that turns it on',
    <<"EOF", [qr/<Location \/api\/visits>/, qr/ClinicJWTAlgorithm/]);
<Location /api>
    ClinicAuth off
</Location>
<Location /api/visits>
    SetHandler clinic-visits
    ClinicAuth jwt
</Location>
EOF

conf_fails('clinic Location in a VirtualHost without a key',
    <<"EOF", [qr/<Location \/vh\/visits>/, qr/ClinicJWTKeyFile/]);
<VirtualHost 127.0.0.1:$port>
    ServerName vh.example
    <Location /vh/visits>
        SetHandler clinic-visits
        ClinicJWTAlgorithm RS256
    </Location>
</VirtualHost>
EOF

# --- refused: directive values ---
conf_fails('ClinicJWTAlgorithm none', <<"EOF", [qr/unknown algorithm/, qr/none/]);
<Location /v>
    SetHandler clinic-visits
    ClinicJWTAlgorithm none
    ClinicJWTKeyFile "$rsa_pub"
</Location>
EOF

conf_fails('ClinicJWTAlgorithm in lower case', <<"EOF", [qr/unknown algorithm/]);
<Location /v>
    SetHandler clinic-visits
    ClinicJWTAlgorithm rs256
    ClinicJWTKeyFile "$rsa_pub"
</Location>
EOF

conf_fails('ClinicJWTKeyFile missing', <<"EOF", [qr/cannot read/, qr/no-such-key\.pem/]);
<Location /v>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicJWTKeyFile "$dir/no-such-key.pem"
</Location>
EOF

conf_fails('ClinicJWTKeyFile empty', <<"EOF", [qr/ClinicJWTKeyFile/, qr/empty/]);
<Location /v>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicJWTKeyFile "$empty_key"
</Location>
EOF

conf_fails('HS256 secret of one newline (empty once the newline is dropped)',
    <<"EOF", [qr/ClinicJWTKeyFile/, qr/empty/]);
<Location /v>
    SetHandler clinic-visits
    ClinicJWTAlgorithm HS256
    ClinicJWTKeyFile "$nl_only"
</Location>
EOF

conf_fails('ClinicJWKSFile malformed', <<"EOF", [qr/ClinicJWKSFile/, qr/bad\.jwks/]);
<Location /v>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicJWKSFile "$bad_jwks"
</Location>
EOF

conf_fails('ClinicJWKSFile missing', <<"EOF", [qr/cannot read/]);
<Location /v>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicJWKSFile "$dir/no-such.jwks"
</Location>
EOF

conf_fails('ClinicTimeOffset +7', <<"EOF", [qr/ClinicTimeOffset/, qr/\+7/]);
<Location /v>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicJWTKeyFile "$rsa_pub"
    ClinicTimeOffset +7
</Location>
EOF

conf_fails('ClinicMaxBody 0', <<"EOF", [qr/ClinicMaxBody/]);
<Location /v>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicJWTKeyFile "$rsa_pub"
    ClinicMaxBody 0
</Location>
EOF

# The database deadline and the pool's waiting line: server-wide numbers.
conf_ok('ClinicDBTimeout and ClinicDBMaxWaiting', "ClinicDBTimeout 5\nClinicDBMaxWaiting 0\n");
conf_fails('ClinicDBTimeout 0', "ClinicDBTimeout 0\n", [qr/ClinicDBTimeout: '0' is not seconds 1-3600/]);
conf_fails('ClinicDBTimeout 2.5', "ClinicDBTimeout 2.5\n", [qr/ClinicDBTimeout/]);
conf_fails('ClinicDBMaxWaiting -1', "ClinicDBMaxWaiting -1\n",
           [qr/ClinicDBMaxWaiting: '-1' is not a number of requests 0-100000/]);
conf_fails('ClinicDBTimeout in a Location', "<Location /v>\n    ClinicDBTimeout 5\n</Location>\n",
           [qr/ClinicDBTimeout not allowed in <Location> context/]);
conf_fails('ClinicDBTimeout in a VirtualHost',
           "<VirtualHost 127.0.0.1:$port>\n    ClinicDBTimeout 5\n</VirtualHost>\n",
           [qr/ClinicDBTimeout cannot occur within <VirtualHost> section/]);
# A pool and waiting line as large as the threads, and PostgreSQL without
# connect_timeout: warned at start-up, naming the numbers.
{
    my ($rc, $out) = configtest("ThreadsPerChild 8\nDBDMax 8\nClinicDBMaxWaiting 1\n");
    is($rc, 0, 'DBDMax 8 with ThreadsPerChild 8: still starts');
    like($out, qr/DBDMax 8 plus ClinicDBMaxWaiting 1 is not below ThreadsPerChild 8/,
         'DBDMax + ClinicDBMaxWaiting >= ThreadsPerChild: warned');
    ($rc, $out) = configtest("ThreadsPerChild 8\nDBDMax 4\nClinicDBMaxWaiting 2\n");
    unlike($out, qr/is not below ThreadsPerChild/, 'DBDMax 4 + 2 below 8 threads: no warning');
    ($rc, $out) = configtest("DBDriver pgsql\nDBDParams \"host=/nowhere dbname=clinic\"\n");
    like($out, qr/DBDParams has no connect_timeout/, 'PostgreSQL without connect_timeout: warned');
    ($rc, $out) = configtest("DBDriver pgsql\nDBDParams \"host=a,b dbname=clinic connect_timeout=5\"\n"
                             . "ClinicDBTimeout 8\n");
    like($out, qr/connect_timeout=5 over 2 host\(s\) can take 10 s, not less than ClinicDBTimeout \(8 s\)/,
         'connect_timeout x hosts beyond the deadline: warned');
}

conf_fails('ClinicAuth maybe', <<"EOF", [qr/ClinicAuth/]);
<Location /v>
    SetHandler clinic-visits
    ClinicAuth maybe
</Location>
EOF

# --- mod_dbd ---
conf_fails('clinic Location without mod_dbd', <<"EOF", [qr/mod_dbd/], dbd => 0);
<Location /v>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicJWTKeyFile "$rsa_pub"
</Location>
EOF

# --- CORS directives (t/70_cors.t tests what they do) ---
for my $bad ('https://registration.hospital.example/', 'https://x.example/path', 'null',
             'registration.hospital.example', 'https://x.example:99999', '* https://x.example',
             'https://x.example none') {
    conf_fails("ClinicCORSOrigins $bad", <<"EOF", [qr/ClinicCORSOrigins/]);
<Location /v>
    SetHandler clinic-visits
    ClinicAuth off
    ClinicCORSOrigins $bad
</Location>
EOF
}
for my $bad ('-1', '86401', '10m') {
    conf_fails("ClinicCORSMaxAge $bad", <<"EOF", [qr/ClinicCORSMaxAge/]);
<Location /v>
    SetHandler clinic-visits
    ClinicAuth off
    ClinicCORSMaxAge $bad
</Location>
EOF
}
conf_ok('ClinicCORSOrigins: origins, ports, IPv6, *, none', <<"EOF");
<Location /v>
    SetHandler clinic-visits
    ClinicAuth off
    ClinicCORSOrigins https://registration.hospital.example http://127.0.0.1:3000
    ClinicCORSOrigins http://[::1]:8080
    ClinicCORSMaxAge 0
</Location>
<Location /w>
    SetHandler clinic-visits
    ClinicAuth off
    ClinicCORSOrigins *
</Location>
<Location /v/x>
    ClinicCORSOrigins none
</Location>
EOF

# --- HS secrets of at least the hash size (RFC 7518 3.2) ---
my $hs31 = write_file("$dir/hs31.secret", 'x' x 31);
my $hs32 = write_file("$dir/hs32.secret", 'x' x 32);
my $hs63 = write_file("$dir/hs63.secret", 'x' x 63 . "\n");
conf_ok('HS256 secret of 32 bytes', <<"EOF");
<Location /hs>
    SetHandler clinic-visits
    ClinicJWTAlgorithm HS256
    ClinicJWTKeyFile "$hs32"
</Location>
EOF
conf_fails('HS256 secret of 31 bytes', <<"EOF", [qr/<Location \/hs>/, qr/at least 32 bytes/, qr/is 31\b/]);
<Location /hs>
    SetHandler clinic-visits
    ClinicJWTAlgorithm HS256
    ClinicJWTKeyFile "$hs31"
</Location>
EOF
conf_fails('HS512 secret of 63 bytes (and a newline)', <<"EOF",
<Location /hs512>
    SetHandler clinic-add-and-link
    ClinicJWTAlgorithm HS512
    ClinicJWTKeyFile "$hs63"
</Location>
EOF
    [qr/<Location \/hs512>/, qr/at least 64 bytes/]);

# --- public key material is never an HS secret (whoever has it could mint tokens) ---
my $jwk_text = do {
    open(my $fh, '<', $jwks) or die "$jwks: $!";
    local $/;
    JSON::PP->new->canonical->encode(JSON::PP->new->decode(<$fh>)->{keys}[0]);
};
my $as_jwk = write_file("$dir/a-jwk.secret", $jwk_text);
for my $case (['a PEM public key', $rsa_pub, qr/not a PEM block/], ['a JWKS', $jwks, qr/not a JWKS document/],
              ['a JWK', $as_jwk, qr/not a JWK\b/]) {
    my ($what, $file, $why) = @$case;
    conf_fails("HS256 with $what as its secret", <<"EOF", [qr/<Location \/hs>/, qr/does not fit HS256/, $why]);
<Location /hs>
    SetHandler clinic-visits
    ClinicJWTAlgorithm HS256
    ClinicJWTKeyFile "$file"
</Location>
EOF
}

# --- RSA keys of at most 8192 bits (t/keys/: real keys, slow to generate) ---
my $tkeys = Cwd::abs_path('t/keys');
conf_ok('RS256 with an 8192-bit key', <<"EOF");
<Location /big>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicJWTKeyFile "$tkeys/rsa8192-public.pem"
</Location>
EOF
conf_fails('RS256 with an 8256-bit key', <<"EOF", [qr/<Location \/big>/, qr/8256 bits, more than the 8192 allowed/]);
<Location /big>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicJWTKeyFile "$tkeys/rsa8256-public.pem"
</Location>
EOF

# --- keys fetched over HTTPS (issue 11): configtest does not fetch ---
my $ca = write_file("$dir/ca.pem", "not read until a fetch\n");
conf_ok('ClinicJWKSURL and ClinicOIDCIssuer with their settings', <<"EOF");
ClinicTLSCAFile "$ca"
ClinicJWKSCacheDir "$dir/kept"
<Location /u>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicJWKSURL https://idp.example/.well-known/jwks.json
    ClinicJWTIssuer https://idp.example/
    ClinicJWTAudience clinic-api
    ClinicJWKSRefresh 600
</Location>
<Location /o>
    SetHandler clinic-add-and-link
    ClinicJWTAlgorithm ES256
    ClinicOIDCIssuer https://idp.example/realms/hospital
    ClinicJWTAudience clinic-api
</Location>
EOF

# Keys from a provider sign tokens for all its clients: an audience is required, and for
# a JWKS URL an issuer, unless the administrator writes the explicit `*` (warned about).
my %provider = (oidc => 'ClinicOIDCIssuer https://accounts.example/',
                url  => 'ClinicJWKSURL https://idp.example/jwks.json');
for my $k (sort keys %provider) {
    my @want = (qr/<Location \/p>/, qr/needs ClinicJWTAudience/, qr/ClinicJWTAudience \* accepts them all/);
    conf_fails("$k without ClinicJWTAudience", <<"EOF", \@want);
<Location /p>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    $provider{$k}
    ClinicJWTIssuer https://idp.example/
</Location>
EOF
}
conf_fails('ClinicJWKSURL without ClinicJWTIssuer', <<"EOF", [qr/<Location \/p\/visits>/, qr/needs ClinicJWTIssuer/]);
ClinicJWTAudience clinic-api
<Location /p/visits>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    $provider{url}
</Location>
EOF
conf_fails('an audience in another Location does not count', <<"EOF", [qr/<Location \/p2>/, qr/ClinicJWTAudience/]);
<Location /p1>
    ClinicJWTAudience clinic-api
</Location>
<Location /p2>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    $provider{oidc}
</Location>
EOF
{
    my ($rc, $out) = configtest(<<"EOF");
<Location /any>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    $provider{url}
    ClinicJWTAudience *
    ClinicJWTIssuer *
</Location>
<Location /oidc>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    $provider{oidc}
    ClinicJWTAudience clinic-api
</Location>
EOF
    is($rc, 0, 'ClinicJWTAudience * and ClinicJWTIssuer *: configtest passes') or diag($out);
    like($out, qr/warn.*<Location \/any>.*ClinicJWTAudience \*: tokens .* for any of its clients are accepted/,
         'ClinicJWTAudience *: a warning naming the Location');
    like($out, qr/warn.*<Location \/any>.*ClinicJWTIssuer \*: tokens of any issuer/,
         'ClinicJWTIssuer *: a warning naming the Location');
    unlike($out, qr/<Location \/oidc>/, 'an audience and the discovered issuer: no warning');
}
conf_fails('ClinicJWKSURL over http', <<"EOF", [qr/ClinicJWKSURL/, qr/not an https/]);
<Location /u>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicJWKSURL http://idp.example/jwks.json
</Location>
EOF
conf_fails('ClinicOIDCIssuer over http', <<"EOF", [qr/ClinicOIDCIssuer/, qr/not an https/]);
<Location /u>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicOIDCIssuer http://idp.example/
</Location>
EOF
conf_fails('a fetched key set for HS256', <<"EOF", [qr/<Location \/u>/, qr/HS256/]);
<Location /u>
    SetHandler clinic-visits
    ClinicJWTAlgorithm HS256
    ClinicJWKSURL https://idp.example/jwks.json
</Location>
EOF
conf_fails('ClinicJWKSRefresh 0', <<"EOF", [qr/ClinicJWKSRefresh/]);
<Location /u>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicJWKSURL https://idp.example/jwks.json
    ClinicJWKSRefresh 0
</Location>
EOF
conf_fails('ClinicTLSCAFile missing', <<"EOF", [qr/ClinicTLSCAFile/, qr/no-such-ca\.pem/]);
ClinicTLSCAFile "$dir/no-such-ca.pem"
EOF

for my $bad ('', 'role') {
    conf_fails("Require clinic-claim '$bad'", <<"EOF", [qr/Require clinic-claim takes a claim name and one or more values/]);
<Location /v>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicJWTKeyFile "$rsa_pub"
    Require clinic-claim $bad
</Location>
EOF
}
conf_ok('Require clinic-claim with quoted values, in RequireAll', <<"EOF");
<Location /v>
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicJWTKeyFile "$rsa_pub"
    ClinicUserClaim preferred_username
    <RequireAll>
        Require clinic-claim realm_access.roles nurse "head nurse"
        Require clinic-claim scope visits:write
    </RequireAll>
</Location>
EOF

done_testing();
