# Apache-native authorization and the audit trail (issue 12): r->user (%u,
# AUTH_TYPE) from the token; `Require clinic-claim` alone and inside
# <RequireAll>/<RequireAny> with `Require ip`, 403 in both shapes; the token
# verified once per request; the request id (mod_unique_id's, the module's;
# never the client's) in the audit and error logs, the client's X-Request-Id
# echoed and in a field of its own; and one audit line per
# answer of both routes whose caller, outcome and ids match the answer.
use strict;
use warnings FATAL => 'all';
use utf8;

use Test::More;
use Apache::Test ();
use Apache::TestRequest ();
use Digest::SHA qw(sha256_hex);
use POSIX qw(strftime);
use Time::HiRes qw(sleep);
use lib 't/lib';
use Clinic::Test qw(:DEFAULT common_headers);

my $logs = Apache::Test::vars('t_logs');
my $run  = new_hex24();
my $dbh  = dbh();
my $n    = 0;

my $FORBIDDEN_DRF = '{"detail":"You do not have permission to perform this action."}';
my $FORBIDDEN_ENV = '{"success":false,"error":"You do not have permission to perform this action",'
                  . '"code":"FORBIDDEN"}';
my $NO_TOKEN      = '{"detail":"Authentication credentials were not provided."}';
my $BAD_TOKEN     = '{"detail":"Invalid or expired token."}';

sub slurp { my $f = shift; open(my $fh, '<:raw', $f) or return ''; local $/; <$fh> }
sub new_rid { sprintf 't70-%s-%d', $run, ++$n }

