# No file system work for the clinic routes (issue 13, point 3; docs/operations.md "No
# file system work"): a route whose <Location> gives it a clinic handler skips
# httpd's mapping to DocumentRoot, so a broken .htaccess on its path (with
# AllowOverride All) does not touch it, <Directory> sections are not merged
# into it, and <Location> settings (Clinic directives, Require) still apply.
# Files beside the routes show that the .htaccess and <Directory> do bite
# where httpd maps to a file (t/conf/extra.conf.in, t/htdocs/storage,
# t/htdocs/denied).
use strict;
use warnings FATAL => 'all';

use Test::More;
use Apache::TestRequest ();
use lib 't/lib';
use Clinic::Test qw(:DEFAULT common_headers);

my $dbh = dbh();
my %visit = (patient => 1750, status => 'started', visit_date => '21 November 2026 14:05');

# --- the traps are armed: files there get the broken .htaccess / the denial ---
{
    my $res = Apache::TestRequest::GET('/storage/file.txt');
    is($res->code, 500, 'a file under htdocs/storage: its broken .htaccess answers 500');
    $res = Apache::TestRequest::GET('/denied/file.txt');
    is($res->code, 403, 'a file under htdocs/denied: its <Directory> denies it');
}

# --- /visits beside the broken .htaccess ---
{
    my $before = count_rows('visits');
    my $res = post_json('/storage/visits', \%visit);
    is($res->code, 200, 'POST /storage/visits: 200 beside a broken .htaccess');
    common_headers($res, 'POST /storage/visits');
    my $v = (jbody($res) || [{}])->[0];
    is($v->{date}, '2026-11-21T14:05:00+07:00', "the <Location>'s ClinicTimeOffset applies");
    is($v->{patient}{date_of_birth}, '1990-03-20T00:00:00+07:00', '... to the patient too');
    is(count_rows('visits'), $before + 1, 'one row written');

    $res = post_json('/storage/visits', { status => 'started' });
    is($res->code, 400, 'a field error: 400');
    is($res->content, '{"patient":["This field is required."]}', '... in the DRF shape');

    $res = Apache::TestRequest::GET('/storage/visits');
    is($res->code, 405, "GET: the module's 405");
    is($res->header('Allow'), 'POST', '... with Allow: POST');
}

# --- add-and-link beside the broken .htaccess ---
{
    my $uid = 'doctor_storage_' . new_hex24();
    my $appt = new_hex24();
    $dbh->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $appt, $uid);
    my $res = post_json("/storage/patients/add_and_link?uid=$uid",
                        { appointment_id => $appt, firstName => 'Jane', lastName => 'Smith' });
    is($res->code, 200, 'POST /storage/patients/add_and_link: 200 beside a broken .htaccess');
    my $b = jbody($res) || {};
    ok($b->{success} && ($b->{data}{doctor_id} // '') eq $uid, '... linked, the envelope');
    is(count_rows('appointments WHERE id = ? AND patient_id IS NOT NULL', $appt), 1,
       '... the appointment is linked');
}

# --- <Location> access control still applies ---
{
    my $before = count_rows('visits');
    my $res = post_json('/storage/locked/visits', \%visit);
    is($res->code, 403, "the <Location>'s Require still denies");
    is(count_rows('visits'), $before, '... and nothing is written');
}

# --- <Directory> sections are not merged into a clinic route ---
{
    my $res = post_json('/denied/visits', \%visit);
    is($res->code, 200, "a <Directory>'s Require does not reach the route");
    my $v = (jbody($res) || [{}])->[0];
    is($v->{date}, '2026-11-21T14:05:00Z', "nor its ClinicTimeOffset: the server default");
}

done_testing();
