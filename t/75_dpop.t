# DPoP (RFC 9449) against the real server: proofs made with real P-256 and
# RSA keys for tokens bound to them (cnf.jkt), on both routes; every
# refusal of §4.3 and §7.1 (htm, htu, iat either way, a replayed jti, ath,
# the token's jkt, another key's signature, a private key in jwk, none and
# HS256, two DPoP headers, a bound token as Bearer), each answered 401 in
# the route's shape with RFC 9449's challenge and nothing written; a
# Location that accepts DPoP beside Bearer, and one behind a proxy
# (ClinicDPoPURL).
use strict;
use warnings FATAL => 'all';

use Test::More;
use Apache::Test ();
use Apache::TestRequest ();
use File::Temp ();
use lib 't/lib';
use Clinic::Test qw(:DEFAULT common_headers);
use Clinic::DPoP qw(proof jkt_of jwk_of);

my $keys = keys_dir();
my $mkjwt = $ENV{CLINIC_MKJWT};
my $tmp = File::Temp::tempdir(CLEANUP => 1);
system("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $tmp/other.pem 2>/dev/null") == 0
    or die 'openssl genpkey';

my %EC  = (key => "$keys/ec-private.pem", pub => "$keys/ec-public.pem", alg => 'ES256');
my %RSA = (key => "$keys/rsa2-private.pem", pub => "$keys/rsa2-public.pem", alg => 'RS256');
my $ALL_ALGS = 'algs="RS256 RS384 RS512 ES256 ES384 ES512"';
my $body = '{"patient": 1750, "status": "started"}';
my $run = sprintf '%x%x', time, $$;

sub url { Apache::TestRequest::resolve_url($_[0]) }
sub bound_token { my ($pub, %c) = @_; token(claims => { sub => 'nurse-1', cnf => { jkt => jkt_of($mkjwt, $pub) }, %c }) }
sub jtis { count_rows('dpop_jtis') }

# POST with Authorization "$scheme $token" and each of @proofs as a DPoP header.
sub send_dpop {
    my ($path, $scheme, $tok, $proofs, $content) = @_;
    return post_json($path, $content // $body,
                     headers => [Authorization => "$scheme $tok", map { (DPoP => $_) } @$proofs]);
}

sub visit_ok {
    my ($what, $path, $scheme, $tok, @proofs) = @_;
    my ($v0, $j0) = (count_rows('visits'), jtis());
    my $res = send_dpop($path, $scheme, $tok, \@proofs);
    is($res->code, 200, "$what: 200") or diag($res->as_string);
    is(count_rows('visits'), $v0 + 1, "$what: one visit written");
    is(jtis(), $j0 + (lc $scheme eq 'dpop' ? 1 : 0), "$what: its jti recorded");
    return $res;
}

