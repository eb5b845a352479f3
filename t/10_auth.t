# Authentication (docs/API.md §3 and §7), against the real server with
# real keys: the classic JWT attacks (alg none, HS/RS confusion, other keys,
# tampering), the time claims with their leeway, iss/aud, JWKS key choice,
# the Authorization header's forms, and the envelope route's 401/405. Every
# rejection is checked whole (status, body, challenge, common headers) and
# checked to have written nothing.
use strict;
use warnings FATAL => 'all';
use utf8;

use Test::More;
use Apache::Test ();
use Apache::TestRequest ();
use File::Temp ();
use Digest::SHA ();
use JSON::PP ();
use MIME::Base64 qw(decode_base64url encode_base64url);
use lib 't/lib';
use Clinic::Test qw(:DEFAULT common_headers);

my $keys = keys_dir();
my $dbh  = dbh();
my $body = '{"patient": 1750, "status": "started"}';
my @tokens_used;   # none of them may reach the error log

my $NO_TOKEN      = '{"detail":"Authentication credentials were not provided."}';
my $BAD_TOKEN     = '{"detail":"Invalid or expired token."}';
my $CHALLENGE     = 'Bearer realm="clinic"';
my $CHALLENGE_BAD = 'Bearer realm="clinic", error="invalid_token"';

sub counts { (count_rows('visits'), count_rows('practice_patients')) }

sub tok {
    my $t = token(@_);
    push @tokens_used, $t;
    return $t;
}

# POST the visit with this Authorization header value (undef: no header).
sub send_visit {
    my ($path, $authz) = @_;
    return post_json($path, $body, headers => [defined $authz ? (Authorization => $authz) : ()]);
}

# The token (as "Bearer <t>", or the raw header value with raw => 1) is
# accepted: 200, the one created visit, one visit row written.
sub accepted {
    my ($what, $path, $t, %o) = @_;
    my ($v0, $p0) = counts();
    my $res = send_visit($path, $o{raw} ? $t : "Bearer $t");
    is($res->code, 200, "$what: 200") or diag($res->as_string);
    common_headers($res, $what);
    my $v = jbody($res);
    ok(ref $v eq 'ARRAY' && @$v == 1, "$what: an array of one visit");
    my $visit = ref $v eq 'ARRAY' ? $v->[0] : {};
    is($visit->{patient}{pk}, 1750, "$what: patient 1750");
    is($visit->{status}, 'started', "$what: status started");
    ok(!defined $res->header('WWW-Authenticate'), "$what: no challenge");
    my ($v1, $p1) = counts();
    is($v1, $v0 + 1, "$what: one visit written");
    is($p1, $p0, "$what: no practice patient written");
}

# Rejected with 401. $kind: 'bad' (a token was given) or 'none' (no token).
sub rejected {
    my ($what, $path, $t, $kind, %o) = @_;
    my ($v0, $p0) = counts();
    my $authz = $o{raw} ? $t : defined $t ? "Bearer $t" : undef;
    my $res = send_visit($path, $authz);
    is($res->code, 401, "$what: 401");
    is($res->content, $kind eq 'bad' ? $BAD_TOKEN : $NO_TOKEN, "$what: body");
    is($res->header('WWW-Authenticate'), $kind eq 'bad' ? $CHALLENGE_BAD : $CHALLENGE,
       "$what: WWW-Authenticate");
    common_headers($res, $what);
    my ($v1, $p1) = counts();
    is($v1, $v0, "$what: no visit written");
    is($p1, $p0, "$what: no practice patient written");
}

my $now = time;

# ================= /visits: RS256, rsa-public.pem, leeway 60 =================
my $valid = tok(claims => { sub => 'registration-desk' });
accepted('valid RS256 token', '/visits', $valid);

