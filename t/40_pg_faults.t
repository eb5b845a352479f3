# PostgreSQL faults, injected for real on the test cluster (docs/API.md
# §8): an outage answers 503 quickly and recovers without restarting Apache; a
# restart between requests costs no client a failure (stale pooled sessions
# are repaired); a statement timeout turns a locked row into a 503.
use strict;
use warnings FATAL => 'all';
use utf8;

use Test::More;
use Apache::TestRequest ();
use Time::HiRes qw(time sleep);
use POSIX ();
use lib 't/lib';
use Clinic::Test;

plan skip_all => 'PostgreSQL only' unless db_kind() eq 'pgsql';

my $tok = token(claims => { sub => 'desk', userId => 'doc-faults' }, exp_in => 3600);
my @pg_ctl = ("$ENV{CLINIC_PGBIN}/pg_ctl", '-D', $ENV{CLINIC_PGDATA}, '-w');

sub visit { post_json('/visits', { patient => 1750, status => 'fault-test' }, token => $tok) }
sub pg { system(@pg_ctl, '-l', "$ENV{CLINIC_PGDATA}/../pg.log", @_) == 0 or die "pg_ctl @_" }

# Fill the pool: several connections in every child.
my @warm = map { visit()->code } 1 .. 30;
is(scalar(grep { $_ == 200 } @warm), 30, 'warm-up: 30 visits recorded');

# --- outage ---
pg('-m', 'fast', 'stop');
my @outage;
for (1 .. 6) {
    my $t0 = time;
    my $res = visit();
    push @outage, [$res->code, time - $t0, $res->header('Retry-After') // ''];
}
is(scalar(grep { $_->[0] == 503 } @outage), 6, 'database stopped: every request 503');
is(scalar(grep { $_->[1] < 2 } @outage), 6, 'each 503 within 2 seconds');
is(scalar(grep { $_->[2] eq '5' } @outage), 6, 'each 503 with Retry-After');
my $res = post_json('/patients/add_and_link?uid=doc-faults',
                    { appointment_id => new_hex24(), firstName => 'A', lastName => 'B' }, token => $tok);
is($res->code, 503, 'add-and-link during the outage: 503');
is(jbody($res)->{code}, 'DATABASE_UNAVAILABLE', 'add-and-link 503 code');

pg('start');
my @back = map { visit()->code } 1 .. 30;
is(scalar(grep { $_ == 200 } @back), 30, 'database back: requests succeed without restarting Apache');

# --- restart between two requests: stale pooled sessions ---
for my $round (1 .. 3) {
    pg('-m', 'fast', 'restart');
    my @after = map { visit()->code } 1 .. 30;
    my $fail = grep { $_ != 200 } @after;
    cmp_ok($fail, '<=', 1, "restart $round: at most one failure in 30 requests (got $fail)");
    is(scalar(grep { $_ >= 500 && $_ != 503 } @after), 0, "restart $round: never a 500");
}
# add-and-link's transaction through a restart too (the test's own
# connection is made after it: the restart ends sessions).
pg('-m', 'fast', 'restart');
my $dbh = DBI->connect($ENV{CLINIC_DB_DSN}, '', '', { RaiseError => 1, AutoCommit => 1 });
my @link;
for (1 .. 10) {
    my $appt = new_hex24();
    $dbh->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $appt, 'doc-faults');
    push @link, post_json('/patients/add_and_link?uid=doc-faults',
                          { appointment_id => $appt, firstName => 'After', lastName => 'Restart' },
                          token => $tok)->code;
}
cmp_ok(scalar(grep { $_ != 200 } @link), '<=', 1, 'add-and-link after a restart: at most one failure');

# Requests with an Idempotency-Key send their claim early (add-and-link: first): on a stale pooled
# session that claim must be repaired and re-run too, and the session must
# not go back to the pool without its prepared statements.
my @appts = map { new_hex24() } 1 .. 40;
$dbh->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $_, 'doc-faults') for @appts;
pg('-m', 'fast', 'restart');
my @keyed;
{
    my @kids;
    for my $k (1 .. 8) {   # concurrently, so that many stale pooled sessions are hit
        pipe(my $rd, my $wr) or die;
        my $pid = fork // die;
        if (!$pid) {
            close $rd;
            Apache::TestRequest::user_agent(reset => 1, keep_alive => 0);
            # add-and-link sends its claim first (/visits reads the patient first)
            print $wr join(' ', map {
                post_json('/patients/add_and_link?uid=doc-faults',
                          { appointment_id => $appts[($k - 1) * 5 + $_ - 1], firstName => 'Keyed',
                            lastName => 'Restart' }, token => $tok,
                          headers => ['Idempotency-Key' => "after-restart-$k-$_-" . time])->code
            } 1 .. 5);
            close $wr;
            POSIX::_exit(0);
        }
        close $wr;
        push @kids, [$pid, $rd];
    }
    for (@kids) { my $fh = $_->[1]; local $/; push @keyed, split ' ', <$fh>; waitpid($_->[0], 0) }
}
cmp_ok(scalar(grep { $_ != 200 } @keyed), '<=', 1,
       'keyed requests after a restart: at most one failure (' . join(' ', sort @keyed) . ')');
is(scalar(grep { $_ == 500 } @keyed), 0, 'keyed requests after a restart: never a 500');
my @after_keyed = map { visit()->code } 1 .. 20;
is(scalar(grep { $_ == 200 } @after_keyed), 20, 'the pool is healthy afterwards');
$dbh = DBI->connect($ENV{CLINIC_DB_DSN}, '', '', { RaiseError => 1, AutoCommit => 1 });

# --- a locked row and the statement timeout (DBDParams options, 3 s) ---
{
    my $appt = new_hex24();
    $dbh->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $appt, 'doc-faults');
    my $locker = DBI->connect($ENV{CLINIC_DB_DSN}, '', '', { RaiseError => 1, AutoCommit => 0 });
    $locker->do('SELECT id FROM appointments WHERE id = ? FOR UPDATE', undef, $appt);
    my $before = count_rows('practice_patients');
    my $t0 = time;
    my $r = post_json('/patients/add_and_link?uid=doc-faults',
                      { appointment_id => $appt, firstName => 'Locked', lastName => 'Out' }, token => $tok);
    my $took = time - $t0;
    is($r->code, 503, 'locked appointment: 503 after the statement timeout');
    is(jbody($r)->{code}, 'DATABASE_UNAVAILABLE', 'locked appointment: code');
    cmp_ok($took, '<', 6, sprintf('answered in %.1f s, not a hung worker', $took));
    $locker->rollback;
    $locker->disconnect;
    is(count_rows('practice_patients'), $before, 'the timed-out transaction wrote nothing');
    $r = post_json('/patients/add_and_link?uid=doc-faults',
                   { appointment_id => $appt, firstName => 'Un', lastName => 'Locked' }, token => $tok);
    is($r->code, 200, 'lock released: the same request links');
}

done_testing();