# 401 in /visits' shape: the body, the challenges, nothing written.
sub refused {
    my ($what, $path, $scheme, $tok, $proofs, %o) = @_;
    my ($v0, $j0) = (count_rows('visits'), jtis());
    my $res = send_dpop($path, $scheme, $tok, $proofs);
    is($res->code, 401, "$what: 401") or diag($res->as_string);
    is($res->content, $o{body} // '{"detail":"Invalid DPoP proof."}', "$what: body");
    is(join(' | ', $res->header('WWW-Authenticate')),
       $o{challenge} // qq{DPoP error="invalid_dpop_proof", $ALL_ALGS}, "$what: WWW-Authenticate");
    common_headers($res, $what) if $o{headers};
    is(count_rows('visits'), $v0, "$what: no visit written");
    is(jtis(), $j0, "$what: no jti recorded");
}

my $V = '/dpop/visits';
my $ec_tok = bound_token($EC{pub});
my $rsa_tok = bound_token($RSA{pub});
my %p = (mkjwt => $mkjwt, htu => url($V));

# --- accepted: a P-256 and an RSA proof ---
my $res = visit_ok('ES256 proof', $V, 'DPoP', $ec_tok, proof(%p, %EC, token => $ec_tok));
common_headers($res, 'ES256 proof');
ok(!defined $res->header('WWW-Authenticate'), 'ES256 proof: no challenge');
visit_ok('RS256 proof', $V, 'DPoP', $rsa_tok, proof(%p, %RSA, token => $rsa_tok));
visit_ok('scheme in lower case, htu with a query and the host in capitals', $V, 'dpop', $ec_tok,
         proof(%p, %EC, token => $ec_tok, htu => url($V) =~ s/localhost/LOCALHOST/r . '?x=1'));

# --- replay: the same proof again ---
my $once = proof(%p, %EC, token => $ec_tok);
visit_ok('a proof', $V, 'DPoP', $ec_tok, $once);
refused('the same proof again', $V, 'DPoP', $ec_tok, [$once], headers => 1);
my $sub = 'SELECT count(*) FROM dpop_jtis WHERE expires_at > ?';

# --- the proof's claims ---
refused('htm GET', $V, 'DPoP', $ec_tok, [proof(%p, %EC, token => $ec_tok, htm => 'GET')]);
refused('htu another path', $V, 'DPoP', $ec_tok, [proof(%p, %EC, token => $ec_tok, htu => url('/visits'))]);
refused('htu another host', $V, 'DPoP', $ec_tok,
        [proof(%p, %EC, token => $ec_tok, htu => 'https://api.hospital.example/dpop/visits')]);
refused('iat 120 s old', $V, 'DPoP', $ec_tok, [proof(%p, %EC, token => $ec_tok, iat => time - 120)]);
refused('iat 120 s ahead', $V, 'DPoP', $ec_tok, [proof(%p, %EC, token => $ec_tok, iat => time + 120)]);
refused('ath of another token', $V, 'DPoP', $ec_tok, [proof(%p, %EC, token => $rsa_tok)]);
refused('no ath', $V, 'DPoP', $ec_tok, [proof(%p, %EC)]);

# --- the proof's key and header ---
refused('signed by another key', $V, 'DPoP', $ec_tok, [proof(%p, %EC, key => "$tmp/other.pem", token => $ec_tok)]);
my $priv = jwk_of($mkjwt, $EC{pub}) =~ s/\}$/,"d":"AAAA"}/r;
refused('a private key in jwk', $V, 'DPoP', $ec_tok, [proof(%p, %EC, jwk => $priv, token => $ec_tok)]);
refused('alg none', $V, 'DPoP', $ec_tok, [proof(%p, %EC, alg => 'none', token => $ec_tok)]);
refused('alg HS256', $V, 'DPoP', $ec_tok, [proof(%p, %EC, alg => 'HS256', token => $ec_tok)]);
refused('typ JWT', $V, 'DPoP', $ec_tok, [proof(%p, %EC, typ => 'JWT', token => $ec_tok)]);
my $log = Apache::Test::vars('t_logs') . '/error_log';
my $log_at = -s $log;
refused('two DPoP headers', $V, 'DPoP', $ec_tok,
        [proof(%p, %EC, token => $ec_tok), proof(%p, %EC, token => $ec_tok)]);
{
    open(my $fh, '<', $log) or die "$log: $!";
    seek($fh, $log_at, 0);
    local $/;
    like(<$fh>, qr/token rejected: DPoP proof: not exactly one DPoP header/,
         'two DPoP headers: refused as such (the log says why)');
}
refused('no DPoP header', $V, 'DPoP', $ec_tok, []);

# --- the token's binding ---
my $INVALID_TOKEN = '{"detail":"Invalid or expired token."}';
refused("the token bound to another key (jkt)", $V, 'DPoP', $rsa_tok, [proof(%p, %EC, token => $rsa_tok)],
        body => $INVALID_TOKEN, challenge => qq{DPoP error="invalid_token", $ALL_ALGS});
my $plain = token(claims => { sub => 'nurse-1' });
refused('an unbound token with a proof', $V, 'DPoP', $plain, [proof(%p, %EC, token => $plain)],
        body => $INVALID_TOKEN, challenge => qq{DPoP error="invalid_token", $ALL_ALGS});
refused('a bound token as Bearer', $V, 'Bearer', $ec_tok, [],
        body => $INVALID_TOKEN, challenge => qq{DPoP error="invalid_token", $ALL_ALGS});
refused('an unbound Bearer token where DPoP is required', $V, 'Bearer', $plain, [],
        body => $INVALID_TOKEN, challenge => qq{DPoP error="invalid_token", $ALL_ALGS});
refused('a bound token as Bearer where DPoP is off', '/visits', 'Bearer', $ec_tok, [],
        body => $INVALID_TOKEN, challenge => 'Bearer realm="clinic", error="invalid_token"');
