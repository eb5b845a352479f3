# A DPoP front end in a real browser: headless chromium loads
# t/htdocs/cors/dpop.html from another origin (the clinic_page virtual
# host), makes a non-extractable P-256 key with WebCrypto, gets tokens bound
# to it from the stand-in token endpoint (token.cgi) and posts both routes
# with axios, each with a fresh proof: both succeed and write their rows; the
# same proof sent again is refused, and the page reads the 401 and its
# WWW-Authenticate (CORS allows the DPoP header and exposes the challenge).
# Skips, saying why, only where chromium cannot start.
use strict;
use warnings FATAL => 'all';

use Test::More;
use JSON::PP ();
use URI::Escape qw(uri_escape);
use Apache::Test ();
use lib 't/lib';
use Clinic::Test;
use Clinic::Browser;

if (defined(my $why = chromium_problem())) { plan skip_all => "chromium cannot start here: $why" }

my $json = JSON::PP->new->utf8->canonical;
my $tag  = new_hex24();
my $uid  = "doctor_dpop_browser_$tag";
my $appt = new_hex24();
dbh()->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $appt, $uid);

my ($visits0, $jtis0) = (count_rows('visits'), count_rows('dpop_jtis'));
my $cfg = { api => 'http://127.0.0.1:' . Apache::Test::vars('port'), patient => 1750, sub => "nurse-$tag",
            uid => $uid, appointment => $appt };
my ($dom, $stderr) = chromium_dom('http://127.0.0.1:' . Apache::Test::vars('clinic_page_port') . '/dpop.html#'
                                  . uri_escape($json->encode($cfg)), tz => 'UTC');
my ($out, $done) = page_outcomes($dom);
my %out = %$out;
ok($done, 'the page ran to its end') or diag("chromium: $stderr\n" . substr($dom, 0, 2000));
ok(!$out{error}, 'no step failed') or diag($json->encode($out{error}));

is($json->encode($out{key} // {}), '{"extractable":false,"type":"private"}',
   'the private key is a non-extractable WebCrypto key');
my $v = $out{visit} || {};
is($v->{status}, 200, 'POST /dpop/visits with a WebCrypto proof: 200') or diag($json->encode($v));
is(ref $v->{body} eq 'ARRAY' ? $v->{body}[0]{status} : undef, 'started', 'the page reads the visit');

my $r = $out{'visit-replayed'} || {};
is($r->{status}, 401, 'the same proof again: the page reads 401');
is($json->encode($r->{body} // {}), '{"detail":"Invalid DPoP proof."}', '... its body');
is($r->{challenge}, 'DPoP error="invalid_dpop_proof", algs="RS256 RS384 RS512 ES256 ES384 ES512"',
   '... and the exposed WWW-Authenticate');

my $l = $out{link} || {};
is($l->{status}, 200, 'POST /dpop/patients/add_and_link with a proof: 200') or diag($json->encode($l));
my $pid = $l->{body}{data}{_id} // '';
my ($linked) = dbh()->selectrow_array('SELECT patient_id FROM appointments WHERE id = ?', undef, $appt);
is($linked, $pid, 'the appointment is linked to the new patient');
is(count_rows('visits'), $visits0 + 1, 'one visit written');
is(count_rows('dpop_jtis'), $jtis0 + 2, 'two proofs recorded (the replay was not)');

done_testing();
