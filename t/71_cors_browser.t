# The seeds' front ends in a real browser: headless chromium loads
# t/htdocs/cors/page.html from a second loopback origin (the clinic_page
# virtual host, another port) and posts, with axios and moment, exactly what
# the registration page and the practice app send. The page writes each
# outcome into the document; chromium's --dump-dom hands it back.
#  - From the allowed origin: both routes succeed and their rows are in the
#    database; a validation error and a 401 are readable, with the headers
#    the API exposes and none it does not.
#  - The same page from an origin not allowed (clinic_page_other): the
#    browser blocks every request at the preflight and nothing is written.
# Skips, saying why, only where chromium cannot start.
use strict;
use warnings FATAL => 'all';
use utf8;

use Test::More;
use JSON::PP ();
use Encode ();
use POSIX qw(strftime);
use HTML::Entities qw(decode_entities);
use URI::Escape qw(uri_escape);
use Apache::Test ();
use lib 't/lib';
use Clinic::Test;
use Clinic::Browser;

my $why = chromium_problem();
plan skip_all => "chromium cannot start here: $why" if defined $why;

my $json = JSON::PP->new->utf8->canonical;
my $dbh  = dbh();
my $run  = new_hex24();
my $api  = 'http://127.0.0.1:' . Apache::Test::vars('port');
my %page = (allowed => Apache::Test::vars('clinic_page_port'),
            other   => Apache::Test::vars('clinic_page_other_port'));

sub new_appt {
    my ($doctor) = @_;
    my $id = new_hex24();
    $dbh->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $id, $doctor);
    return $id;
}

# Load the page from one of the two origins; returns { case => outcome }.
sub browse {
    my ($origin, %cfg) = @_;
    my $url = "http://127.0.0.1:$page{$origin}/page.html#"
            . uri_escape($json->encode({ api => $api, patient => 1750, %cfg }));
    my ($dom, $stderr) = chromium_dom($url, tz => 'UTC');
    my %out;
    while ($dom =~ m{<pre id="case-([\w-]+)">(.*?)</pre>}gs) {
        $out{$1} = eval { $json->decode(Encode::encode_utf8(decode_entities($2))) }
                   // { undecodable => $2 };
    }
    ok($dom =~ /<div id="done">done<\/div>/, "$origin origin: the page ran to its end")
        or diag("chromium: $stderr\n" . substr($dom, 0, 2000));
    return \%out;
}

my $uid = "doctor_browser_$run";
my %tokens = (visitsToken => token(claims => { sub => "registration-$run" }),
              linkToken   => token(claims => { userId => $uid }));

# --- the allowed origin ---
{
    my $appt = new_appt($uid);
    my $visits_before = count_rows('visits');
    my $out = browse('allowed', %tokens, uid => $uid, appointment => $appt);

    my $v = $out->{visit} || {};
    is($v->{status}, 200, 'registration page: POST /visits succeeds from the allowed origin');
    my $visit = ref $v->{body} eq 'ARRAY' ? $v->{body}[0] : {};
    is($visit->{status}, 'started', 'the page reads the created visit');
    is($visit->{patient}{pk}, 1750, '... with its patient');
    # moment() in the browser (TZ=UTC) formatted 'DD MMMM YYYY HH:mm', naive,
    # so read in ClinicTimeOffset +07:00: the wall clock is now's, in UTC.
    my $date = $visit->{date} // '(none)';
    my ($wall) = $date =~ /^(\d{4}-\d\d-\d\dT\d\d:\d\d):00\+07:00$/;
    ok($wall && grep({ $wall eq strftime('%Y-%m-%dT%H:%M', gmtime(time - $_)) } 0 .. 180),
       "visit_date from moment() parsed (date $date)");
    my $row = $dbh->selectrow_hashref('SELECT patient_id, status FROM visits WHERE id = ?',
                                      undef, $visit->{id} // -1) || {};
    is($row->{patient_id}, 1750, 'the visit row is in the database');
    is($row->{status}, 'started', '... with the status sent');
    is($v->{headers}{'content-type'}, 'application/json', 'the page reads Content-Type');
    ok(!exists $v->{headers}{'x-content-type-options'},
       'a header the API does not expose stays hidden from the page (the browser enforces CORS)');

    my $bad = $out->{'visit-invalid'} || {};
    is($bad->{status}, 400, 'a validation error reaches the page as 400');
    is($json->encode($bad->{body} // {}), '{"status":["This field may not be blank."]}',
       '... and the page reads its DRF body');

    my $anon = $out->{'visit-no-token'} || {};
    is($anon->{status}, 401, 'no token: the page sees 401');
    is($anon->{body}{detail}, 'Authentication credentials were not provided.', '... reads its body');
    is($anon->{headers}{'www-authenticate'}, 'Bearer realm="clinic"',
       '... and the exposed WWW-Authenticate');
    is(count_rows('visits'), $visits_before + 1, 'exactly one visit written (the valid one)');

    my $l = $out->{link} || {};
    is($l->{status}, 200, 'practice app: add-and-link succeeds from the allowed origin');
    is($l->{body}{success}, JSON::PP::true, '... success envelope');
    my $pid = $l->{body}{data}{_id} // '';
    like($pid, qr/^[0-9a-f]{24}$/, '... with the new patient\'s _id');
    is($l->{body}{data}{doctor_id}, $uid, '... for the doctor');
    my $pp = $dbh->selectrow_hashref('SELECT first_name, doctor_id FROM practice_patients WHERE id = ?',
                                     undef, $pid) || {};
    is($pp->{first_name}, 'Jane', 'the practice patient row is in the database');
    my ($linked) = $dbh->selectrow_array('SELECT patient_id FROM appointments WHERE id = ?', undef, $appt);
    is($linked, $pid, 'the appointment is linked to it');
}

# --- the same page from an origin not allowed: blocked, nothing written ---
{
    my $appt = new_appt($uid);
    my $visits_before = count_rows('visits');
    my $pp_before = count_rows('practice_patients');
    my $out = browse('other', %tokens, uid => $uid, appointment => $appt);
    for my $case (qw(visit visit-invalid visit-no-token link)) {
        my $o = $out->{$case} || {};
        ok($o->{blocked} && !exists $o->{status},
           "origin not allowed: the browser blocks '$case' and the page reads nothing")
            or diag($json->encode($o));
    }
    is(count_rows('visits'), $visits_before, 'origin not allowed: no visit written');
    is(count_rows('practice_patients'), $pp_before, 'origin not allowed: no practice patient written');
    my ($linked) = $dbh->selectrow_array('SELECT patient_id FROM appointments WHERE id = ?', undef, $appt);
    ok(!defined $linked, 'origin not allowed: the appointment stays free');
}

done_testing();