rejected('alg none', '/visits', tok(alg => 'none', claims => { sub => 'registration-desk' }), 'bad');
{
    # alg none with the signature of a real token left on: still refused.
    my ($h, $p, $s) = split /\./, $valid;
    my $none_h = encode_base64url('{"alg":"none","typ":"JWT"}');
    rejected('alg none header over a real signature', '/visits', "$none_h.$p.$s", 'bad');
    rejected('alg none, empty signature', '/visits', "$none_h.$p.", 'bad');
}
{
    # RFC 7515 4.1.11: a JWS whose crit names an extension not understood is invalid, even
    # correctly signed (HS256, so that the test signs the exact header it wants).
    open(my $fh, '<', "$keys/hs-secret") or die "hs-secret: $!";
    my $secret = do { local $/; <$fh> };
    $secret =~ s/\n\z//;
    my $payload = encode_base64url(JSON::PP->new->encode({ sub => 'registration-desk',
                                                           exp => time + 600 }));
    my $signed = sub {
        my $h = encode_base64url($_[0]);
        return "$h.$payload." . encode_base64url(Digest::SHA::hmac_sha256("$h.$payload", $secret));
    };
    accepted('HS256 token signed here (control)', '/hs/visits', $signed->('{"alg":"HS256"}'));
    rejected('crit with an unknown extension', '/hs/visits',
             $signed->('{"alg":"HS256","crit":["x-unknown"],"x-unknown":1}'), 'bad');
    rejected('b64 false in crit', '/hs/visits',
             $signed->('{"alg":"HS256","b64":false,"crit":["b64"]}'), 'bad');
}
rejected('HS256 signed with the RSA public key PEM as secret', '/visits',
         tok(alg => 'HS256', key => "$keys/rsa-public.pem", claims => { sub => 'x' }), 'bad');
rejected('RS256 signed with another RSA key', '/visits',
         tok(alg => 'RS256', key => "$keys/rsa2-private.pem"), 'bad');
rejected('RS512 signed with the right key (alg pinned to RS256)', '/visits',
         tok(alg => 'RS512'), 'bad');

# exp with leeway 60
rejected('expired 120 s ago', '/visits', tok(exp_in => -120), 'bad');
accepted('expired 30 s ago, inside the leeway', '/visits', tok(exp_in => -30));
# nbf
rejected('nbf 120 s ahead', '/visits', tok(claims => { nbf => $now + 120 }), 'bad');
accepted('nbf 30 s ahead, inside the leeway', '/visits', tok(claims => { nbf => $now + 30 }));
# iat
rejected('iat 120 s ahead', '/visits', tok(claims => { iat => $now + 120 }), 'bad');
accepted('iat 30 s ahead, inside the leeway', '/visits', tok(claims => { iat => $now + 30 }));
accepted('iat in the past', '/visits', tok(claims => { iat => $now - 3600 }));
# exp required, an integer
rejected('no exp', '/visits', tok(no_exp => 1, claims => { sub => 'x' }), 'bad');
rejected('exp as a string', '/visits', tok(claims => '{"exp":"9999999999"}'), 'bad');
rejected('exp as a real', '/visits', tok(claims => '{"exp":9999999999.5}'), 'bad');
rejected('exp null', '/visits', tok(claims => '{"exp":null}'), 'bad');
rejected('nbf as a string', '/visits', tok(claims => '{"nbf":"0"}'), 'bad');

# tampered payload, header and signature kept
{
    my ($h, $p, $s) = split /\./, $valid;
    my $json = decode_base64url($p);
    (my $forged = $json) =~ s/"sub"\s*:\s*"registration-desk"/"sub":"admin"/;
    isnt($forged, $json, 'tampering changed the payload');
    rejected('tampered payload (sub changed)', '/visits',
             join('.', $h, encode_base64url($forged), $s), 'bad');
    # A signature one bit off.
    my $sig = decode_base64url($s);
    substr($sig, 10, 1) = chr(ord(substr($sig, 10, 1)) ^ 1);
    rejected('signature with one bit flipped', '/visits',
             join('.', $h, $p, encode_base64url($sig)), 'bad');
    rejected('signature removed', '/visits', "$h.$p.", 'bad');
    rejected('two segments', '/visits', "$h.$p", 'bad');
    rejected('four segments', '/visits', "$valid.$s", 'bad');
    rejected('not base64url', '/visits', "$h.$p.$s!", 'bad');
}

