# The 503 and 500 rows of the error tables: a database that cannot be
# reached, and a stored value the module cannot show. Neither leaks SQL.
use strict;
use warnings FATAL => 'all';
use utf8;

use Test::More;
use Apache::TestRequest ();
use Time::HiRes qw(time);
use lib 't/lib';
use Clinic::Test;

my $tok = token(claims => { sub => 'registration-desk' });

# --- unreachable database (the clinic_nodb virtual host) ---
{
    Apache::TestRequest::module('clinic_nodb');
    my $t0 = time;
    my $res = post_json('/visits', { patient => 1750, status => 'started' });
    my $took = time - $t0;
    is($res->code, 503, 'visits, database unreachable: 503');
    is($res->content, '{"detail":"The database is unavailable; retry later."}', '503 body (DRF)');
    is($res->header('Retry-After'), '5', '503 carries Retry-After');
    is($res->header('Content-Type'), 'application/json', '503 is JSON');
    cmp_ok($took, '<', 3, '503 answered quickly');

    $res = post_json('/patients/add_and_link?uid=doc-down',
                     { appointment_id => new_hex24(), firstName => 'A', lastName => 'B' });
    is($res->code, 503, 'add-and-link, database unreachable: 503');
    is($res->content, '{"success":false,"error":"The database is unavailable; retry later.","code":"DATABASE_UNAVAILABLE"}',
       '503 body (envelope)');
    is($res->header('Retry-After'), '5', 'envelope 503 carries Retry-After');

    # Validation needs no database: still the 400, not a 503.
    $res = post_json('/visits', { patient => 'abc', status => '' });
    is($res->code, 400, 'a request invalid without the database: 400 even when it is down');
    Apache::TestRequest::module('default');
}

# --- a stored value the module cannot show: 500, no SQL, no stack ---
{
    my $dbh = dbh();
    my $bad = db_kind() eq 'pgsql' ? 'infinity' : 'not a timestamp';
    $dbh->do(q{INSERT INTO patients (id, village_prefix, name, gender, date_of_birth)
               VALUES (?, 'ZZ', 'Broken Row', 'Female', ?)}, undef, 900001, $bad);
    my $before = count_rows('visits');
    my $res = post_json('/visits', { patient => 900001, status => 'started' }, token => $tok);
    is($res->code, 500, 'unreadable stored date_of_birth: 500');
    is($res->content, '{"error":"Internal server error"}', '500 body is the fixed DRF text');
    is($res->header('Content-Type'), 'application/json', '500 is JSON');
    is(count_rows('visits'), $before, 'the failed request wrote no visit');
    # PostgreSQL inserts the visit in the statement that reads the row: in
    # autocommit it is deleted again, in the key's transaction rolled back.
    $res = post_json('/visits', { patient => 900001, status => 'started' }, token => $tok,
                     headers => ['Idempotency-Key' => 'broken-row-1']);
    is($res->code, 500, 'unreadable row, with an Idempotency-Key: 500');
    is(count_rows('visits'), $before, 'the keyed request wrote no visit');
    is(count_rows('idempotency_keys WHERE key = ?', 'broken-row-1'), 0, 'and stored no key');
    $dbh->do('DELETE FROM patients WHERE id = ?', undef, 900001);
}

done_testing();
