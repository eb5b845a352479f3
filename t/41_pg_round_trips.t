# PostgreSQL round trips per request (issue 13): the statements the server
# ran for each request, read from its own log (log_statement = all, turned
# on here for the duration of the file). /visits is one statement, and
# add-and-link one without an Idempotency-Key; with a key, BEGIN, the claim,
# that statement, the stored answer and COMMIT. Then the cases the fewer
# statements must still get right: a racer that saw the appointment free
# but lost it writes nothing and answers 409 (a real lock makes the race
# certain), and a restart between requests costs no request a failure (the
# pooled sessions are checked before the first statement, which writes).
use strict;
use warnings FATAL => 'all';
use utf8;

use Test::More;
use Apache::TestRequest ();
use Time::HiRes qw(sleep);
use POSIX ();
use lib 't/lib';
use Clinic::Test;

plan skip_all => 'PostgreSQL only' unless db_kind() eq 'pgsql';

my $tok = token(claims => { sub => 'desk', userId => 'doc-trips' }, exp_in => 3600);
my $log = "$ENV{CLINIC_PGDATA}/../pg.log";
my $dbh = dbh();
my $run = sprintf '%x%04x', time, int rand 0x10000;
my $n = 0;

$dbh->do(q{ALTER SYSTEM SET log_statement = 'all'});
$dbh->do('SELECT pg_reload_conf()');
END { eval { $dbh->do('ALTER SYSTEM RESET log_statement'); $dbh->do('SELECT pg_reload_conf()') } }

