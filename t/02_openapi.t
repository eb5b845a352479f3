# openapi/clinic.yaml: a valid OpenAPI 3.1 document (its examples matching
# their schemas), the seeds' two requests answered as it says, and the
# response checker (t/lib/Clinic/OpenAPI.pm, run on every file's responses)
# shown to fail when the document is deliberately wrong: an undocumented
# status, a body schema the answer does not match, a required header the
# answer lacks, a code outside the enum.
use strict;
use warnings FATAL => 'all';

use Test::More;
use JSON::PP ();
use YAML::XS ();
use File::Temp ();
use lib 't/lib';
use Clinic::Test;

ok($INC{'Clinic/OpenAPI.pm'}, 'Clinic::Test loads the response check (t/lib/Clinic/OpenAPI.pm)');
my $dir = Clinic::OpenAPI::dir();
my $tmp = File::Temp::tempdir('clinic-openapi-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $json = JSON::PP->new->utf8->canonical;

sub validate_doc {
    my ($file) = @_;
    my @out = `node "$dir/validate-document.mjs" "$file" 2>&1`;
    return ($?, join '', @out);
}

# A copy of the document, changed by $edit (a sub given the parsed document).
sub broken_doc {
    my ($name, $edit) = @_;
    local $YAML::XS::Boolean = 'JSON::PP';
    my $doc = YAML::XS::LoadFile("$dir/clinic.yaml");
    $doc = $json->decode($json->encode($doc));   # aliases become copies
    $edit->($doc);
    my $file = "$tmp/$name.json";
    open(my $fh, '>', $file) or die "$file: $!";
    print $fh $json->encode($doc);
    close $fh;
    return $file;
}

# --- the seeds' two requests (t/seeds/, as the package test sends them), and two errors ---
my $appt = new_hex24();
dbh()->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $appt, 'doctor_uid_123');
sub seed { open(my $fh, '<', "t/seeds/$_[0]") or die "t/seeds/$_[0]: $!"; local $/; return <$fh> }
my $res = post_json('/visits', seed('visits.json'), token => token(claims => { sub => 'openapi-test' }));
is($res->code, 200, 'seed 000: POST /visits 200');
# The seed's appointment belongs to t/30_link.t: the same body for a fresh one.
(my $link_seed = seed('add_and_link.json')) =~ s/65f8a1b2c3d4e5f6789012ef/$appt/ or die 'seed appointment';
$res = post_json('/patients/add_and_link?uid=doctor_uid_123', $link_seed,
                 token => token(claims => { userId => 'doctor_uid_123' }));
is($res->code, 200, 'seed 004: POST /patients/add_and_link 200');
$res = post_json('/visits', '{"patient": 1750, "status": "x"}');
is($res->code, 401, 'no token: 401');
$res = post_json('/patients/add_and_link?uid=doctor_uid_123', '{"firstName": "A"}',
                 token => token(claims => { userId => 'doctor_uid_123' }));
is($res->code, 400, 'no appointment_id: 400');

my ($rc, $out, @out);
($rc, @out) = Clinic::OpenAPI::check();
is($rc, 0, 'these four answers match the document') or diag @out;
like(join('', @out), qr/^checked 4 responses/m, 'the checker saw all four') or diag @out;

# The document's own checks do not depend on the database: SQLite's run makes them.
if (db_kind() eq 'sqlite') {
    # --- the document itself ---
    ($rc, $out) = validate_doc("$dir/clinic.yaml");
    is($rc, 0, 'clinic.yaml is valid OpenAPI 3.1') or diag $out;
    like($out, qr/valid OpenAPI 3\.1, \d+ examples match/, 'the validator says so') or diag $out;
    ($rc, $out) = validate_doc(broken_doc('no-info', sub { delete $_[0]{info} }));
    isnt($rc, 0, 'a document without info is rejected') or diag $out;
    ($rc, $out) = validate_doc(broken_doc('bad-schema-type', sub {
        $_[0]{components}{schemas}{Visit}{properties}{id}{type} = 'integr' }));
    isnt($rc, 0, 'a schema with an unknown type is rejected') or diag $out;
    ($rc, $out) = validate_doc(broken_doc('bad-example', sub {
        $_[0]{paths}{'/visits'}{post}{requestBody}{content}{'application/json'}{examples}{seed}{value}{status} = '' }));
    isnt($rc, 0, 'an example that breaks its own schema is rejected') or diag $out;

    # --- a deliberately wrong document makes the same answers fail ---
    for my $c (
        ['an undocumented status (401 removed from POST /visits)',
         sub { delete $_[0]{paths}{'/visits'}{post}{responses}{401} },
         qr/status 401 is not documented for POST \/visits/],
        ['a wrong body schema (a visit id typed string)',
         sub { $_[0]{components}{schemas}{Visit}{properties}{id}{type} = 'string' },
         qr{POST /visits -> 200: body .*/0/id must be string}],
        ['a wrong body schema (add-and-link data without lastName)',
         sub { $_[0]{components}{schemas}{PracticePatient}{properties}{lastName} = { type => 'integer' } },
         qr{add_and_link\?uid=doctor_uid_123 -> 200: body .*/data/lastName must be integer}],
        ['a required header the answers lack',
         sub { $_[0]{paths}{'/visits'}{post}{responses}{200}{headers}{'X-Never-Sent'} =
                   { required => JSON::PP::true, schema => { type => 'string' } } },
         qr/required header X-Never-Sent is missing/],
        ['a header value outside its schema (WWW-Authenticate realm)',
         sub { $_[0]{components}{headers}{'WWW-Authenticate'}{schema}{pattern} = '^Bearer realm="other"' },
         qr/header WWW-Authenticate: "Bearer realm=\\"clinic\\""/],
        ['a code outside the enum (MISSING_APPOINTMENT_ID dropped)',
         sub { $_[0]{components}{schemas}{ErrorCode}{enum} =
                   [grep { $_ ne 'MISSING_APPOINTMENT_ID' } @{ $_[0]{components}{schemas}{ErrorCode}{enum} }] },
         qr{-> 400: body .*/code must be equal to one of the allowed values}],
    ) {
        my ($what, $edit, $want) = @$c;
        (my $name = $what) =~ s/\W+/-/g;
        ($rc, @out) = Clinic::OpenAPI::check(doc => broken_doc($name, $edit));
        isnt($rc, 0, "wrong document, $what: the check fails");
        like(join('', @out), $want, "wrong document, $what: it names the mismatch") or diag @out;
    }

} else {
    note('document checks: run with SQLite');
}

done_testing();
