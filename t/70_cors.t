# CORS on both routes (ClinicCORSOrigins, ClinicCORSMaxAge), on the wire:
# the preflight before the method check and before authentication, refused
# preflights left as they were (405, nothing a browser accepts), the headers
# on every answer to an allowed origin whatever its status (httpd's own error
# inheritance, `*`, and locations without CORS unchanged.
# t/71_cors_browser.t does the same from a real browser.
use strict;
use warnings FATAL => 'all';
use utf8;

use Test::More;
use Apache::TestRequest ();
use lib 't/lib';
use Clinic::Test;

my $reg      = 'https://registration.hospital.example';   # /visits' front end
my $practice = 'https://practice.hospital.example';       # add-and-link's front end
my $allow_h  = 'Authorization, Content-Type, Idempotency-Key, X-Request-Id, DPoP';
my $expose_h = 'Retry-After, WWW-Authenticate, X-Request-Id, Idempotent-Replayed, DPoP-Nonce';
my $run      = new_hex24();
my $tok      = token(claims => { sub => "cors-$run" });
my $dbh      = dbh();

sub preflight {
    my ($path, $origin, %h) = @_;
    return send_method('OPTIONS', $path, Origin => $origin,
        'Access-Control-Request-Method' => $h{method} // 'POST',
        'Access-Control-Request-Headers' => $h{headers} // 'authorization,content-type');
}

sub ac_headers {
    my ($res) = @_;
    return join ' ', sort grep { /^access-control-/i } $res->headers->header_field_names;
}

sub no_cors {
    my ($res, $what, %o) = @_;
    is(ac_headers($res), '', "$what: no Access-Control-* header");
    if ($o{vary}) { like($res->header('Vary') // '', qr/\bOrigin\b/, "$what: still Vary: Origin") }
    else          { ok(!defined $res->header('Vary'), "$what: no Vary") }
}

# An actual (not preflight) answer to an allowed origin.
sub cors_answer {
    my ($res, $origin, $what) = @_;
    is($res->header('Access-Control-Allow-Origin'), $origin, "$what: Access-Control-Allow-Origin");
    is($res->header('Access-Control-Expose-Headers'), $expose_h, "$what: Access-Control-Expose-Headers");
    like($res->header('Vary') // '', qr/\bOrigin\b/, "$what: Vary: Origin");
    ok(!defined $res->header('Access-Control-Allow-Methods'), "$what: no preflight headers");
}

sub visit { my ($body, %o) = @_; post_json('/visits', $body, token => $tok, %o,
                                          headers => [Origin => $reg, @{ $o{headers} || [] }]) }

# --- preflights that pass: 204 before the method check and before auth ---
{
    my $res = preflight('/visits', $reg);
    is($res->code, 204, 'visits preflight from an allowed origin: 204');
    is($res->header('Access-Control-Allow-Origin'), $reg, 'preflight: the origin itself');
    is($res->header('Access-Control-Allow-Methods'), 'POST', 'preflight: Allow-Methods POST');
    is($res->header('Access-Control-Allow-Headers'), $allow_h, 'preflight: Allow-Headers');
    is($res->header('Access-Control-Max-Age'), '600', 'preflight: Max-Age defaults to 600');
    like($res->header('Vary') // '', qr/\bOrigin\b/, 'preflight: Vary: Origin');
    is($res->content, '', 'preflight: no body');
    ok(!defined $res->header('WWW-Authenticate'), 'preflight: no authentication asked for');

    $res = preflight('/visits', $reg, headers => 'Authorization, Content-Type, Idempotency-Key, X-Request-Id, DPoP');
    is($res->code, 204, 'preflight asking for all five headers (any case): 204');
    $res = preflight('/visits', $reg, headers => '');
    is($res->code, 204, 'preflight asking for no header: 204');

    $res = preflight('/patients/add_and_link?uid=doctor_uid_123', $practice);
    is($res->code, 204, 'add-and-link preflight from its front end: 204');
    is($res->header('Access-Control-Allow-Origin'), $practice, 'add-and-link preflight: its origin');
    is($res->header('Access-Control-Max-Age'), '120', 'add-and-link: ClinicCORSMaxAge 120');

    $res = preflight('/visits/short-cache', $reg);
    is($res->code, 204, 'a sub-location inherits the origins');
    is($res->header('Access-Control-Max-Age'), '5', '... and overrides ClinicCORSMaxAge');

    $res = preflight('/star/visits', 'https://anyone.example');
    is($res->code, 204, 'ClinicCORSOrigins *: any origin');
    is($res->header('Access-Control-Allow-Origin'), '*', 'ClinicCORSOrigins *: Allow-Origin *');
}

# --- preflights that do not: as without CORS (405), nothing the browser accepts ---
for my $case (['an origin not allowed', '/visits', 'https://evil.example'],
              ['the other front end\'s origin', '/visits', $practice],
              ['an origin differing in port', '/visits', "$reg:8443"],
              ['another method', '/visits', $reg, method => 'PUT'],
              ['a header the routes do not take', '/visits', $reg,
               headers => 'authorization,content-type,x-custom'],
              ['add-and-link, origin not allowed', '/patients/add_and_link?uid=d', $reg]) {
    my ($what, $path, $origin, %h) = @$case;
    my $res = preflight($path, $origin, %h);
    is($res->code, 405, "preflight with $what: 405 as without CORS");
    is($res->header('Allow'), 'POST', "preflight with $what: Allow: POST");
    no_cors($res, "preflight with $what", vary => 1);
}
{
    my $res = send_method('OPTIONS', '/visits');
    is($res->code, 405, 'OPTIONS without CORS headers: 405 as today');
    is($res->content, '{"detail":"Method \"OPTIONS\" not allowed."}', '... with the DRF body');
    $res = send_method('OPTIONS', '/visits', Origin => $reg);
    is($res->code, 405, 'OPTIONS with Origin but no Access-Control-Request-Method: 405');
    is($res->header('Access-Control-Allow-Origin'), $reg, '... readable by the allowed origin');
}

# --- locations without CORS: exactly as before ---
for my $path ('/utc/visits', '/visits/no-cors') {
    my $res = preflight($path, $reg);
    is($res->code, 405, "$path: preflight is 405");
    no_cors($res, "$path preflight");
    $res = post_json($path, { patient => 1750, status => 'no cors' }, token => $tok,
                     headers => [Origin => $reg]);
    is($res->code, 200, "$path: POST with Origin is served");
    no_cors($res, "$path POST");
}

# --- every answer to an allowed origin carries the headers ---
{
    my $res = visit({ patient => 1750, status => 'started' });
    is($res->code, 200, 'visits 200');
    cors_answer($res, $reg, 'visits 200');

    $res = visit({ patient => 1750, status => '' });
    is($res->code, 400, 'visits 400');
    cors_answer($res, $reg, 'visits 400');

    $res = post_json('/visits', { patient => 1750, status => 'x' }, headers => [Origin => $reg]);
    is($res->code, 401, 'visits 401');
    cors_answer($res, $reg, 'visits 401');
    is($res->header('WWW-Authenticate'), 'Bearer realm="clinic"', 'visits 401: WWW-Authenticate');

    $res = Apache::TestRequest::GET('/visits', Origin => $reg);
    is($res->code, 405, 'visits 405');
    cors_answer($res, $reg, 'visits 405');

    $res = visit('{"patient": 1750, "status": "' . ('x' x 70000) . '"}');
    is($res->code, 413, 'visits 413');
    cors_answer($res, $reg, 'visits 413');

    $res = visit('{}', type => 'text/plain');
    is($res->code, 415, 'visits 415');
    cors_answer($res, $reg, 'visits 415');

    my $key = "cors-$run";
    my $idem = '{"patient": 1750, "status": "idem"}';
    my $first = visit($idem, headers => ['Idempotency-Key' => $key]);
    is($first->code, 200, 'visits under an Idempotency-Key');
    $res = visit($idem, headers => ['Idempotency-Key' => $key]);
    is($res->code, 200, 'visits replay');
    is($res->header('Idempotent-Replayed'), 'true', 'visits replay is a replay');
    cors_answer($res, $reg, 'visits replay');
    $res = visit('{"patient": 1750, "status": "other"}', headers => ['Idempotency-Key' => $key]);
    is($res->code, 422, 'visits 422');
    cors_answer($res, $reg, 'visits 422');

    $dbh->do(q{INSERT INTO patients (id, village_prefix, name, gender, date_of_birth)
               VALUES (?, 'ZZ', 'Broken Row', 'Female', ?)}, undef, 900901,
             db_kind() eq 'pgsql' ? 'infinity' : 'not a timestamp');
    $res = visit({ patient => 900901, status => 'started' });
    $dbh->do('DELETE FROM patients WHERE id = ?', undef, 900901);
    is($res->code, 500, 'visits 500');
    cors_answer($res, $reg, 'visits 500');

    Apache::TestRequest::module('clinic_nodb');
    $res = post_json('/visits', { patient => 1750, status => 'x' }, headers => [Origin => $reg]);
    Apache::TestRequest::module('default');
    is($res->code, 503, 'visits 503');
    cors_answer($res, $reg, 'visits 503');
    is($res->header('Retry-After'), '5', 'visits 503: Retry-After');

    # Not allowed: served, but nothing a browser would let the page read.
    $res = post_json('/visits', { patient => 1750, status => 'x' }, token => $tok,
                     headers => [Origin => 'https://evil.example']);
    is($res->code, 200, 'POST from an origin not allowed is still served (CORS is not authentication)');
    no_cors($res, 'POST from an origin not allowed', vary => 1);

    $res = post_json('/star/visits', { patient => 1750, status => 'x' },
                     headers => [Origin => 'https://anyone.example']);
    cors_answer($res, '*', 'ClinicCORSOrigins * answer');
}

# --- httpd's own access control, before the handler ---
{
    my $res = post_json('/visits/ip-denied', { patient => 1750, status => 'x' }, token => $tok,
                        headers => [Origin => $reg]);
    is($res->code, 403, "Require denies before the handler: httpd's own 403");
    cors_answer($res, $reg, "httpd's own 403");
    $res = preflight('/visits/ip-denied', $reg);
    is($res->code, 403, 'a Require that does not exempt OPTIONS denies the preflight too');
    is(ac_headers($res), '', '... with no Access-Control-* header');
    $res = preflight('/visits/ip-denied-but-preflight', $reg);
    is($res->code, 204, 'Require method OPTIONS in a RequireAny lets the preflight through');
    is($res->header('Access-Control-Allow-Origin'), $reg, '... answered by the module');
    $res = post_json('/visits/ip-denied-but-preflight', { patient => 1750, status => 'x' },
                     token => $tok, headers => [Origin => $reg]);
    is($res->code, 403, '... while the POST is still denied');
    cors_answer($res, $reg, '... readable by the page');
}

# --- add-and-link: its own statuses ---
{
    my $uid = "doctor_cors_$run";
    my $ltok = token(claims => { userId => $uid });
    my $appt = new_hex24();
    $dbh->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $appt, $uid);
    my $link = sub {
        my ($body, %o) = @_;
        return post_json('/patients/add_and_link?uid=' . ($o{uid} // $uid), $body,
                         token => $o{token}, headers => [Origin => $practice]);
    };
    my $body = { appointment_id => $appt, firstName => 'Jane', lastName => 'Smith' };
    my $res = $link->($body, token => $ltok);
    is($res->code, 200, 'add-and-link 200');
    cors_answer($res, $practice, 'add-and-link 200');
    $res = $link->($body, token => $ltok);
    is($res->code, 409, 'add-and-link 409');
    cors_answer($res, $practice, 'add-and-link 409');
    $res = $link->({ %$body, appointment_id => new_hex24() }, token => $ltok);
    is($res->code, 404, 'add-and-link 404');
    cors_answer($res, $practice, 'add-and-link 404');
    $res = $link->($body, token => $ltok, uid => 'someone_else');
    is($res->code, 403, 'add-and-link 403');
    cors_answer($res, $practice, 'add-and-link 403');
    $res = $link->($body);
    is($res->code, 401, 'add-and-link 401');
    cors_answer($res, $practice, 'add-and-link 401');
}

done_testing();
