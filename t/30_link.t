# POST /patients/add_and_link?uid=... (docs/API.md §5): the seed's request
# byte for byte, every row of the check table in its order, what each answer
# leaves in the database, uid decoding and matching, and Unicode round trips.
use strict;
use warnings FATAL => 'all';
use utf8;

use Test::More;
use JSON::PP ();
use URI::Escape qw(uri_escape_utf8);
use Apache::TestRequest ();
use lib 't/lib';
use Clinic::Test qw(:DEFAULT common_headers);

my $dbh = dbh();
my $run = sprintf '%x%x%04x', time, $$, int rand 0x10000;   # unique per run
my $n_uid = 0;
my $json_chars = JSON::PP->new->allow_nonref;               # for character strings from DBI

# A doctor id of its own for each test, so reruns and cases never collide.
sub new_uid { my ($stem) = @_; $n_uid++; return ($stem // 'doctor_uid') . "_${run}_$n_uid" }

# A free appointment of $doctor, made here.
sub new_appt {
    my ($doctor) = @_;
    my $id = new_hex24();
    $dbh->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $id, $doctor);
    return $id;
}

sub appt_row {
    my ($id) = @_;
    return $dbh->selectrow_hashref('SELECT doctor_id, patient_id FROM appointments WHERE id = ?',
                                   undef, $id) || {};
}

sub pp_row {
    my ($id) = @_;
    return $dbh->selectrow_hashref('SELECT * FROM practice_patients WHERE id = ?', undef, $id);
}

sub pp_count      { count_rows('practice_patients') }
sub pp_count_for  { count_rows('practice_patients WHERE doctor_id = ?', $_[0]) }

sub tok_for { token(claims => { userId => $_[0] }) }

# link_req($body, uid => ..., token => ..., query => raw query string, prefix => '/sub', type => ...)
# Notes the practice_patients count first, for nothing_written().
my $pre_count;
sub link_req {
    my ($body, %o) = @_;
    $pre_count = pp_count();
    my $path = ($o{prefix} // '') . '/patients/add_and_link';
    if (exists $o{query})   { $path .= $o{query} if defined $o{query} }
    elsif (defined $o{uid}) { $path .= '?uid=' . uri_escape_utf8($o{uid}) }
    my %h = (token => $o{token});
    $h{type} = $o{type} if exists $o{type};
    return post_json($path, $body, %h);
}

sub nothing_written {
    my ($what) = @_;
    is(pp_count(), $pre_count, "$what: no practice_patients row written");
}

sub err_body {
    my ($error, $code) = @_;
    return ojson(Clinic::Test::O(success => JSON::PP::false, error => $error, code => $code));
}

sub data_of { my $b = jbody($_[0]); return ref $b eq 'HASH' && ref $b->{data} eq 'HASH' ? $b->{data} : {} }

sub decode_col {
    my ($v) = @_;
    return undef unless defined $v;
    return eval { $json_chars->decode($v) } // "undecodable: $v";
}

my $T = JSON::PP::true;
my $O = \&Clinic::Test::O;

# ---------------------------------------------------------------------------
# The seed's example request, verbatim but for the appointment and the uid.
{
    my $uid = new_uid('doctor_uid_123');
    my $appt = new_appt($uid);
    my $before = pp_count();
    my $body = <<"EOT";
{
    "appointment_id": "$appt",
    "firstName": "Jane",
    "lastName": "Smith",
    "dateOfBirth": "1990-03-20",
    "address": {
      "street": "456 Oak St",
      "city": "Boston",
      "state": "MA",
      "zipCode": "02101"
    },
    "insurance": {
      "provider": "Aetna",
      "policyNumber": "AET789012"
    },
    "medicalHistory": "No significant medical history",
    "currentMedications": "Multivitamin daily",
    "contact": {
      "phone": "+1234567892",
      "email": "[email protected]"
    }
  }
EOT
    my $res = link_req($body, uid => $uid, token => tok_for($uid));
    is($res->code, 200, 'seed request: 200');
    common_headers($res, 'seed request');
    my $pid = data_of($res)->{_id} // '';
    like($pid, qr/^[0-9a-f]{24}$/, 'seed request: _id is 24 lowercase hex digits');
    isnt($pid, $appt, 'seed request: _id is new, not the appointment id');
    my $want = ojson($O->(success => $T, data => $O->(
        _id => $pid, doctor_id => $uid, firstName => 'Jane', lastName => 'Smith',
        dateOfBirth => '1990-03-20',
        address => $O->(street => '456 Oak St', city => 'Boston', state => 'MA', zipCode => '02101'),
        insurance => $O->(provider => 'Aetna', policyNumber => 'AET789012'),
        medicalHistory => 'No significant medical history',
        currentMedications => 'Multivitamin daily',
        contact => $O->(phone => '+1234567892', email => '[email protected]'))));
    is($res->content, $want, 'seed request: body byte for byte, keys in the seed order');

    is(pp_count(), $before + 1, 'seed request: one practice_patients row written');
    is(pp_count_for($uid), 1, 'seed request: one row for this doctor');
    my $row = pp_row($pid) || {};
    is($row->{id}, $pid, 'row: id is _id');
    is($row->{doctor_id}, $uid, 'row: doctor_id');
    is($row->{first_name}, 'Jane', 'row: first_name');
    is($row->{last_name}, 'Smith', 'row: last_name');
    is($row->{date_of_birth}, '1990-03-20', 'row: date_of_birth');
    is_deeply(decode_col($row->{address}),
              { street => '456 Oak St', city => 'Boston', state => 'MA', zipCode => '02101' },
              'row: address JSON');
    is_deeply(decode_col($row->{insurance}), { provider => 'Aetna', policyNumber => 'AET789012' },
              'row: insurance JSON');
    is_deeply(decode_col($row->{contact}), { phone => '+1234567892', email => '[email protected]' },
              'row: contact JSON');
    is($row->{medical_history}, 'No significant medical history', 'row: medical_history');
    is($row->{current_medications}, 'Multivitamin daily', 'row: current_medications');
    ok(defined $row->{created_at}, 'row: created_at set');
    my $ap = appt_row($appt);
    is($ap->{patient_id}, $pid, 'appointment linked: patient_id = _id');
    is($ap->{doctor_id}, $uid, 'appointment keeps its doctor');
}

# ---------------------------------------------------------------------------
# Accepted variants.
{
    # Only the required fields: optional ones omitted from data, NULL in the row.
    my $uid = new_uid();
    my $appt = new_appt($uid);
    my $res = link_req({ appointment_id => $appt, firstName => 'Ann', lastName => 'Lee' },
                       uid => $uid, token => tok_for($uid));
    is($res->code, 200, 'required fields only: 200');
    my $pid = data_of($res)->{_id} // '';
    is($res->content, ojson($O->(success => $T, data => $O->(
        _id => $pid, doctor_id => $uid, firstName => 'Ann', lastName => 'Lee'))),
       'required fields only: absent optional fields omitted');
    my $row = pp_row($pid) || {};
    ok(!defined $row->{$_}, "required fields only: $_ NULL")
        for qw(date_of_birth address insurance contact medical_history current_medications);
    is(appt_row($appt)->{patient_id}, $pid, 'required fields only: linked');

    # null optional fields are absent; unknown fields ignored.
    $uid = new_uid();
    $appt = new_appt($uid);
    $res = link_req(qq({"appointment_id":"$appt","firstName":"Bo","lastName":"Chan","dateOfBirth":null,)
                    . q("address":null,"insurance":null,"medicalHistory":null,"currentMedications":null,)
                    . q("contact":null,"favouriteColour":"blue","extra":{"x":[1,2]}}),
                    uid => $uid, token => tok_for($uid));
    is($res->code, 200, 'null optional fields and unknown fields: 200');
    $pid = data_of($res)->{_id} // '';
    is($res->content, ojson($O->(success => $T, data => $O->(
        _id => $pid, doctor_id => $uid, firstName => 'Bo', lastName => 'Chan'))),
       'null optional fields omitted, unknown fields not echoed');
    $row = pp_row($pid) || {};
    ok(!defined $row->{$_}, "null optional field: $_ NULL")
        for qw(date_of_birth address insurance contact medical_history current_medications);

    # Nested objects echoed in the order given, not sorted; a few optional fields only.
    $uid = new_uid();
    $appt = new_appt($uid);
    $res = link_req(qq({"contact":{"z":"1","a":"2","m":"3"},"lastName":"Order","appointment_id":"$appt",)
                    . q("address":{"zipCode":"02101","street":"1 Main St"},"firstName":"Key",)
                    . q("currentMedications":"none"}),
                    uid => $uid, token => tok_for($uid));
    is($res->code, 200, 'nested order: 200');
    $pid = data_of($res)->{_id} // '';
    is($res->content,
       '{"success":true,"data":{"_id":"' . $pid . '","doctor_id":"' . $uid . '","firstName":"Key",'
       . '"lastName":"Order","address":{"zipCode":"02101","street":"1 Main St"},'
       . '"currentMedications":"none","contact":{"z":"1","a":"2","m":"3"}}}',
       'nested objects echoed in the order given; top-level keys in the seed order');
    $row = pp_row($pid) || {};
    is_deeply(decode_col($row->{contact}), { z => '1', a => '2', m => '3' }, 'nested order: contact stored');
    is_deeply(decode_col($row->{address}), { zipCode => '02101', street => '1 Main St' },
              'nested order: address stored');

    # Names trimmed.
    $uid = new_uid();
    $appt = new_appt($uid);
    $res = link_req({ appointment_id => $appt, firstName => '  Jane  ', lastName => "\t Smith \n" },
                    uid => $uid, token => tok_for($uid));
    is($res->code, 200, 'padded names: 200');
    my $d = data_of($res);
    is($d->{firstName}, 'Jane', 'firstName trimmed in the answer');
    is($d->{lastName}, 'Smith', 'lastName trimmed in the answer');
    $row = pp_row($d->{_id} // '') || {};
    is($row->{first_name}, 'Jane', 'firstName stored trimmed');
    is($row->{last_name}, 'Smith', 'lastName stored trimmed');

    # Uppercase appointment_id: accepted, the lowercase appointment is linked.
    $uid = new_uid();
    $appt = new_appt($uid);
    $res = link_req({ appointment_id => uc $appt, firstName => 'Up', lastName => 'Case' },
                    uid => $uid, token => tok_for($uid));
    is($res->code, 200, 'uppercase appointment_id: 200');
    $pid = data_of($res)->{_id} // '';
    like($pid, qr/^[0-9a-f]{24}$/, 'uppercase appointment_id: _id');
    is(appt_row($appt)->{patient_id}, $pid, 'uppercase appointment_id: the lowercase appointment is linked');
    is(count_rows('appointments WHERE id = ?', uc $appt), 0, 'no uppercase appointment appeared');

    # Names of exactly 255 characters (multi-byte ones too) are accepted.
    $uid = new_uid();
    $appt = new_appt($uid);
    $res = link_req({ appointment_id => $appt, firstName => 'a' x 255, lastName => 'é' x 255 },
                    uid => $uid, token => tok_for($uid));
    is($res->code, 200, 'names of 255 characters (lastName 510 bytes): 200');
    $row = pp_row(data_of($res)->{_id} // '') || {};
    is($row->{first_name}, 'a' x 255, '255-character firstName stored');
    is($row->{last_name}, 'é' x 255, '255-character lastName stored');

    # A uid of 128 characters is accepted.
    $uid = substr(new_uid('u') . ('x' x 128), 0, 128);
    $appt = new_appt($uid);
    $res = link_req({ appointment_id => $appt, firstName => 'Long', lastName => 'Uid' },
                    uid => $uid, token => tok_for($uid));
    is($res->code, 200, 'uid of 128 characters: 200');
    is(data_of($res)->{doctor_id}, $uid, 'uid of 128 characters echoed');
}

# ---------------------------------------------------------------------------
# Accents, CJK and emoji round-trip byte for byte.
{
    my $uid = new_uid();
    my $appt = new_appt($uid);
    my $res = link_req({ appointment_id => $appt, firstName => 'Zoë Ñúñez', lastName => '山田太郎 🩺',
                         contact => { note => 'café ☕' } },
                       uid => $uid, token => tok_for($uid));
    is($res->code, 200, 'Unicode names: 200');
    my $pid = data_of($res)->{_id} // '';
    is($res->content, ojson($O->(success => $T, data => $O->(
        _id => $pid, doctor_id => $uid, firstName => 'Zoë Ñúñez', lastName => '山田太郎 🩺',
        contact => $O->(note => 'café ☕')))),
       'Unicode names: response bytes are the UTF-8 of the names, unescaped');
    my $row = pp_row($pid) || {};
    is($row->{first_name}, 'Zoë Ñúñez', 'Unicode firstName stored exactly');
    is($row->{last_name}, '山田太郎 🩺', 'Unicode lastName stored exactly');
    is_deeply(decode_col($row->{contact}), { note => 'café ☕' }, 'Unicode contact stored exactly');
}

# ---------------------------------------------------------------------------
# uid is percent-decoded, matched decoded and stored decoded.
{
    my $uid = "dr house/x-$run";
    my $appt = new_appt($uid);
    my $res = link_req({ appointment_id => $appt, firstName => 'Greg', lastName => 'House' },
                       query => "?uid=dr%20house%2Fx-$run", token => tok_for($uid));
    is($res->code, 200, 'uid=dr%20house%2Fx: 200, matched the decoded token claim');
    my $d = data_of($res);
    is($d->{doctor_id}, $uid, 'decoded uid echoed as doctor_id');
    like($res->content, qr/"doctor_id":"dr house\/x-\Q$run\E"/, 'doctor_id echoed with a plain slash');
    is((pp_row($d->{_id} // '') || {})->{doctor_id}, $uid, 'decoded uid stored as doctor_id');
    is(appt_row($appt)->{patient_id}, $d->{_id}, 'the decoded doctor owns and links the appointment');

    # Percent-encoded UTF-8 in uid.
    $uid = "médecin-山-$run";
    $appt = new_appt($uid);
    $res = link_req({ appointment_id => $appt, firstName => 'Marie', lastName => 'Curie' },
                    uid => $uid, token => tok_for($uid));
    is($res->code, 200, 'percent-encoded UTF-8 uid: 200');
    $d = data_of($res);
    is($d->{doctor_id}, $uid, 'UTF-8 uid echoed decoded');
    is((pp_row($d->{_id} // '') || {})->{doctor_id}, $uid, 'UTF-8 uid stored decoded');

    # Other query parameters around uid do not matter.
    $uid = new_uid();
    $appt = new_appt($uid);
    $res = link_req({ appointment_id => $appt, firstName => 'Q', lastName => 'S' },
                    query => "?foo=1&uid=$uid&bar=2", token => tok_for($uid));
    is($res->code, 200, 'uid among other query parameters: 200');
    is(data_of($res)->{doctor_id}, $uid, 'uid among other query parameters: echoed');
}

# ---------------------------------------------------------------------------
# The check table, in order. None of these writes anything.
my $pp_before = pp_count();
my $mine = new_uid();                 # a doctor for the validation cases
my $mine_tok = tok_for($mine);
my $free = new_appt($mine);           # must still be free at the end
my $std = sub { +{ appointment_id => $free, firstName => 'Val', lastName => 'Id', @_ } };

sub expect_error {
    my ($what, $res, $status, $error, $code) = @_;
    is($res->code, $status, "$what: $status");
    is($res->content, err_body($error, $code), "$what: body");
    is($res->header('Content-Type'), 'application/json', "$what: JSON");
    nothing_written($what);
}

# 1: authentication.
{
    my $res = link_req($std->(), uid => $mine);
    expect_error('no token', $res, 401, 'Missing bearer token', 'AUTH_REQUIRED');
    is($res->header('WWW-Authenticate'), 'Bearer realm="clinic"', 'no token: challenge');
    $res = link_req($std->(), uid => $mine, token => $mine_tok . 'x');
    expect_error('bad token', $res, 401, 'Invalid or expired token', 'INVALID_TOKEN');
    like($res->header('WWW-Authenticate') // '', qr/error="invalid_token"/, 'bad token: challenge');
    $res = link_req({}, token => undef);
    expect_error('no token, empty body, no uid: 1 answers first', $res, 401, 'Missing bearer token',
                 'AUTH_REQUIRED');
}

# 2: media type, size, JSON.
{
    my $res = link_req($std->(), uid => $mine, token => $mine_tok, type => 'text/plain');
    is($res->code, 415, 'text/plain: 415');
    my $b = jbody($res) || {};
    is($b->{code}, 'UNSUPPORTED_MEDIA_TYPE', 'text/plain: code');
    ok(defined $b->{success} && !$b->{success}, 'text/plain: success false');
    common_headers($res, '415');
    nothing_written('text/plain');

    $res = link_req('{}', uid => $mine, token => $mine_tok, type => 'text/plain');
    is($res->code, 415, 'text/plain with an empty object: 415 before the field checks');
    nothing_written('text/plain with an empty object');

    $res = link_req('{"appointment_id": "' . $free . '", "firstName": ', uid => $mine, token => $mine_tok);
    is($res->code, 400, 'malformed JSON: 400');
    is((jbody($res) || {})->{code}, 'INVALID_JSON', 'malformed JSON: code');
    like($res->content, qr/^\{"success":false,"error":"[^"]+","code":"INVALID_JSON"\}$/, 'malformed JSON: envelope');
    nothing_written('malformed JSON');

    $res = link_req('[' . ojson($O->(appointment_id => $free, firstName => 'A', lastName => 'B')) . ']',
                    uid => $mine, token => $mine_tok);
    is($res->code, 400, 'body a list: 400');
    is((jbody($res) || {})->{code}, 'INVALID_JSON', 'body a list: code');
    nothing_written('body a list');

    $res = link_req('', uid => $mine, token => $mine_tok);
    is($res->code, 400, 'empty body: 400');
    is((jbody($res) || {})->{code}, 'INVALID_JSON', 'empty body: code');
    nothing_written('empty body');

    $res = link_req(ojson($O->(appointment_id => $free, firstName => 'Big', lastName => 'Body',
                               medicalHistory => 'x' x 70000)), uid => $mine, token => $mine_tok);
    is($res->code, 413, 'body over 64 KiB: 413');
    is((jbody($res) || {})->{code}, 'BODY_TOO_LARGE', 'body over 64 KiB: code');
    nothing_written('body over 64 KiB');
}

# 405.
{
    $pre_count = pp_count();
    my $res = Apache::TestRequest::GET("/patients/add_and_link?uid=$mine", Authorization => "Bearer $mine_tok");
    expect_error('GET', $res, 405, 'Method not allowed', 'METHOD_NOT_ALLOWED');
    is($res->header('Allow'), 'POST', 'GET: Allow: POST');
    $res = Apache::TestRequest::GET("/patients/add_and_link?uid=$mine");
    is($res->code, 405, 'GET without a token: 405 before authentication');
    $res = send_method(DELETE => "/patients/add_and_link?uid=$mine");
    is($res->code, 405, 'DELETE: 405');
}

# 3: appointment_id missing, empty or null; it answers before uid and names.
for my $c (['missing', {}],
           ['empty', { appointment_id => '' }],
           ['null', { appointment_id => undef }]) {
    my ($how, $extra) = @$c;
    my $body = { firstName => 'Val', lastName => 'Id', %$extra };
    expect_error("appointment_id $how", link_req($body, uid => $mine, token => $mine_tok),
                 400, 'Missing appointment_id', 'MISSING_APPOINTMENT_ID');
    expect_error("appointment_id $how, no uid, no names",
                 link_req($extra, token => $mine_tok), 400, 'Missing appointment_id',
                 'MISSING_APPOINTMENT_ID');
    expect_error("appointment_id $how, wrong-typed other fields",
                 link_req({ %$extra, firstName => 42, dateOfBirth => 'x' }, uid => $mine,
                          token => $mine_tok), 400, 'Missing appointment_id', 'MISSING_APPOINTMENT_ID');
}

# 4: uid missing or empty; it answers before the names.
for my $c (['no query string', undef], ['uid= empty', '?uid='], ['uid absent, other parameters', '?foo=bar'],
           ['uid= empty among others', '?a=1&uid=&b=2']) {
    my ($how, $q) = @$c;
    expect_error("$how", link_req($std->(), query => $q, token => $mine_tok),
                 400, 'Missing doctor_id (uid)', 'MISSING_DOCTOR_ID');
    expect_error("$how, names missing too", link_req({ appointment_id => $free }, query => $q,
                 token => $mine_tok), 400, 'Missing doctor_id (uid)', 'MISSING_DOCTOR_ID');
}

# 5: firstName or lastName missing, empty, blank or null.
for my $c (['firstName missing', { firstName => undef }, 1],
           ['lastName missing', { lastName => undef }, 1],
           ['both missing', { firstName => undef, lastName => undef }, 1],
           ['firstName empty', { firstName => '' }],
           ['lastName empty', { lastName => '' }],
           ['firstName whitespace', { firstName => "  \t\n " }],
           ['lastName whitespace', { lastName => ' ' }],
           ['firstName null', { firstName => undef }],
           ['lastName null', { lastName => undef }]) {
    my ($how, $over, $delete) = @$c;
    my $body = $std->(%$over);
    if ($delete) { delete $body->{$_} for keys %$over }
    expect_error($how, link_req($body, uid => $mine, token => $mine_tok),
                 400, 'Missing required patient fields (firstName, lastName)', 'MISSING_PATIENT_FIELDS');
}
expect_error('names missing and dateOfBirth invalid: 5 before 6',
             link_req({ appointment_id => $free, dateOfBirth => 'nope', contact => 5 }, uid => $mine,
                      token => $mine_tok),
             400, 'Missing required patient fields (firstName, lastName)', 'MISSING_PATIENT_FIELDS');
expect_error('names missing and appointment_id malformed: 5 before 6',
             link_req({ appointment_id => 'xyz' }, uid => $mine, token => $mine_tok),
             400, 'Missing required patient fields (firstName, lastName)', 'MISSING_PATIENT_FIELDS');

# 6: a field of the wrong type, length or form, each named.
{
    my $hex23 = substr($free, 0, 23);
    my @cases = (
        ['appointment_id 123',        'appointment_id', { appointment_id => 123 }],
        ['appointment_id "xyz"',      'appointment_id', { appointment_id => 'xyz' }],
        ['appointment_id 23 hex',     'appointment_id', { appointment_id => $hex23 }],
        ['appointment_id 25 hex',     'appointment_id', { appointment_id => $free . 'a' }],
        ['appointment_id non-hex',    'appointment_id', { appointment_id => 'g' . substr($free, 1) }],
        ['appointment_id an object',  'appointment_id', { appointment_id => { id => $free } }],
        ['firstName 42',              'firstName', { firstName => 42 }],
        ['firstName true',            'firstName', { firstName => JSON::PP::true }],
        ['lastName []',               'lastName', { lastName => [] }],
        ['lastName {}',               'lastName', { lastName => {} }],
        ['firstName 256 chars',       'firstName', { firstName => 'a' x 256 }],
        ['lastName 256 chars (é)',    'lastName', { lastName => 'é' x 256 }],
        ['dateOfBirth 1990-02-30',    'dateOfBirth', { dateOfBirth => '1990-02-30' }],
        ['dateOfBirth 1991-02-29',    'dateOfBirth', { dateOfBirth => '1991-02-29' }],
        ['dateOfBirth 1990-13-01',    'dateOfBirth', { dateOfBirth => '1990-13-01' }],
        ['dateOfBirth 20-03-1990',    'dateOfBirth', { dateOfBirth => '20-03-1990' }],
        ['dateOfBirth with a time',   'dateOfBirth', { dateOfBirth => '1990-03-20T00:00:00Z' }],
        ['dateOfBirth 19900320',      'dateOfBirth', { dateOfBirth => 19900320 }],
        ['medicalHistory 5',          'medicalHistory', { medicalHistory => 5 }],
        ['medicalHistory []',         'medicalHistory', { medicalHistory => ['a'] }],
        ['currentMedications {}',     'currentMedications', { currentMedications => {} }],
        ['address "x"',               'address', { address => 'x' }],
        ['address {"a":1}',           'address', { address => { a => 1 } }],
        ['address {"a":{"b":"c"}}',   'address', { address => { a => { b => 'c' } } }],
        ['insurance []',              'insurance', { insurance => [] }],
        ['insurance 7',               'insurance', { insurance => 7 }],
        ['contact {"a":null}',        'contact', { contact => { a => undef } }],
        ['contact {"a":["b"]}',       'contact', { contact => { a => ['b'] } }],
    );
    for my $c (@cases) {
        my ($what, $field, $over) = @$c;
        my $res = link_req($std->(%$over), uid => $mine, token => $mine_tok);
        is($res->code, 400, "$what: 400");
        my $b = jbody($res) || {};
        is($b->{code}, 'INVALID_FIELD', "$what: INVALID_FIELD");
        like($b->{error} // '', qr/\b\Q$field\E\b/, "$what: error names $field");
        like($res->content, qr/^\{"success":false,"error":"[^"]*","code":"INVALID_FIELD"\}$/,
             "$what: envelope");
        nothing_written($what);
    }

    my $long = 'd' x 129;
    my $res = link_req($std->(), uid => $long, token => tok_for($long));
    is($res->code, 400, 'uid of 129 characters: 400');
    my $b = jbody($res) || {};
    is($b->{code}, 'INVALID_FIELD', 'uid of 129 characters: INVALID_FIELD');
    like($b->{error} // '', qr/\buid\b/, 'uid of 129 characters: error names uid');
    nothing_written('uid of 129 characters');

    $res = link_req($std->(), query => '?uid=%zz', token => tok_for('%zz'));
    is($res->code, 400, 'uid with broken percent-encoding: 400');
    $b = jbody($res) || {};
    is($b->{code}, 'INVALID_FIELD', 'uid with broken percent-encoding: INVALID_FIELD');
    like($b->{error} // '', qr/\buid\b/, 'uid with broken percent-encoding: error names uid');
    nothing_written('uid with broken percent-encoding');

    # A repeated uid is ambiguous (which doctor?): refused, even when the first matches.
    for my $q ("?uid=$mine&uid=doc_b", "?uid=$mine&x=1&uid=$mine", "?uid=$mine;uid=doc_b") {
        $res = link_req($std->(), query => $q, token => $mine_tok);
        expect_error("repeated uid ($q)", $res, 400, 'Invalid field: uid (given more than once)',
                     'INVALID_FIELD');
    }
}

# 7: the token's uid claim.
{
    my $other = tok_for(new_uid('someone_else'));
    expect_error('claim differs from uid', link_req($std->(), uid => $mine, token => $other),
                 403, 'Token does not match doctor_id (uid)', 'UID_MISMATCH');
    expect_error('claim absent', link_req($std->(), uid => $mine, token => token(claims => { sub => $mine })),
                 403, 'Token does not match doctor_id (uid)', 'UID_MISMATCH');
    expect_error('claim null', link_req($std->(), uid => $mine, token => token(claims => { userId => undef })),
                 403, 'Token does not match doctor_id (uid)', 'UID_MISMATCH');
    expect_error('claim a prefix of uid', link_req($std->(), uid => $mine,
                 token => tok_for(substr($mine, 0, -1))),
                 403, 'Token does not match doctor_id (uid)', 'UID_MISMATCH');
    expect_error('claim differs only in case', link_req($std->(), uid => $mine, token => tok_for(uc $mine)),
                 403, 'Token does not match doctor_id (uid)', 'UID_MISMATCH');
    expect_error('claim matches the undecoded uid only',
                 link_req($std->(), query => '?uid=a%2Fb', token => tok_for('a%2Fb')),
                 403, 'Token does not match doctor_id (uid)', 'UID_MISMATCH');
    expect_error('/sub/: userId matches but sub does not',
                 link_req($std->(), uid => $mine, prefix => '/sub',
                          token => token(claims => { userId => $mine, sub => 'other' })),
                 403, 'Token does not match doctor_id (uid)', 'UID_MISMATCH');

    # Numeric claims compare as their decimal text.
    my $num = '42' . time . sprintf('%05d', $$ % 100000);   # unique, fits in 64 bits
    my $appt = new_appt($num);
    my $res = link_req({ appointment_id => $appt, firstName => 'Num', lastName => 'Claim' },
                       uid => $num, token => token(claims => qq({"userId": $num})));
    is($res->code, 200, 'numeric claim equal to uid: passes check 7');
    is(data_of($res)->{doctor_id}, $num, 'numeric claim: doctor_id is the uid text');
    is(appt_row($appt)->{patient_id}, data_of($res)->{_id}, 'numeric claim: linked');
    expect_error('numeric claim vs uid with a leading zero',
                 link_req($std->(), query => "?uid=0$num", token => token(claims => qq({"userId": $num}))),
                 403, 'Token does not match doctor_id (uid)', 'UID_MISMATCH');

    # /sub/ uses the sub claim.
    my $uid = new_uid();
    $appt = new_appt($uid);
    $res = link_req({ appointment_id => $appt, firstName => 'Sub', lastName => 'Claim' }, uid => $uid,
                    prefix => '/sub', token => token(claims => { sub => $uid, userId => 'not-this-one' }));
    is($res->code, 200, '/sub/: the sub claim matches: 200');
    is(appt_row($appt)->{patient_id}, data_of($res)->{_id}, '/sub/: linked');

    # /nouid/: any valid token passes check 7.
    $uid = new_uid();
    $appt = new_appt($uid);
    $res = link_req({ appointment_id => $appt, firstName => 'No', lastName => 'Check' }, uid => $uid,
                    prefix => '/nouid', token => token(claims => { sub => 'somebody', userId => 'else' }));
    is($res->code, 200, '/nouid/: a token of another user passes check 7');
    is(appt_row($appt)->{patient_id}, data_of($res)->{_id}, '/nouid/: linked');
    $appt = new_appt($uid);
    $res = link_req({ appointment_id => $appt, firstName => 'No', lastName => 'Claims' }, uid => $uid,
                    prefix => '/nouid', token => token(claims => { role => 'x' }));
    is($res->code, 200, '/nouid/: a token without uid claims passes check 7');
    # ... but the ownership check still applies there.
    $res = link_req({ appointment_id => new_appt(new_uid('owner')), firstName => 'No', lastName => 'Owner' },
                    uid => $uid, prefix => '/nouid', token => token(claims => { role => 'x' }));
    expect_error('/nouid/: appointment of another doctor', $res, 403,
                 'Doctor does not own this appointment', 'NOT_APPOINTMENT_OWNER');
    $pp_before += 4;   # the four successes above write on purpose
}

# Check order interplay.
{
    my $other = tok_for(new_uid('intruder'));
    expect_error('fails 5 and 7: 5 answers',
                 link_req({ appointment_id => $free, firstName => 'Only' }, uid => $mine, token => $other),
                 400, 'Missing required patient fields (firstName, lastName)', 'MISSING_PATIENT_FIELDS');
    my $res = link_req($std->(dateOfBirth => '1990-02-30'), uid => $mine, token => $other);
    is($res->code, 400, 'fails 6 and 7: 400');
    is((jbody($res) || {})->{code}, 'INVALID_FIELD', 'fails 6 and 7: 6 answers');
    nothing_written('fails 6 and 7');

    my $owner = new_uid('owner');
    my $theirs = new_appt($owner);
    expect_error('fails 7 and 9: 7 answers',
                 link_req({ appointment_id => $theirs, firstName => 'A', lastName => 'B' }, uid => $mine,
                          token => $other),
                 403, 'Token does not match doctor_id (uid)', 'UID_MISMATCH');
    ok(!defined appt_row($theirs)->{patient_id}, 'fails 7 and 9: appointment untouched');
    my $before = pp_count();
    expect_error('fails 7 and 8: 7 answers, no patient created',
                 link_req({ appointment_id => new_hex24(), firstName => 'A', lastName => 'B' }, uid => $mine,
                          token => $other),
                 403, 'Token does not match doctor_id (uid)', 'UID_MISMATCH');
    is(pp_count(), $before, 'fails 7 and 8: no practice_patients row');
}

is(pp_count(), $pp_before, 'no 400/401/403/405/413/415 above wrote a practice_patients row');
is(pp_count_for($mine), 0, 'no row for the validation doctor');
ok(!defined appt_row($free)->{patient_id}, 'the validation appointment is still free');

# 8: no such appointment: the patient is created, kept, and returned.
{
    my $uid = new_uid();
    my $missing = new_hex24();
    my $before = pp_count();
    my $res = link_req({ appointment_id => $missing, firstName => 'Lost', lastName => 'Patient',
                         dateOfBirth => '2000-01-31', contact => { phone => '+1' } },
                       uid => $uid, token => tok_for($uid));
    is($res->code, 404, 'no such appointment: 404');
    common_headers($res, '404');
    my $pid = data_of($res)->{_id} // '';
    like($pid, qr/^[0-9a-f]{24}$/, '404: data has the new _id');
    is($res->content, ojson($O->(success => JSON::PP::false,
        error => 'Appointment not found (patient created but not linked)', code => 'APPOINTMENT_NOT_FOUND',
        data => $O->(_id => $pid, doctor_id => $uid, firstName => 'Lost', lastName => 'Patient',
                     dateOfBirth => '2000-01-31', contact => $O->(phone => '+1')))),
       '404: body byte for byte, with the created patient');
    is(pp_count(), $before + 1, '404: exactly one practice_patients row written');
    is(pp_count_for($uid), 1, '404: one row for this doctor');
    my $row = pp_row($pid) || {};
    is($row->{doctor_id}, $uid, '404: kept row doctor_id');
    is($row->{first_name}, 'Lost', '404: kept row first_name');
    is($row->{last_name}, 'Patient', '404: kept row last_name');
    is($row->{date_of_birth}, '2000-01-31', '404: kept row date_of_birth');
    is_deeply(decode_col($row->{contact}), { phone => '+1' }, '404: kept row contact');
    is(count_rows('appointments WHERE id = ?', $missing), 0, '404: no appointment appeared');
    is(count_rows('appointments WHERE patient_id = ?', $pid), 0, '404: the patient is linked to nothing');
}

# 9: appointment of another doctor: nothing written.
{
    my $uid = new_uid();
    my $owner = new_uid('owner');
    my $theirs = new_appt($owner);
    my $before = pp_count();
    my $res = link_req({ appointment_id => $theirs, firstName => 'Not', lastName => 'Mine' },
                       uid => $uid, token => tok_for($uid));
    expect_error('appointment of another doctor', $res, 403, 'Doctor does not own this appointment',
                 'NOT_APPOINTMENT_OWNER');
    is(pp_count(), $before, '403 owner: practice_patients count unchanged');
    is(pp_count_for($uid), 0, '403 owner: no row for this doctor');
    my $ap = appt_row($theirs);
    ok(!defined $ap->{patient_id}, '403 owner: appointment still free');
    is($ap->{doctor_id}, $owner, '403 owner: appointment still the owner\'s');

    # The owner can still link it afterwards.
    $res = link_req({ appointment_id => $theirs, firstName => 'Is', lastName => 'Theirs' },
                    uid => $owner, token => tok_for($owner));
    is($res->code, 200, 'the owner links it afterwards: 200');
    my $pid = data_of($res)->{_id} // '';

    # Owned by another doctor AND already linked: 9 answers before 10.
    $before = pp_count();
    $res = link_req({ appointment_id => $theirs, firstName => 'Late', lastName => 'Comer' },
                    uid => $uid, token => tok_for($uid));
    expect_error('linked appointment of another doctor: 9 before 10', $res, 403,
                 'Doctor does not own this appointment', 'NOT_APPOINTMENT_OWNER');
    is(pp_count(), $before, '403 owner (linked): count unchanged');
    is(appt_row($theirs)->{patient_id}, $pid, '403 owner (linked): link unchanged');
}

# 10: appointment already linked: nothing written.
{
    my $uid = new_uid();
    my $appt = new_appt($uid);
    my $res = link_req({ appointment_id => $appt, firstName => 'First', lastName => 'Come' },
                       uid => $uid, token => tok_for($uid));
    is($res->code, 200, 'first link: 200');
    my $pid = data_of($res)->{_id} // '';
    my $before = pp_count();
    $res = link_req({ appointment_id => $appt, firstName => 'Second', lastName => 'Come' },
                    uid => $uid, token => tok_for($uid));
    expect_error('appointment already linked', $res, 409, 'Appointment already linked to a patient',
                 'APPOINTMENT_ALREADY_LINKED');
    common_headers($res, '409');
    is(pp_count(), $before, '409: practice_patients count unchanged');
    is(pp_count_for($uid), 1, '409: still one row for this doctor');
    is(count_rows('practice_patients WHERE doctor_id = ? AND first_name = ?', $uid, 'Second'), 0,
       '409: the second patient is not stored');
    is(appt_row($appt)->{patient_id}, $pid, '409: the first link stands');

    # Uppercase id of the linked appointment: same answer.
    $res = link_req({ appointment_id => uc $appt, firstName => 'Third', lastName => 'Come' },
                    uid => $uid, token => tok_for($uid));
    expect_error('already linked, uppercase id', $res, 409, 'Appointment already linked to a patient',
                 'APPOINTMENT_ALREADY_LINKED');
    is(pp_count(), $before, '409 (uppercase id): count unchanged');
}

done_testing();