# send($method, $path, $body, token => ..., rid => ..., type => ..., headers => [...])
# Returns the response; the request id sent (or none with rid => undef) is in $res->{rid}.
sub send_req {
    my ($method, $path, $body, %o) = @_;
    my $rid = exists $o{rid} ? $o{rid} : new_rid();
    my @h = (@{ delete $o{headers} || [] }, defined $rid ? ('X-Request-Id' => $rid) : ());
    delete $o{rid};
    my $res = post_json($path, $body // '', %o, method => $method, headers => \@h);
    $res->{rid} = $rid;
    return $res;
}
sub post { send_req('POST', @_) }

# The log line holding needle (a string, or a pattern), waited for: mod_log_config writes after
# the answer.
sub log_line {
    my ($file, $needle) = @_;
    for (1 .. 100) {
        my ($line) = grep { ref $needle ? /$needle/ : index($_, $needle) >= 0 } split /\n/, slurp("$logs/$file");
        return $line if defined $line;
        sleep 0.05;
    }
    return '';
}

# The audit line of a request id (the server's id, or the client's X-Request-Id), as a hash of
# its key=value fields.
sub audit_of {
    my ($rid) = @_;
    my $line = log_line('clinic_audit.log', qr/ (?:id|client_request_id)=\Q$rid\E /);
    my %f;
    while ($line =~ /(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g) {
        my ($k, $v) = ($1, $2);
        $v =~ s/^"(.*)"$/$1/;
        $f{$k} = $v;
    }
    return \%f;
}

# The audit line of $res has these fields (others: visit, patient, appointment are '-').
sub audit_is {
    my ($res, $want, $what) = @_;
    my $rid = $res->header('X-Request-Id') // '';
    my $got = audit_of($rid);
    my %want = (client => '127.0.0.1', status => $res->code,
                visit => '-', patient => '-', appointment => '-', %$want);
    if (defined $res->{rid}) { $want{client_request_id} = $rid }
    else                     { @want{'id', 'client_request_id'} = ($rid, '-') }
    is_deeply({ map { $_ => $got->{$_} } keys %want }, \%want, "$what: audit line")
        or diag(explain($got));
    ok(defined $got->{id} && $got->{id} ne ($res->{rid} // '') && $got->{id} =~ /^[\x21-\x7e]{19,}$/,
       "$what: the audit id is the server's") or diag($got->{id});
}

# The server's id of a request: its audit line's id.
sub server_id { audit_of($_[0])->{id} // '' }

sub common_json {
    my ($res, $what) = @_;
    common_headers($res, $what);
    is($res->header('X-Request-Id'), $res->{rid}, "$what: the request id is echoed")
        if defined $res->{rid};
}

my $visit = { patient => 1750, status => 'audited' };
sub visits { count_rows('visits') }

# ======================= r->user, %u, AUTH_TYPE =======================
{
    my $t = token(claims => { sub => "nurse-$run" });
    my $res = post("/visits?probe=$run", $visit, token => $t);
    is($res->code, 200, 'a verified token: 200');
    like(log_line('user_log', "probe=$run"), qr/^nurse-\Q$run\E /, '%u is the token\'s sub');

    # Require valid-user: Apache's own provider, our check_user_id hook.
    $t = token(claims => { sub => 'x', preferred_username => "jdoe-$run" });
    $res = post("/authz/user/visits?probe=u$run", $visit, token => $t);
    is($res->code, 200, 'Require valid-user with a verified token: 200');
    is($res->header('X-Test-Auth-Type'), 'Bearer', 'AUTH_TYPE is Bearer');
    like(log_line('user_log', "probe=u$run"), qr/^jdoe-\Q$run\E /,
         '%u is the ClinicUserClaim claim (preferred_username)');
    $res = post('/authz/user/visits', $visit);
    is($res->code, 401, 'Require valid-user, no token: 401');
    is($res->content, $NO_TOKEN, 'Require valid-user, no token: the DRF body');
    is($res->header('WWW-Authenticate'), 'Bearer realm="clinic"', '... and the challenge');
    common_json($res, 'Require valid-user, no token');
    $res = post('/authz/user/visits', $visit, token => token(claims => { sub => 'no-username' }));
    is($res->code, 403, 'Require valid-user, token without the user claim: 403');
    is($res->content, $FORBIDDEN_DRF, '... in the DRF shape');
}

# ======================= Require clinic-claim =======================
# allowed($what, $path, $claims): 200 and one visit; denied: 403 JSON, nothing written.
sub allowed {
    my ($what, $path, $claims) = @_;
    my $before = visits();
    my $res = post($path, $visit, token => token(claims => $claims));
    is($res->code, 200, "$what: 200") or diag($res->as_string);
    is(visits(), $before + 1, "$what: one visit written");
}
sub denied {
    my ($what, $path, $claims, %o) = @_;
    my $before = visits();
    my $res = post($path, $visit, defined $claims ? (token => token(claims => $claims)) : ());
    my ($code, $body) = @{ $o{want} || [403, $FORBIDDEN_DRF] };
    is($res->code, $code, "$what: $code");
    is($res->content, $body, "$what: body");
    common_json($res, $what);
    is(visits(), $before, "$what: nothing written");
    return $res;
}

allowed('scope string containing visits:write', '/authz/scope/visits',
        { sub => 's', scope => 'patients:read visits:write' });
denied('scope string without it', '/authz/scope/visits', { sub => 's', scope => 'visits:read visits:writer' });
denied('no scope claim', '/authz/scope/visits', { sub => 's' });
allowed('scope as an array', '/authz/scope/visits', { sub => 's', scope => ['visits:write'] });
allowed('role doctor (one of nurse doctor)', '/authz/role/visits', { sub => 'r', role => 'doctor' });
allowed('role nurse', '/authz/role/visits', { sub => 'r', role => 'nurse' });
allowed('role array containing nurse', '/authz/role/visits', { sub => 'r', role => ['intern', 'nurse'] });
denied('role intern', '/authz/role/visits', { sub => 'r', role => 'intern' });
denied('role "head nurse" is not nurse', '/authz/role/visits', { sub => 'r', role => 'head nurse' });
denied('role array without a match', '/authz/role/visits', { sub => 'r', role => ['intern', 'porter'] });
allowed('nested realm_access.roles', '/authz/nested/visits',
        { sub => 'k', realm_access => { roles => ['offline_access', 'nurse'] } });
denied('nested realm_access.roles without nurse', '/authz/nested/visits',
       { sub => 'k', realm_access => { roles => ['doctor'] } });
denied('top-level roles do not reach realm_access.roles', '/authz/nested/visits',
       { sub => 'k', roles => ['nurse'] });

denied('no token: 401 as before', '/authz/role/visits', undef, want => [401, $NO_TOKEN]);
{
    my $res = denied('a bad token: 401 as before', '/authz/role/visits',
                     { sub => 'r', role => 'nurse', exp => time - 3600 }, want => [401, $BAD_TOKEN]);
    is($res->header('WWW-Authenticate'), 'Bearer realm="clinic", error="invalid_token"',
       'a bad token: the invalid_token challenge');
}

# <RequireAll>: ip and claim both needed; <RequireAny>: either.
allowed('RequireAll: local ip and role nurse', '/authz/all/visits', { sub => 'a', role => 'nurse' });
denied('RequireAll: local ip, role doctor', '/authz/all/visits', { sub => 'a', role => 'doctor' });
denied('RequireAll: other ip, role nurse (Require ip denies: JSON too)', '/authz/elsewhere/visits',
       { sub => 'a', role => 'nurse' });
allowed('RequireAny: other ip, role nurse', '/authz/any/visits', { sub => 'a', role => 'nurse' });
denied('RequireAny: other ip, role doctor', '/authz/any/visits', { sub => 'a', role => 'doctor' });
denied('RequireAny: other ip, no token', '/authz/any/visits', undef, want => [401, $NO_TOKEN]);
allowed('RequireAny: local ip grants without the role', '/authz/local/visits', { sub => 'a', role => 'doctor' });
denied('RequireAny: local ip, but the handler still needs a token', '/authz/local/visits', undef,
       want => [401, $NO_TOKEN]);

{
    my $res = send_req('GET', '/authz/role/visits', undef);
    is($res->code, 405, 'GET under Require clinic-claim: 405, the method is checked first');
    $res = send_req('GET', '/authz/outside', undef);
    is($res->code, 403, 'Require clinic-claim outside a clinic Location: denied');
    like(slurp("$logs/error_log"), qr/Require clinic-claim outside a clinic handler's Location/,
         '... and the reason is logged');
}

# add-and-link: the envelope's FORBIDDEN, nothing written.
{
    my $uid = "dr-authz-$run";
    my $appt = new_hex24();
    $dbh->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $appt, $uid);
    my $body = { appointment_id => $appt, firstName => 'Audit', lastName => 'Patient' };
    my $pp = count_rows('practice_patients');
    my $res = post("/authz/patients/add_and_link?uid=$uid", $body,
                   token => token(claims => { userId => $uid, roles => ['nurse'] }));
    is($res->code, 403, 'add-and-link, roles without doctor: 403');
    is($res->content, $FORBIDDEN_ENV, 'add-and-link 403: the envelope with code FORBIDDEN');
    common_json($res, 'add-and-link 403');
    is(count_rows('practice_patients'), $pp, 'add-and-link 403: nothing written');
    audit_is($res, { caller => $uid, route => 'add_and_link', outcome => 'FORBIDDEN' },
             'add-and-link 403');
    $res = post("/authz/patients/add_and_link?uid=$uid", $body);
    is($res->content, '{"success":false,"error":"Missing bearer token","code":"AUTH_REQUIRED"}',
       'add-and-link under Require, no token: 401 AUTH_REQUIRED');
    $res = post("/authz/patients/add_and_link?uid=$uid", $body, token => token(claims => { userId => $uid, roles => ['doctor'] }));
    is($res->code, 200, 'add-and-link, roles containing doctor: 200');
    is(count_rows('practice_patients'), $pp + 1, 'add-and-link 200: the patient written');
}

# ======================= verified once per request =======================
{
    my $res = post('/authz/role/visits', $visit, token => token(claims => { sub => 'once', role => 'nurse' }));
    is($res->code, 200, 'provider and handler both need the token: 200');
    my $rid = server_id($res->{rid});   # the request is over
    my @lines = grep { /\[req \Q$rid\E\]/ && /verifying the bearer token/ } split /\n/, slurp("$logs/error_log");
    is(scalar @lines, 1, 'the token was verified once in the request');
}

# ======================= request id =======================
{
    my $t = token(claims => { sub => "rid-$run" });
    my $bad = token(claims => { sub => "rid-$run", exp => time - 3600 });
    my $rid = 'req-' . ('x' x 124);                          # 128 characters: kept
    my $res = post('/visits', $visit, token => $bad, rid => $rid);
    is($res->header('X-Request-Id'), $rid, 'a 128-character X-Request-Id is kept and echoed');
    my $audit = audit_of($rid);
    is($audit->{client_request_id}, $rid, 'the audit line carries it as client_request_id');
    is($audit->{outcome}, 'unauthorized', '... on the request\'s own line');
    isnt($audit->{id}, $rid, 'the audit id is not the client\'s');
    like(log_line('error_log', "[req $audit->{id}]"), qr/token rejected: expired/,
         'the error-log line of the request carries the audit id');
    is(index(slurp("$logs/error_log"), "[req $rid]"), -1, 'the client\'s id is not the log id');

    # A client cannot give its requests one id, nor reuse another's.
    my ($one, $two) = map { post('/visits', $visit, token => $t, rid => "same-$run") } 1 .. 2;
    is($one->header('X-Request-Id') . ' ' . $two->header('X-Request-Id'), "same-$run same-$run",
       'one X-Request-Id on two requests: echoed on both');
    my @same_rid;
    for (1 .. 100) {   # mod_log_config writes after the answer: wait for both lines
        @same_rid = grep { / client_request_id=same-\Q$run\E / } split /\n/, slurp("$logs/clinic_audit.log");
        last if @same_rid >= 2;
        sleep 0.05;
    }
    my @ids = map { / id=(\S+) / ? $1 : () } @same_rid;
    is(scalar @ids, 2, '... two audit lines with it as client_request_id');
    ok(@ids == 2 && $ids[0] ne $ids[1], '... under two audit ids of the server') or diag("@ids");
    my $other = server_id($one->{rid});
    my $reuse = post('/visits', $visit, token => $t, rid => $other);
    is($reuse->header('X-Request-Id'), $other, 'another request\'s audit id sent as X-Request-Id: echoed');
    log_line('clinic_audit.log', qr/ client_request_id=\Q$other\E /);   # its line is written
    my @same = grep { / id=\Q$other\E / } split /\n/, slurp("$logs/clinic_audit.log");
    is(scalar @same, 1, '... but no second audit line has that id');

    $res = post('/authz/role/visits', $visit, token => token(claims => { sub => 'r', role => 'porter' }));
    my $denied = server_id($res->{rid});
    like(log_line('error_log', "[req $denied]"), qr/./, 'a denied request logs with its id');
    my @lines = grep { /\[req \Q$denied\E\]/ } split /\n/, slurp("$logs/error_log");
    ok((grep { /AH01630/ } @lines), "mod_authz_core's own denial line carries the id");

    # Control characters and DEL: Apache's strict header parser answers 400 first.
    for my $case (['129 characters', 'r' x 129], ['a space', 'a b'], ['a tab', "a\tb"],
                  ['non-ASCII', "caf\xc3\xa9"], ['a control character', "a\x01b", 400], ['DEL', "a\x7fb", 400]) {
        my ($what, $insane, $apache) = @$case;
        my $json = '{"patient": 1750, "status": "insane"}';
        my $raw = raw_request("POST /visits HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                              . "Authorization: Bearer $t\r\nContent-Type: application/json\r\n"
                              . "X-Request-Id: $insane\r\nContent-Length: " . length($json)
                              . "\r\n\r\n$json", by_apache => $apache);
        my ($code) = $raw =~ m{^HTTP/1\.1 (\d+)};
        my ($echo) = $raw =~ /^X-Request-Id: ([^\r\n]*)\r$/mi;
        if ($apache) {
            is($code, 400, "X-Request-Id with $what: Apache refuses the request");
            is(index($raw, $insane), -1, "X-Request-Id with $what: never echoed");
            next;
        }
        is($code, 200, "X-Request-Id with $what: the request is served");
        ok(defined $echo && $echo ne $insane && $echo =~ /^[\x21-\x7e]{1,128}$/,
           "X-Request-Id with $what: replaced by a sane id") or diag($echo);
        is(index($raw, "X-Request-Id: $insane"), -1, "X-Request-Id with $what: never echoed");
        is(audit_of($echo // '')->{outcome}, 'created', "X-Request-Id with $what: audited under the new id");
    }
    is(index(slurp("$logs/clinic_audit.log"), 'r' x 129), -1, 'the insane ids are not in the audit log');

    # No X-Request-Id: mod_unique_id's UNIQUE_ID, or (where it is unset) one the module makes.
    $res = post("/visits?probe=uniq$run", $visit, token => $t, rid => undef);
    my $id = $res->header('X-Request-Id') // '';
    like(log_line('user_log', "probe=uniq$run"), qr/^rid-\Q$run\E \Q$id\E /,
         'no X-Request-Id: the answer carries UNIQUE_ID');
    isnt($id, '', '... which is not empty');
    $res = post("/authz/made/visits?probe=made$run", $visit, rid => undef,
                token => token(claims => { sub => "rid-$run", role => 'nurse' }));
    $id = $res->header('X-Request-Id') // '';
    like($id, qr/^[0-9a-f]{24}$/, 'no X-Request-Id and no UNIQUE_ID: an ObjectId the module made');
    like(log_line('user_log', "probe=made$run"), qr/^rid-\Q$run\E - /, '... UNIQUE_ID was indeed unset there');
    is(audit_of($id)->{outcome}, 'created', '... and it is the audit line\'s id');
}

# ======================= every outcome of POST /visits =======================
{
    my $sub = "desk-$run";
    my $t = token(claims => { sub => $sub });
    my $who = { caller => $sub, route => 'visits' };
    my $anon = { caller => '-', route => 'visits' };

    my $res = post('/visits', $visit, token => $t);
    my $v = jbody($res)->[0];
    audit_is($res, { %$who, outcome => 'created', visit => $v->{id}, patient => $v->{patient}{pk} },
             'visits created');
    is($v->{patient}{pk}, 1750, 'visits created: the patient asked for');

    my $key = "audit-$run";
    my $once = '{"patient": 1750, "status": "audited"}';
    $res = post('/visits', $once, token => $t, headers => ['Idempotency-Key' => $key]);
    $v = jbody($res)->[0];
    $res = post('/visits', $once, token => $t, headers => ['Idempotency-Key' => $key]);
    is($res->header('Idempotent-Replayed'), 'true', 'visits replay');
    audit_is($res, { %$who, outcome => 'replayed', visit => $v->{id}, patient => 1750 }, 'visits replayed');
    $res = post('/visits', { %$visit, status => 'other' }, token => $t, headers => ['Idempotency-Key' => $key]);
    audit_is($res, { %$who, outcome => 'key_reused' }, 'visits 422');

    my $body = '{"patient": 1750, "status": "busy"}';
    $dbh->do('INSERT INTO idempotency_keys (caller, route, key, fingerprint, status, body, created_at,'
             . ' expires_at) VALUES (?, ?, ?, ?, NULL, NULL, ?, ?)', undef, "sub:$sub", 'visits',
             "busy-$run", sha256_hex("visits\0\0$body"), strftime('%Y-%m-%dT%H:%M:%SZ', gmtime),
             strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 3600)));
    $res = post('/visits', $body, token => $t, headers => ['Idempotency-Key' => "busy-$run"]);
    is($res->code, 409, 'visits 409');
    audit_is($res, { %$who, outcome => 'in_progress' }, 'visits 409');
    $res = post('/visits', $visit, token => $t, headers => ['Idempotency-Key' => "bad key"]);
    audit_is($res, { %$who, outcome => 'invalid' }, 'visits bad Idempotency-Key');
    $res = post('/visits', { patient => 99999999, status => '' }, token => $t);
    is($res->code, 400, 'visits 400');
    audit_is($res, { %$who, outcome => 'invalid' }, 'visits 400');
    audit_is(post('/visits', $visit), { %$anon, outcome => 'unauthorized' }, 'visits 401, no token');
    audit_is(post('/visits', $visit, token => "$t.x"), { %$anon, outcome => 'unauthorized' },
             'visits 401, bad token');
    audit_is(send_req('GET', '/visits', undef, token => $t), { %$anon, outcome => 'method_not_allowed' },
             'visits 405 (checked before the token)');
    audit_is(post('/visits', $visit, token => $t, type => 'text/plain'),
             { %$who, outcome => 'unsupported_media_type' }, 'visits 415');
    $res = post('/small/visits', { patient => 1750, status => 'x' x 200 });
    is($res->code, 413, 'visits 413');
    audit_is($res, { %$anon, outcome => 'too_large' }, 'visits 413');
    audit_is(post('/authz/role/visits', $visit, token => token(claims => { sub => $sub, role => 'x' })),
             { %$who, outcome => 'forbidden' }, 'visits 403 (Require)');

    my $bad = db_kind() eq 'pgsql' ? 'infinity' : 'not a timestamp';
    $dbh->do(q{INSERT INTO patients (id, village_prefix, name, gender, date_of_birth)
               VALUES (?, 'ZZ', 'Audit Broken', 'Female', ?)}, undef, 900070, $bad);
    $res = post('/visits', { patient => 900070, status => 'x' }, token => $t);
    is($res->code, 500, 'visits 500');
    audit_is($res, { %$who, outcome => 'error' }, 'visits 500');
    $dbh->do('DELETE FROM patients WHERE id = ?', undef, 900070);

    Apache::TestRequest::module('clinic_nodb');
    $res = post('/visits', $visit);
    Apache::TestRequest::module('default');
    is($res->code, 503, 'visits 503');
    audit_is($res, { %$anon, outcome => 'unavailable' }, 'visits 503');
}

# ======================= every outcome of add-and-link =======================
{
    my $uid = "dr-audit-$run";
    my $sub = "sub-$run";
    my $t = token(claims => { sub => $sub, userId => $uid });
    my $who = { caller => $sub, route => 'add_and_link' };
    my $anon = { caller => '-', route => 'add_and_link' };
    my $appt = sub {
        my $id = new_hex24();
        $dbh->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $id, shift // $uid);
        return $id;
    };
    my $path = "/patients/add_and_link?uid=$uid";
    my $body = sub { +{ appointment_id => shift, firstName => 'Sokha', lastName => 'Audited', @_ } };
    my $link = sub { my ($b, %o) = @_; post($o{path} // $path, $b, token => $o{token} // $t, %o) };

    my $free = $appt->();
    my $res = $link->($body->($free));
    is($res->code, 200, 'add-and-link 200');
    audit_is($res, { %$who, outcome => 'LINKED', patient => jbody($res)->{data}{_id}, appointment => $free },
             'add-and-link LINKED');
    $res = $link->($body->($free));
    audit_is($res, { %$who, outcome => 'APPOINTMENT_ALREADY_LINKED', appointment => $free },
             'add-and-link 409');
    my $nowhere = new_hex24();
    $res = $link->($body->($nowhere));
    is($res->code, 404, 'add-and-link 404');
    audit_is($res, { %$who, outcome => 'APPOINTMENT_NOT_FOUND', patient => jbody($res)->{data}{_id},
                     appointment => $nowhere }, 'add-and-link 404 (the patient kept)');
    my $theirs = $appt->("other-$run");
    audit_is($link->($body->($theirs)), { %$who, outcome => 'NOT_APPOINTMENT_OWNER', appointment => $theirs },
             'add-and-link 403 not owner');
    my $mine = $appt->();
    audit_is($link->($body->($mine), path => "/patients/add_and_link?uid=someone-else"),
             { %$who, outcome => 'UID_MISMATCH', appointment => $mine }, 'add-and-link 403 uid mismatch');
    audit_is($link->({ firstName => 'A', lastName => 'B' }), { %$who, outcome => 'MISSING_APPOINTMENT_ID' },
             'add-and-link 400 appointment');
    audit_is($link->($body->($mine), path => '/patients/add_and_link'), { %$who, outcome => 'MISSING_DOCTOR_ID' },
             'add-and-link 400 uid');
    audit_is($link->({ appointment_id => $mine }), { %$who, outcome => 'MISSING_PATIENT_FIELDS' },
             'add-and-link 400 names');
    audit_is($link->($body->('zz')), { %$who, outcome => 'INVALID_FIELD' }, 'add-and-link 400 field');
    audit_is($link->('{"appointment_id":'), { %$who, outcome => 'INVALID_JSON' }, 'add-and-link 400 JSON');
    audit_is(post($path, $body->($mine)), { %$anon, outcome => 'AUTH_REQUIRED' }, 'add-and-link 401 none');
    audit_is(post($path, $body->($mine), token => "$t.x"), { %$anon, outcome => 'INVALID_TOKEN' },
             'add-and-link 401 bad');
    audit_is(send_req('GET', $path, undef, token => $t), { %$anon, outcome => 'METHOD_NOT_ALLOWED' },
             'add-and-link 405 (checked before the token)');
    audit_is($link->($body->($mine), type => 'text/plain'), { %$who, outcome => 'UNSUPPORTED_MEDIA_TYPE' },
             'add-and-link 415');
    audit_is($link->($body->($mine, medicalHistory => 'x' x 70000)), { %$who, outcome => 'BODY_TOO_LARGE' },
             'add-and-link 413');

    my $key = "link-$run";
    my $same = '{"appointment_id":"' . $mine . '","firstName":"Sokha","lastName":"Audited"}';
    my $first = $link->($same, headers => ['Idempotency-Key' => $key]);
    is($first->code, 200, 'add-and-link with a key: 200');
    $res = $link->($same, headers => ['Idempotency-Key' => $key]);
    is($res->header('Idempotent-Replayed'), 'true', 'add-and-link replay');
    audit_is($res, { %$who, outcome => 'REPLAYED', patient => jbody($first)->{data}{_id}, appointment => $mine },
             'add-and-link REPLAYED');
    audit_is($link->($body->($mine, firstName => 'Other'), headers => ['Idempotency-Key' => $key]),
             { %$who, outcome => 'IDEMPOTENCY_KEY_REUSED', appointment => $mine }, 'add-and-link 422');
    my $busy = $appt->();
    my $raw = '{"appointment_id":"' . $busy . '","firstName":"B","lastName":"C"}';
    $dbh->do('INSERT INTO idempotency_keys (caller, route, key, fingerprint, status, body, created_at,'
             . ' expires_at) VALUES (?, ?, ?, ?, NULL, NULL, ?, ?)', undef, "uid:$uid", 'add_and_link',
             "busy-$run", sha256_hex("add_and_link\0uid=$uid\0$raw"), strftime('%Y-%m-%dT%H:%M:%SZ', gmtime),
             strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 3600)));
    $res = $link->($raw, headers => ['Idempotency-Key' => "busy-$run"]);
    is($res->code, 409, 'add-and-link 409 in progress');
    audit_is($res, { %$who, outcome => 'IDEMPOTENCY_KEY_IN_PROGRESS', appointment => $busy },
             'add-and-link in progress');
    audit_is($link->($body->($busy), headers => ['Idempotency-Key' => "bad key"]),
             { %$who, outcome => 'INVALID_IDEMPOTENCY_KEY', appointment => $busy }, 'add-and-link bad key');

    Apache::TestRequest::module('clinic_nodb');
    $res = post("/patients/add_and_link?uid=$uid", $body->($busy));
    Apache::TestRequest::module('default');
    is($res->code, 503, 'add-and-link 503');
    audit_is($res, { %$anon, outcome => 'DATABASE_UNAVAILABLE', appointment => $busy }, 'add-and-link 503');
}

# ======================= the shipped formats, and what never is logged =======================
{
    # The ErrorLogFormat is shipped commented out (it is server-wide); the suite enables it.
    my @shipped = map { s/^\s+//r } grep { /^\s*(LogFormat .* clinic_audit|ErrorLogFormat )/ }
                  map { s/^(\s*)#(ErrorLogFormat )/$1$2/r } split /\n/, slurp('conf/clinic.conf');
    my @tested = map { s/^\s+//r } grep { /^\s*(LogFormat .* clinic_audit|ErrorLogFormat )/ } split /\n/, slurp('t/conf/extra.conf.in');
    is(scalar @shipped, 2, 'conf/clinic.conf ships the clinic_audit LogFormat and an ErrorLogFormat');
    unlike(slurp('conf/clinic.conf'), qr/^\s*ErrorLogFormat/m, '... the ErrorLogFormat commented out');
    is_deeply(\@tested, \@shipped, 'the suite runs with the formats conf/clinic.conf ships');
    my $audit = slurp("$logs/clinic_audit.log");
    unlike($audit, qr/Sokha|Audited|Audit Broken|patient_name/, 'no patient name in the audit log');
    unlike($audit, qr/eyJ[A-Za-z0-9_-]{8,}/, 'no token in the audit log');
    unlike($audit, qr/"status"|audited/, 'no body in the audit log');
}

done_testing();