# size: over 8 KiB is refused with the module's JSON, well under is fine
{
    my $big = tok(claims => { sub => 'x', pad => 'p' x 9000 });
    cmp_ok(length $big, '>', 8192, 'padded token is over 8 KiB');
    rejected('token over 8 KiB', '/visits', $big, 'bad');
    my $fair = tok(claims => { sub => 'x', pad => 'p' x 5000 });
    cmp_ok(length $fair, '<', 8192, 'mid-size token is under 8 KiB');
    accepted('token of ' . length($fair) . ' bytes', '/visits', $fair);

    # The boundary: exactly 8192 bytes is accepted, the next length above is not.
    # 3 pad characters add 4 token characters; try the pads around the target.
    my $base = 5000 + int((8192 - length $fair) * 3 / 4);
    my %by_len;
    for my $pad ($base - 6 .. $base + 6) {
        my $t = token(claims => { sub => 'x', pad => 'p' x $pad });
        $by_len{length $t} //= $t;
    }
    my ($at) = $by_len{8192};
    my ($over) = map { $by_len{$_} } grep { $_ > 8192 } sort { $a <=> $b } keys %by_len;
    ok(defined $at && defined $over, 'tokens of 8192 bytes and just over made');
    push @tokens_used, grep { defined } $at, $over;
    accepted('token of exactly 8192 bytes', '/visits', $at // 'x');
    rejected('token of ' . length($over // '') . ' bytes', '/visits', $over // 'x', 'bad');
}

# the Authorization header's forms
rejected('no Authorization header', '/visits', undef, 'none');
rejected('token without the Bearer scheme', '/visits', $valid, 'none', raw => 1);
rejected('Basic credentials', '/visits', 'Basic dXNlcjpwYXNz', 'none', raw => 1);
rejected('Bearer with an empty token', '/visits', 'Bearer ', 'none', raw => 1);
rejected('Bearer alone', '/visits', 'Bearer', 'none', raw => 1);
rejected('Bearer glued to the token', '/visits', "Bearer$valid", 'none', raw => 1);
accepted('lower-case bearer scheme', '/visits', "bearer $valid", raw => 1);
accepted('upper-case BEARER scheme', '/visits', "BEARER $valid", raw => 1);

# ========= /claims/visits: iss https://auth.hospital.example, aud clinic-api, leeway 30 =========
my %iss = (iss => 'https://auth.hospital.example');
accepted('right iss and aud', '/claims/visits', tok(claims => { %iss, aud => 'clinic-api' }));
accepted('aud an array holding clinic-api', '/claims/visits',
         tok(claims => { %iss, aud => ['other-api', 'clinic-api'] }));
rejected('wrong iss', '/claims/visits',
         tok(claims => { iss => 'https://evil.example', aud => 'clinic-api' }), 'bad');
rejected('iss a prefix of the right one', '/claims/visits',
         tok(claims => { iss => 'https://auth.hospital.exampl', aud => 'clinic-api' }), 'bad');
rejected('missing iss', '/claims/visits', tok(claims => { aud => 'clinic-api' }), 'bad');
rejected('wrong aud', '/claims/visits', tok(claims => { %iss, aud => 'other-api' }), 'bad');
rejected('aud array without clinic-api', '/claims/visits',
         tok(claims => { %iss, aud => ['other-api', 'clinic'] }), 'bad');
rejected('missing aud', '/claims/visits', tok(claims => { %iss }), 'bad');
rejected('expired 45 s ago (leeway 30)', '/claims/visits',
         tok(claims => { %iss, aud => 'clinic-api' }, exp_in => -45), 'bad');
accepted('expired 15 s ago (leeway 30)', '/claims/visits',
         tok(claims => { %iss, aud => 'clinic-api' }, exp_in => -15));

# ========= /jwks/visits: RS256 pinned; rsa-1 (RS256), rsa-2 (no alg), ec-1 (ES256) =========
accepted('kid rsa-1 signed with rsa-private', '/jwks/visits', tok(kid => 'rsa-1'));
accepted('kid rsa-2 signed with rsa2-private', '/jwks/visits',
         tok(kid => 'rsa-2', key => "$keys/rsa2-private.pem"));
rejected('unknown kid', '/jwks/visits', tok(kid => 'rsa-3'), 'bad');
rejected('kid rsa-1 signed with rsa2-private', '/jwks/visits',
         tok(kid => 'rsa-1', key => "$keys/rsa2-private.pem"), 'bad');
rejected('no kid while two keys fit RS256', '/jwks/visits', tok(), 'bad');
rejected('ES256 token with kid ec-1 (alg pinned RS256)', '/jwks/visits',
         tok(alg => 'ES256', kid => 'ec-1'), 'bad');
rejected('RS256 token with kid ec-1', '/jwks/visits', tok(kid => 'ec-1'), 'bad');

# ========= /es/visits: ES256, ec-public.pem =========
accepted('ES256 token', '/es/visits', tok(alg => 'ES256'));
rejected('RS256 token on an ES256 route', '/es/visits', tok(alg => 'RS256'), 'bad');
{
    # The header says ES384 over a real ES256 signature: the pin refuses it.
    my ($h, $p, $s) = split /\./, tok(alg => 'ES256');
    my $hdr = decode_base64url($h);
    (my $h384 = $hdr) =~ s/"ES256"/"ES384"/;
    isnt($h384, $hdr, 'ES384 header made');
    rejected('ES384 header on an ES256 route', '/es/visits',
             join('.', encode_base64url($h384), $p, $s), 'bad');
}

# ========= /hs/visits: HS256, hs-secret =========
accepted('HS256 with hs-secret', '/hs/visits', tok(alg => 'HS256'));
rejected('HS512 with the same secret', '/hs/visits', tok(alg => 'HS512'), 'bad');
{
    my $dir = File::Temp::tempdir('clinic-auth-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    open(my $fh, '>', "$dir/other-secret") or die $!;
    print $fh "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n";
    close $fh;
    rejected('HS256 with another secret', '/hs/visits',
             tok(alg => 'HS256', key => "$dir/other-secret"), 'bad');
}
rejected('RS256 token on an HS256 route', '/hs/visits', tok(alg => 'RS256'), 'bad');
rejected('alg none on an HS256 route', '/hs/visits', tok(alg => 'none'), 'bad');

# ========= /patients/add_and_link: envelope shape, ClinicUidClaim userId =========
{
    my $link_body = {
        appointment_id => 'a1b2c3d4e5f60718293a4b5c', firstName => 'Auth', lastName => 'Test',
    };
    my $path = '/patients/add_and_link?uid=doc-auth';
    my @cases = (
        ['no token', undef, 401,
         '{"success":false,"error":"Missing bearer token","code":"AUTH_REQUIRED"}', $CHALLENGE],
        ['Basic credentials', 'Basic dXNlcjpwYXNz', 401,
         '{"success":false,"error":"Missing bearer token","code":"AUTH_REQUIRED"}', $CHALLENGE],
        ['alg none token', 'Bearer ' . tok(alg => 'none', claims => { userId => 'doc-auth' }), 401,
         '{"success":false,"error":"Invalid or expired token","code":"INVALID_TOKEN"}',
         $CHALLENGE_BAD],
        ['expired token', 'Bearer ' . tok(claims => { userId => 'doc-auth' }, exp_in => -3600), 401,
         '{"success":false,"error":"Invalid or expired token","code":"INVALID_TOKEN"}',
         $CHALLENGE_BAD],
        ['token signed with another key',
         'Bearer ' . tok(claims => { userId => 'doc-auth' }, key => "$keys/rsa2-private.pem"), 401,
         '{"success":false,"error":"Invalid or expired token","code":"INVALID_TOKEN"}',
         $CHALLENGE_BAD],
    );
    for my $c (@cases) {
        my ($what, $authz, $code, $want, $challenge) = @$c;
        $what = "add_and_link: $what";
        my ($v0, $p0) = counts();
        my $res = post_json($path, $link_body,
                            headers => [defined $authz ? (Authorization => $authz) : ()]);
        is($res->code, $code, "$what: $code");
        is($res->content, $want, "$what: body");
        is($res->header('WWW-Authenticate'), $challenge, "$what: WWW-Authenticate");
        common_headers($res, $what);
        my ($v1, $p1) = counts();
        is($p1, $p0, "$what: no practice patient written");
        is($v1, $v0, "$what: no visit written");
    }

    my ($v0, $p0) = counts();
    my $res = Apache::TestRequest::GET($path);
    is($res->code, 405, 'add_and_link: GET without a token: 405 before authentication');
    is($res->content, '{"success":false,"error":"Method not allowed","code":"METHOD_NOT_ALLOWED"}',
       'add_and_link: 405 body');
    is($res->header('Allow'), 'POST', 'add_and_link: 405 Allow: POST');
    ok(!defined $res->header('WWW-Authenticate'), 'add_and_link: 405 has no challenge');
    common_headers($res, 'add_and_link 405');
    my ($v1, $p1) = counts();
    is($p1, $p0, 'add_and_link 405: no practice patient written');
    is($v1, $v0, 'add_and_link 405: no visit written');
}

# ========= section 7: no token in the error log =========
{
    my $log_file = Apache::Test::vars('t_logs') . '/error_log';
    open(my $fh, '<', $log_file) or die "$log_file: $!";
    my $log = do { local $/; <$fh> };
    close $fh;
    my @leaked = grep { length $_ > 20 && index($log, (split /\./, $_)[-1] || $_) >= 0 }
                 @tokens_used;
    ok(length $log > 0, 'error log read');
    is(scalar @leaked, 0, 'no token (nor its signature) in the error log');
}

done_testing();
