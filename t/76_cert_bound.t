# Certificate-bound tokens (RFC 8705 §3) through a real mod_ssl with the
# test CA scripts/test.sh makes (SSLVerifyClient optional_no_ca): a token
# whose cnf.x5t#S256 is the SHA-256 of the client certificate mod_ssl
# verified is accepted; the same token without a certificate, with another
# certificate of the CA, or with a self-signed one is refused (401, nothing
# written), on a Location that requires bound tokens and on one that does
# not (a bound token is always checked); an unbound token where they are
# required is refused; so is a token bound to a self-signed certificate
# (RFC 8705 §2.2) even with that certificate: mod_ssl reports it as not
# verified (SSL_CLIENT_VERIFY FAILED), and only verified ones count.
use strict;
use warnings FATAL => 'all';

use Test::More;
use Apache::Test ();
use Apache::TestRequest ();
use LWP::UserAgent ();
use HTTP::Request ();
use IO::Socket::SSL ();
use lib 't/lib';
use Clinic::Test qw(:DEFAULT common_headers);
use Clinic::DPoP qw(x5t_of);

my $pki = keys_dir() . '/pki';
Apache::TestRequest::module('clinic_tls');
my $base = 'https://' . Apache::TestRequest::hostport();
Apache::TestRequest::module('default');

sub slurp { open(my $fh, '<', $_[0]) or die "$_[0]: $!"; local $/; <$fh> }

# An agent presenting client certificate $name (undef: none), trusting the test CA.
sub agent {
    my ($name) = @_;
    return LWP::UserAgent->new(keep_alive => 0, ssl_opts => {
        SSL_ca_file => "$pki/ca.pem", verify_hostname => 1,
        $name ? (SSL_cert_file => "$pki/$name.pem", SSL_key_file => "$pki/$name-key.pem") : () });
}

sub post {
    my ($cert, $path, $tok, $body) = @_;
    my $req = HTTP::Request->new(POST => "$base$path", ['Content-Type' => 'application/json',
                                 Authorization => "Bearer $tok"], $body // '{"patient": 1750, "status": "started"}');
    return agent($cert)->request($req);
}

my $x5t = x5t_of(slurp("$pki/client1.pem"));
my $bound = token(claims => { sub => 'nurse-1', cnf => { 'x5t#S256' => $x5t } });
my $plain = token(claims => { sub => 'nurse-1' });
my $BAD = '{"detail":"Invalid or expired token."}';

sub accepted {
    my ($what, $cert, $path, $tok) = @_;
    my $v0 = count_rows('visits');
    my $res = post($cert, $path, $tok);
    is($res->code, 200, "$what: 200") or diag($res->as_string);
    is(count_rows('visits'), $v0 + 1, "$what: one visit written");
}

sub refused {
    my ($what, $cert, $path, $tok) = @_;
    my $v0 = count_rows('visits');
    my $res = post($cert, $path, $tok);
    is($res->code, 401, "$what: 401") or diag($res->as_string);
    is($res->content, $BAD, "$what: body");
    is($res->header('WWW-Authenticate'), 'Bearer realm="clinic", error="invalid_token"',
       "$what: WWW-Authenticate");
    common_headers($res, $what);
    is(count_rows('visits'), $v0, "$what: no visit written");
}

for my $path ('/mtls/visits', '/visits') {
    accepted("$path: bound token, its certificate", 'client1', $path, $bound);
    refused("$path: bound token, no certificate", undef, $path, $bound);
    refused("$path: bound token, another certificate of the CA", 'client2', $path, $bound);
    refused("$path: bound token, a self-signed certificate", 'stranger', $path, $bound);
}
refused('/mtls/visits: an unbound token', 'client1', '/mtls/visits', $plain);
my $self_bound = token(claims => { sub => 'nurse-1', cnf => { 'x5t#S256' => x5t_of(slurp("$pki/stranger.pem")) } });
refused('/mtls/visits: a token bound to a self-signed certificate, with it (mod_ssl verified nothing)',
        'stranger', '/mtls/visits', $self_bound);
refused('/mtls/visits: that token with a certificate of the CA', 'client1', '/mtls/visits', $self_bound);
accepted('/visits: an unbound token with a certificate (binding not required)', 'client1', '/visits', $plain);

# Over plain HTTP there is no certificate at all.
my $res = post_json('/visits', '{"patient": 1750, "status": "started"}', token => $bound);
is($res->code, 401, 'bound token over plain HTTP: 401');

# add-and-link: the envelope.
my $doctor = 'doctor_mtls_' . new_hex24();
my $link_tok = token(claims => { userId => $doctor, cnf => { 'x5t#S256' => $x5t } });
my $appt = new_hex24();
dbh()->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $appt, $doctor);
my $p = JSON::PP::encode_json({ appointment_id => $appt, doctor_id => $doctor, firstName => 'Ann',
                                lastName => 'Lee', dateOfBirth => '1990-01-02' });
$res = post('client2', "/mtls/patients/add_and_link?uid=$doctor", $link_tok, $p);
is($res->code, 401, 'add-and-link, another certificate: 401');
is($res->content, '{"success":false,"error":"Invalid or expired token","code":"INVALID_TOKEN"}',
   'add-and-link: the envelope');
$res = post('client1', "/mtls/patients/add_and_link?uid=$doctor", $link_tok, $p);
is($res->code, 200, 'add-and-link, its certificate: 200') or diag($res->as_string);

done_testing();