refused('DPoP where it is off: no token', '/visits', 'DPoP', $ec_tok, [proof(%p, %EC, token => $ec_tok)],
        body => '{"detail":"Authentication credentials were not provided."}', challenge => 'Bearer realm="clinic"');

# --- ClinicDPoP accept: Bearer and DPoP side by side ---
my $A = '/dpop-accept/visits';
my $TWO = 'Bearer realm="clinic" | DPoP algs="ES256 RS256"';
visit_ok('accept: an unbound Bearer token', $A, 'Bearer', $plain);
visit_ok('accept: a DPoP proof', $A, 'DPoP', $ec_tok, proof(%p, %EC, token => $ec_tok, htu => url($A)));
$res = post_json($A, $body);
is($res->code, 401, 'accept: no token: 401');
is(join(' | ', $res->header('WWW-Authenticate')), $TWO, 'accept: both challenges, the algorithms listed');
refused('accept: a bound token as Bearer', $A, 'Bearer', $ec_tok, [], body => $INVALID_TOKEN,
        challenge => 'Bearer realm="clinic", error="invalid_token" | DPoP algs="ES256 RS256"');
refused('accept: an ES384 proof (not in ClinicDPoPAlgorithms)', $A, 'DPoP', $ec_tok,
        [proof(%p, %EC, alg => 'ES384', token => $ec_tok, htu => url($A))],
        challenge => 'Bearer realm="clinic" | DPoP error="invalid_dpop_proof", algs="ES256 RS256"');
refused('accept: iat 40 s old (ClinicDPoPWindow 30)', $A, 'DPoP', $ec_tok,
        [proof(%p, %EC, iat => time - 40, token => $ec_tok, htu => url($A))],
        challenge => 'Bearer realm="clinic" | DPoP error="invalid_dpop_proof", algs="ES256 RS256"');

# --- ClinicDPoPURL: the URL clients call, behind a proxy ---
my $P = '/dpop-proxied/visits';
visit_ok('proxied: htu is ClinicDPoPURL', $P, 'DPoP', $ec_tok,
         proof(%p, %EC, token => $ec_tok, htu => 'https://api.hospital.example/visits'));
refused("proxied: htu is Apache's own URL", $P, 'DPoP', $ec_tok, [proof(%p, %EC, token => $ec_tok, htu => url($P))]);

# --- add-and-link: the envelope shape ---
my $L = '/dpop/patients/add_and_link';
my $doctor = "doctor_dpop_$run";
my $link_tok = bound_token($EC{pub}, userId => $doctor);
my $appt = new_hex24();
dbh()->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $appt, $doctor);
my $patient = { appointment_id => $appt, doctor_id => $doctor, firstName => 'Ann', lastName => 'Lee',
                dateOfBirth => '1990-01-02' };
my $lproof = proof(%p, %EC, token => $link_tok, htu => url($L));
my $lres = send_dpop("$L?uid=$doctor", 'DPoP', $link_tok, [$lproof], JSON::PP::encode_json($patient));
is($lres->code, 200, 'add-and-link with a proof: 200') or diag($lres->as_string);
$lres = send_dpop("$L?uid=$doctor", 'DPoP', $link_tok, [$lproof], JSON::PP::encode_json($patient));
is($lres->code, 401, 'add-and-link, the proof again: 401');
is($lres->content, '{"success":false,"error":"Invalid DPoP proof","code":"INVALID_DPOP_PROOF"}',
   'add-and-link: the envelope');
is($lres->header('WWW-Authenticate'), qq{DPoP error="invalid_dpop_proof", $ALL_ALGS}, 'add-and-link: the challenge');
$lres = send_dpop("$L?uid=$doctor", 'Bearer', $link_tok, [], JSON::PP::encode_json($patient));
is($lres->content, '{"success":false,"error":"Invalid or expired token","code":"INVALID_TOKEN"}',
   'add-and-link: a bound token as Bearer, the envelope');

# --- the store: one row per proof, living until iat + the window ---
my ($left) = dbh()->selectrow_array('SELECT count(*) FROM dpop_jtis WHERE replay_key NOT GLOB ?', undef,
                                    '[0-9a-f]*') if db_kind() eq 'sqlite';
is($left // 0, 0, 'replay keys are hex digests (no proof content stored)');

done_testing();