# Run $send->($marker) and return the statements the backend that logged
# $marker (a parameter of one of them; a number when $numeric) ran for it,
# in order: BEGIN, COMMIT and the like as themselves, prepared statements by
# name. Left out: a new session's setup (PREPARE, clinic_schema_get) and the
# purge after an answer (src/purge.c). Tried again with a fresh marker while
# the server has not taken the reloaded setting yet.
sub statements {
    my ($send, $numeric) = @_;
    for my $try (1 .. 50) {
        my $marker = $numeric ? 800_000_000 + int(rand 1_000_000) * 100 + ++$n : "trips-$run-" . ++$n;
        my $from = -s $log;
        my $res = $send->($marker);
        open my $fh, '<', $log or die "$log: $!";
        seek $fh, $from, 0;
        my @lines = <$fh>;
        close $fh;
        my ($pid) = map { /\[(\d+)\] DETAIL:  parameters: .*'\Q$marker\E'/ ? $1 : () } @lines;
        if (!defined $pid) { sleep 0.1; next }
        my @st = map {
            /\[\Q$pid\E\] LOG:  (?:statement: (\w+( TO SAVEPOINT)?)|execute (\w+))/ ? ($1 // $3) : ()
        } @lines;
        return ($res, [grep { !/^(?:PREPARE|clinic_schema_get|clinic_idem_expired|clinic_idem_purge)$/ } @st]);
    }
    die 'the server never logged the requests: log_statement not taken';
}

sub visit {
    my ($status, @h) = @_;
    post_json('/visits', { patient => 1750, status => $status }, token => $tok, headers => [@h]);
}

sub link_appt {
    my ($appt, $first, @h) = @_;
    # A fixed text, so that a retry under the same key is the same request.
    post_json('/patients/add_and_link?uid=doc-trips',
              qq({"appointment_id":"$appt","firstName":"$first","lastName":"Trips"}),
              token => $tok, headers => [@h]);
}

sub new_appt {
    my ($doctor) = @_;
    my $id = new_hex24();
    $dbh->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $id, $doctor // 'doc-trips');
    return $id;
}

# --- /visits ---
my ($res, $st) = statements(sub { visit($_[0]) });
is($res->code, 200, 'visit: 200');
is_deeply($st, ['clinic_visit_one'], 'visit: one statement');

($res, $st) = statements(sub { visit($_[0], 'Idempotency-Key' => "k-$_[0]") });
is($res->code, 200, 'visit with a key: 200');
is_deeply($st, [qw(BEGIN clinic_idem_claim clinic_visit_one clinic_idem_finish COMMIT)],
          'visit with a key: the claim, the statement and the answer in one transaction');

($res, $st) = statements(sub {
    post_json('/visits', { patient => 987654, status => $_[0] }, token => $tok) });
is($res->code, 400, 'visit for a patient that does not exist: 400');
is($res->content, '{"patient":["Invalid pk \"987654\" - object does not exist."]}',
   'the 400 body, as before');
is_deeply($st, ['clinic_visit_one'], 'no such patient: the same one statement, which wrote nothing');

# Other field errors: DRF names the missing patient with them, so the patient is read first.
($res, $st) = statements(sub {
    post_json('/visits', { patient => $_[0] + 0, status => 'x', date => 'not a date' }, token => $tok) }, 1);
is($res->code, 400, 'missing patient and a bad date: 400');
is(join(',', sort keys %{ jbody($res) }), 'date,patient', 'both errors named');
is_deeply($st, ['clinic_patient_get'], 'the patient read, nothing written');

# --- add-and-link ---
for my $case (['linked', 200, undef], ['not found', 404, 'none'], ['not the owner', 403, 'doc-other']) {
    my ($what, $code, $doctor) = @$case;
    my $appt = defined $doctor && $doctor eq 'none' ? new_hex24() : new_appt($doctor);
    my $before = count_rows('practice_patients');
    ($res, $st) = statements(sub { link_appt($appt, $_[0]) });
    is($res->code, $code, "add-and-link, $what: $code");
    is_deeply($st, ['clinic_link_one'], "add-and-link, $what: one statement");
    is(count_rows('practice_patients'), $before + ($code == 403 ? 0 : 1),
       "add-and-link, $what: " . ($code == 403 ? 'nothing written' : 'the patient kept'));
}
{
    my $appt = new_appt();
    is(link_appt($appt, 'First')->code, 200, 'add-and-link: the first links');
    my $before = count_rows('practice_patients');
    ($res, $st) = statements(sub { link_appt($appt, $_[0], 'Idempotency-Key' => "k-$_[0]") });
    is($res->code, 409, 'add-and-link with a key, already linked: 409');
    is_deeply($st, [qw(BEGIN clinic_idem_claim clinic_link_one clinic_idem_finish COMMIT)],
              'add-and-link with a key: no savepoint, one transaction');
    is(count_rows('practice_patients'), $before, 'the 409 wrote no patient');
}

# --- the lost race: the appointment was free when the statement started ---
sub lost_race {
    my ($what, @h) = @_;
    my $appt = new_appt();
    my $holder = new_hex24();
    $dbh->do(q{INSERT INTO practice_patients (id, doctor_id, first_name, last_name)
               VALUES (?, 'doc-trips', 'Holder', 'Trips')}, undef, $holder);
    my $locker = DBI->connect($ENV{CLINIC_DB_DSN}, '', '', { RaiseError => 1, AutoCommit => 0 });
    $locker->do('UPDATE appointments SET patient_id = ? WHERE id = ?', undef, $holder, $appt);
    my $first = "Loser$n";
    pipe(my $rd, my $wr) or die;
    my $pid = fork // die;
    if (!$pid) {
        close $rd;
        Apache::TestRequest::user_agent(reset => 1, keep_alive => 0);
        my $r = link_appt($appt, $first, @h);
        print $wr $r->code, ' ', $r->content;
        close $wr;
        POSIX::_exit(0);
    }
    close $wr;
    # The request's statement has started (its snapshot sees the appointment
    # free) and waits for the row lock.
    my $waiting = 0;
    for (1 .. 200) {
        ($waiting) = $dbh->selectrow_array(q{SELECT count(*) FROM pg_stat_activity
            WHERE wait_event_type = 'Lock' AND query LIKE '%practice_patients%'});
        last if $waiting;
        sleep 0.01;
    }
    is($waiting, 1, "$what: the request waits for the appointment's row lock");
    $locker->commit;
    $locker->disconnect;
    my $got = do { local $/; <$rd> };
    waitpid($pid, 0);
    my ($code, $body) = split / /, $got, 2;
    is($code, 409, "$what: the loser answers 409");
    is($body, '{"success":false,"error":"Appointment already linked to a patient",'
              . '"code":"APPOINTMENT_ALREADY_LINKED"}', "$what: the 409 body");
    is(count_rows('practice_patients WHERE first_name = ?', $first), 0, "$what: no orphan patient row");
    my ($linked) = $dbh->selectrow_array('SELECT patient_id FROM appointments WHERE id = ?', undef, $appt);
    is($linked, $holder, "$what: the appointment keeps the winner's link");
    return ($appt, $first);
}
lost_race('lost race');
{
    my $key = "race-$run";
    my ($appt, $first) = lost_race('lost race with a key', 'Idempotency-Key' => $key);
    my $again = link_appt($appt, $first, 'Idempotency-Key' => $key);
    is($again->code, 409, 'lost race with a key: the retry replays the 409');
    is($again->header('Idempotent-Replayed'), 'true', 'lost race with a key: replayed');
}

# --- a restart between requests: the first statement of a request is a
# write, which is never run twice; the pooled sessions the restart closed
# are found before it and reconnected ---
my @pg_ctl = ("$ENV{CLINIC_PGBIN}/pg_ctl", '-D', $ENV{CLINIC_PGDATA}, '-w', '-l', $log);
my @warm = map { visit('warm')->code } 1 .. 10;
is(scalar(grep { $_ == 200 } @warm), 10, 'warm-up');
system(@pg_ctl, '-m', 'fast', 'restart') == 0 or die 'pg_ctl restart';
my @after = map { visit('after-restart')->code } 1 .. 10;
is(join(' ', @after), join(' ', (200) x 10), 'visits after a restart: every one 200');
system(@pg_ctl, '-m', 'fast', 'restart') == 0 or die 'pg_ctl restart';
$dbh = DBI->connect($ENV{CLINIC_DB_DSN}, '', '', { RaiseError => 1, AutoCommit => 1 });
is(link_appt(new_appt(), 'AfterRestart')->code, 200, 'add-and-link after a restart: 200');
$dbh->do(q{ALTER SYSTEM SET log_statement = 'all'});   # the restart kept it; the handle is new

done_testing();
