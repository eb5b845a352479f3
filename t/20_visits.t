# POST /visits (docs/API.md §4): the seed's request, the success body
# byte for byte, every row of the error table, and that failures write nothing.
use strict;
use warnings FATAL => 'all';
use utf8;

use Test::More;
use Apache::TestRequest ();
use lib 't/lib';
use Clinic::Test qw(:DEFAULT common_headers);

my $tok = token(claims => { sub => 'registration-desk' });
my $dbh = dbh();
$dbh->do("SET TIME ZONE 'UTC'") if db_kind() eq 'pgsql';

sub visits_count { count_rows('visits') }

# A stored timestamp as UTC ISO text, whichever database wrote it.
sub utc_text {
    my ($t) = @_;
    $t =~ s/ /T/;
    $t =~ s/\+00(:00)?$/Z/;
    return $t;
}

sub expected_patient_1750 {
    Clinic::Test::O(
        model => 'clinicmodels.patient', pk => 1750, village_prefix => 'SV',
        name => 'patient_name', identification_number => '', contact_no => '',
        gender => 'Female', date_of_birth => '1990-03-20T00:00:00+07:00', poor => 'No',
        bs2 => 'No', sabai => 'No', drug_allergy => 'None',
        face_encodings => '4f993c46-d194-40d2-90f4-79e21c556fee',
        picture => 'https://img.example.org/media/patients/1750.jpg',
        filter_string => 'SV1750SV1750  patient_name', patient_id => 'SV1750', confidence => '');
}

# --- the seed's request, verbatim ---
{
    my $before = visits_count();
    my $res = post_json('/visits',
        '{"patient": 1750, "status": "started", "visit_date": "21 November 2026 14:05"}',
        token => $tok);
    is($res->code, 200, 'seed request: 200');
    common_headers($res, 'seed request');
    my $id = (jbody($res) || [{}])->[0]{id} // -1;
    my $want = ojson([Clinic::Test::O(id => $id + 0, patient => expected_patient_1750(),
                                      date => '2026-11-21T14:05:00+07:00', status => 'started')]);
    is($res->content, $want, 'seed request: body byte for byte, keys in order');
    is(visits_count(), $before + 1, 'seed request: one row written');
    my $row = $dbh->selectrow_hashref('SELECT patient_id, date, status FROM visits WHERE id = ?',
                                      undef, $id);
    is($row->{patient_id}, 1750, 'row: patient_id');
    is($row->{status}, 'started', 'row: status');
    is(utc_text($row->{date}), '2026-11-21T07:05:00Z', 'row: date stored in UTC');
}

# --- accepted variants ---
{
    my $res = post_json('/visits', { patient => '1750', status => "  checked in \n",
                                     date => '2026-01-02T03:04:05.25+07:00' }, token => $tok);
    is($res->code, 200, 'pk as digit string and the date alias: 200');
    my $v = jbody($res)->[0];
    is($v->{date}, '2026-01-02T03:04:05.250000+07:00', 'fractional seconds as six digits');
    is($v->{status}, 'checked in', 'status trimmed');
    my ($stored) = $dbh->selectrow_array('SELECT status FROM visits WHERE id = ?', undef, $v->{id});
    is($stored, 'checked in', 'trimmed status stored');

    $res = post_json('/utc/visits', { patient => 2, status => 'started' }, token => $tok);
    is($res->code, 200, 'no visit_date: 200');
    $v = jbody($res)->[0];
    like($v->{date}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$/, 'now, in UTC with Z');
    my ($y, $mo, $d, $h, $mi, $s) = $v->{date} =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)/;
    require Time::Local;
    my $t = Time::Local::timegm($s, $mi, $h, $d, $mo - 1, $y);
    cmp_ok(abs($t - time), '<', 10, 'defaulted date is now');
    is($v->{patient}{contact_no}, '012345678', 'patient 2 contact');
    is($v->{patient}{filter_string}, 'SV0002SV2 012345678 Dara Pich', 'filter_string with contact');
    is($v->{patient}{patient_id}, 'SV0002', 'patient_id zero-padded to 4 digits');
    ok(!defined $v->{patient}{picture}, 'NULL picture is null');
    is($v->{patient}{date_of_birth}, '1984-07-01T17:00:00Z', 'date_of_birth in UTC offset');

    $res = post_json('/visits', { patient => 3, status => 'é' x 100 }, token => $tok);
    is($res->code, 200, 'status of 100 characters (200 bytes): 200');
    $v = jbody($res)->[0]{patient};
    is($v->{picture}, 'https://img.example.org/3.jpg', 'absolute picture URL as is');
    ok(!defined $v->{identification_number} && !defined $v->{contact_no},
                   'NULL columns are null');
    is($v->{filter_string}, 'KP0003KP3  Srey Mom', 'null contact counts as empty');
}

