# POST /patients/add_and_link races (docs/API.md §5): 20 clients post
# their own patient for ONE free appointment at the same instant. Exactly one
# links (200), the other nineteen get 409 and write nothing. Repeated
# CLINIC_RACE_ROUNDS times (default 3), a fresh appointment each round.
use strict;
use warnings FATAL => 'all';
use utf8;

use Test::More;
use JSON::PP ();
use HTTP::Request ();
use Apache::TestRequest ();
use lib 't/lib';
use Clinic::Test;
use Clinic::Race ();

my $clients = 20;
my $rounds = $ENV{CLINIC_RACE_ROUNDS} || 3;
my $dbh = dbh();
# Children inherit this handle; they never use it and leave with _exit
# (Clinic::Race), but make sure no child's exit could close the parent's connection.
$dbh->{AutoInactiveDestroy} = 1;

my $run = sprintf '%x%x%04x', time, $$, int rand 0x10000;
my $codec = JSON::PP->new->utf8;

# Load Apache::Test's configuration once here, so that no child spends the
# race reading it.
Apache::TestRequest::resolve_url('/');
Apache::TestRequest::user_agent();

for my $round (1 .. $rounds) {
    my $uid = "race_doctor_${run}_$round";
    my $appt = new_hex24();
    $dbh->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $appt, $uid);
    my $tok = token(claims => { userId => $uid });
    my $before = count_rows('practice_patients');

    my $path = "/patients/add_and_link?uid=$uid";
    my @results = Clinic::Race::run(clients => $clients, prepare => sub {
        my ($i) = @_;
        # Child: its own user agent and request, ready before the start.
        my $ua = Apache::TestRequest::user_agent(reset => 1, keep_alive => 0);
        my $req = HTTP::Request->new(POST => Apache::TestRequest::resolve_url($path),
            ['Authorization' => "Bearer $tok", 'Content-Type' => 'application/json'],
            $codec->encode({ appointment_id => $appt, firstName => "Racer$i", lastName => 'Race' }));
        return sub {
            my $res = $ua->request($req);
            my $b = jbody($res);
            return { status => $res->code,
                     id => ref $b eq 'HASH' && ref $b->{data} eq 'HASH' ? $b->{data}{_id} // '-' : '-',
                     code => ref $b eq 'HASH' ? $b->{code} // '-' : '-' };
        };
    });

    my (%by_status, $winner_i, $winner_id);
    for my $r (@results) {
        my ($i, $status, $id, $code) = @$r{qw(i status id code)};
        $by_status{$status}++;
        ($winner_i, $winner_id) = ($i, $id) if $status eq '200';
        diag("round $round: client $i answered $status " . ($code // $r->{error}))
            if $status ne '200' && $status ne '409';
    }
    is(scalar @results, $clients, "round $round: all $clients clients answered");
    is($by_status{200} // 0, 1, "round $round: exactly one 200");
    is($by_status{409} // 0, $clients - 1, "round $round: nineteen 409");
    is(count_rows('practice_patients'), $before + 1, "round $round: exactly one new practice_patients row");
    is(count_rows('practice_patients WHERE doctor_id = ?', $uid), 1,
       "round $round: exactly one row for the doctor");
    my ($linked) = $dbh->selectrow_array('SELECT patient_id FROM appointments WHERE id = ?', undef, $appt);
    ok(defined $winner_id && $winner_id =~ /^[0-9a-f]{24}$/, "round $round: the winner got an _id");
    is($linked, $winner_id, "round $round: appointments.patient_id is the winner's _id");
    my ($first) = $dbh->selectrow_array('SELECT first_name FROM practice_patients WHERE doctor_id = ?',
                                        undef, $uid);
    is($first, defined $winner_i ? "Racer$winner_i" : '(no winner)', "round $round: the stored patient is the winner's");
}

done_testing();
