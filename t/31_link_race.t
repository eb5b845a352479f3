# POST /patients/add_and_link races (CONTRACT section 5): 20 clients post
# their own patient for ONE free appointment at the same instant. Exactly one
# links (200), the other nineteen get 409 and write nothing. Repeated
# CLINIC_RACE_ROUNDS times (default 3), a fresh appointment each round.
use strict;
use warnings FATAL => 'all';
use utf8;

use Test::More;
use POSIX ();
use JSON::PP ();
use HTTP::Request ();
use Apache::TestRequest ();
use lib 't/lib';
use Clinic::Test;

my $clients = 20;
my $rounds = $ENV{CLINIC_RACE_ROUNDS} || 3;
my $dbh = dbh();
# Children inherit this handle; they never use it and leave with _exit, but
# make sure no child's exit could close the parent's connection.
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

    pipe(my $go_r, my $go_w) or die "pipe: $!";
    pipe(my $res_r, my $res_w) or die "pipe: $!";
    pipe(my $ready_r, my $ready_w) or die "pipe: $!";
    my $path = "/patients/add_and_link?uid=$uid";
    my @pids;
    for my $i (1 .. $clients) {
        my $pid = fork;
        die "fork: $!" unless defined $pid;
        if (!$pid) {
            # Child: its own user agent and request, ready before the start.
            close $go_w;
            close $res_r;
            close $ready_r;
            alarm 60;
            my $line = "$i 000 - not-sent\n";
            eval {
                my $ua = Apache::TestRequest::user_agent(reset => 1, keep_alive => 0);
                my $req = HTTP::Request->new(POST => Apache::TestRequest::resolve_url($path),
                    ['Authorization' => "Bearer $tok", 'Content-Type' => 'application/json'],
                    $codec->encode({ appointment_id => $appt, firstName => "Racer$i", lastName => 'Race' }));
                syswrite $ready_w, 'r';
                close $ready_w;
                my $buf;
                sysread $go_r, $buf, 1;   # returns at EOF: the parent closed its end
                my $res = $ua->request($req);
                my $b = jbody($res);
                my $id = ref $b eq 'HASH' && ref $b->{data} eq 'HASH' ? $b->{data}{_id} // '-' : '-';
                my $code = ref $b eq 'HASH' ? $b->{code} // '-' : '-';
                $line = sprintf "%d %03d %s %s\n", $i, $res->code, $id, $code;
                1;
            } or $line = "$i 000 - died\n";
            syswrite $res_w, $line;
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    close $go_r;
    close $res_w;
    close $ready_w;
    # Wait until every child is ready (or gone), then start them all at once.
    my ($ready, $buf) = (0, '');
    while ($ready < $clients) {
        my $got = sysread $ready_r, $buf, $clients;
        last unless $got;
        $ready += $got;
    }
    close $ready_r;
    close $go_w;
    my @lines = <$res_r>;
    close $res_r;
    waitpid $_, 0 for @pids;

    my (%by_status, $winner_i, $winner_id);
    for (@lines) {
        my ($i, $status, $id, $code) = split ' ';
        $by_status{$status}++;
        ($winner_i, $winner_id) = ($i, $id) if $status eq '200';
        diag("round $round: client $i answered $status $code") if $status ne '200' && $status ne '409';
    }
    is(scalar @lines, $clients, "round $round: all $clients clients answered");
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