# --- every row of the error table; none of them writes ---
my $before = visits_count();
my @cases = (
    ['malformed JSON', '{"patient": 1750, "status": ', qr/^\{"detail":"JSON parse error - /],
    ['empty body', '', qr/^\{"detail":"JSON parse error - /],
    ['invalid UTF-8', qq({"patient": 1750, "status": "\xff\xfe"}), qr/^\{"detail":"JSON parse error - /],
    ['duplicate keys', '{"patient": 1750, "patient": 2, "status": "x"}', qr/^\{"detail":"JSON parse error - /],
    ['\u0000 in a string', '{"patient": 1750, "status": "a\u0000b"}', qr/^\{"detail":"JSON parse error - /],
    ['nesting too deep', '{"patient": 1750, "status": "x", "deep": ' . ('[' x 100) . (']' x 100) . '}',
     qr/^\{"detail":"JSON parse error - /],
    ['body a list', '[1, 2]', '{"non_field_errors":["Invalid data. Expected a dictionary, but got list."]}'],
    ['body a string', '"x"', '{"non_field_errors":["Invalid data. Expected a dictionary, but got str."]}'],
    ['patient missing', '{"status": "started"}', '{"patient":["This field is required."]}'],
    ['patient null', '{"patient": null, "status": "started"}', '{"patient":["This field may not be null."]}'],
    ['patient wrong type (str)', '{"patient": "abc", "status": "started"}',
     '{"patient":["Incorrect type. Expected pk value, received str."]}'],
    ['patient wrong type (float)', '{"patient": 1.5, "status": "started"}',
     '{"patient":["Incorrect type. Expected pk value, received float."]}'],
    ['patient wrong type (bool)', '{"patient": true, "status": "started"}',
     '{"patient":["Incorrect type. Expected pk value, received bool."]}'],
    ['no such patient', '{"patient": 99, "status": "started"}',
     '{"patient":["Invalid pk \"99\" - object does not exist."]}'],
    ['patient -1', '{"patient": -1, "status": "started"}',
     '{"patient":["Invalid pk \"-1\" - object does not exist."]}'],
    ['patient 2^63', '{"patient": 9223372036854775808, "status": "started"}', qr/^\{"detail":"JSON parse error - /],
    ['patient beyond int32', '{"patient": 2147483648, "status": "started"}',
     '{"patient":["Invalid pk \"2147483648\" - object does not exist."]}'],
    ['status missing', '{"patient": 1750}', '{"status":["This field is required."]}'],
    ['status null', '{"patient": 1750, "status": null}', '{"status":["This field may not be null."]}'],
    ['status blank', '{"patient": 1750, "status": " \t "}', '{"status":["This field may not be blank."]}'],
    ['status too long', '{"patient": 1750, "status": "' . ('x' x 101) . '"}',
     '{"status":["Ensure this field has no more than 100 characters."]}'],
    ['status a number', '{"patient": 1750, "status": 5}', '{"status":["Not a valid string."]}'],
    ['bad visit_date', '{"patient": 1750, "status": "started", "visit_date": "31 February 2026 10:00"}',
     '{"visit_date":["Datetime has wrong format. Use one of these formats instead: DD MMMM YYYY HH:mm, YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."]}'],
    # Years 0001-9999 in UTC (stored) and in the answer's offset (+07:00 on /visits).
    ['visit_date before year 1 in UTC', '{"patient": 1750, "status": "started", "visit_date": "0001-01-01T00:30+01:00"}',
     '{"visit_date":["Datetime has wrong format. Use one of these formats instead: DD MMMM YYYY HH:mm, YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."]}'],
    ['visit_date after 9999 in the answer\'s offset', '{"patient": 1750, "status": "started", "visit_date": "9999-12-31T20:00Z"}',
     '{"visit_date":["Datetime has wrong format. Use one of these formats instead: DD MMMM YYYY HH:mm, YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."]}'],
    ['bad date alias', '{"patient": 1750, "status": "started", "date": "yesterday"}',
     '{"date":["Datetime has wrong format. Use one of these formats instead: DD MMMM YYYY HH:mm, YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."]}'],
    ['both visit_date and date', '{"patient": 1750, "status": "started", "visit_date": "21 November 2026 14:05", "date": "2026-11-21T14:05"}',
     '{"non_field_errors":["Give visit_date or date, not both."]}'],
    ['all field errors together', '{"patient": 99, "status": "", "visit_date": "soon"}',
     '{"patient":["Invalid pk \"99\" - object does not exist."],"visit_date":["Datetime has wrong format. Use one of these formats instead: DD MMMM YYYY HH:mm, YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."],"status":["This field may not be blank."]}'],
);
for my $c (@cases) {
    my ($what, $body, $want) = @$c;
    my $res = post_json('/visits', $body, token => $tok);
    is($res->code, 400, "$what: 400");
    if (ref $want) { like($res->content, $want, "$what: body") }
    else           { is($res->content, $want, "$what: body") }
    is($res->header('Content-Type'), 'application/json', "$what: JSON");
}

{
    my $res = post_json('/visits', '{"patient": 1750, "status": "started"}');
    is($res->code, 401, 'no token: 401');
    is($res->content, '{"detail":"Authentication credentials were not provided."}', 'no token: body');
    is($res->header('WWW-Authenticate'), 'Bearer realm="clinic"', 'no token: challenge');
    common_headers($res, 'no token');

    $res = post_json('/visits', '{"patient": 1750, "status": "started"}', token => $tok . 'x');
    is($res->code, 401, 'bad token: 401');
    is($res->content, '{"detail":"Invalid or expired token."}', 'bad token: body');
    is($res->header('WWW-Authenticate'), 'Bearer realm="clinic", error="invalid_token"',
       'bad token: challenge names invalid_token');

    for my $type ('text/plain', 'application/jsonx', 'application/json; charset=latin1',
                  'multipart/form-data; boundary=x') {
        $res = post_json('/visits', '{"patient": 1750, "status": "started"}', token => $tok,
                         type => $type);
        is($res->code, 415, "Content-Type $type: 415");
        is($res->content, ojson(Clinic::Test::O(detail => qq(Unsupported media type "$type" in request.))),
           "Content-Type $type: body");
    }
    $res = post_json('/visits', '{"patient": 1750, "status": "started"}', token => $tok, type => undef);
    is($res->code, 415, 'no Content-Type: 415');
    for my $type ('application/json; charset=utf-8', 'Application/JSON; Charset="UTF-8"') {
        $res = post_json('/visits', '{"patient": 1750, "status": "started"}', token => $tok,
                         type => $type);
        is($res->code, 200, "Content-Type $type accepted");
        $before++;
    }

    $res = post_json('/small/visits', '{"patient": 1750, "status": "' . ('x' x 100) . '"}');
    is($res->code, 413, 'body over ClinicMaxBody: 413');
    like($res->content, qr/^\{"detail":"Request body is larger than 100 bytes\."\}$/, '413 body');

    $res = Apache::TestRequest::GET('/visits', Authorization => "Bearer $tok");
    is($res->code, 405, 'GET: 405');
    is($res->header('Allow'), 'POST', '405: Allow: POST');
    is($res->content, '{"detail":"Method \"GET\" not allowed."}', '405 body');
    $res = Apache::TestRequest::PUT('/visits', content => '{}');
    is($res->code, 405, 'PUT without a token: 405 before authentication');
    $res = send_method(DELETE => '/visits');
    is($res->code, 405, 'DELETE: 405');
    $res = send_method(HEAD => '/visits');
    is($res->code, 405, 'HEAD: 405');
}

# --- chunked bodies ---
{
    my $body = '{"patient": 1750, "status": "chunked"}';
    my $chunks = join('', map { sprintf("%x\r\n%s\r\n", length $_, $_) } ($body =~ /(.{1,7})/gs)) . "0\r\n\r\n";
    my $resp = raw_request("POST /visits HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer $tok\r\n"
        . "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n$chunks");
    like($resp, qr{^HTTP/1\.1 200 }, 'chunked body: 200');
    like($resp, qr/"status":"chunked"/, 'chunked body read whole');
    $before++;

    my $big = '{"patient": 1750, "status": "' . ('y' x 200) . '"}';
    $chunks = join('', map { sprintf("%x\r\n%s\r\n", length $_, $_) } ($big =~ /(.{1,30})/gs)) . "0\r\n\r\n";
    $resp = raw_request("POST /small/visits HTTP/1.1\r\nHost: localhost\r\n"
        . "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n$chunks");
    like($resp, qr{^HTTP/1\.1 413 }, 'chunked body over ClinicMaxBody: 413');
}

is(visits_count(), $before, 'no failed request wrote a visit');

done_testing();
