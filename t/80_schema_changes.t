# DDL on the live database while Apache serves (docs/API.md §6): an
# index, a trigger, ANALYZE, an added column, a widened column (PostgreSQL),
# VACUUM (SQLite). Pooled sessions whose prepared statements went stale are
# repaired: every request before, between and after answers 200 and writes
# the right rows.
use strict;
use warnings FATAL => 'all';
use utf8;

use Test::More;
use Apache::TestRequest ();
use POSIX ();
use lib 't/lib';
use Clinic::Test;

my $pg = db_kind() eq 'pgsql';
my $run = new_hex24();
my $doc = "doc-ddl-$run";
my $tok = token(claims => { sub => "ddl-$run", userId => $doc }, exp_in => 3600);
my $dbh = dbh();
my ($name) = $dbh->selectrow_array('SELECT name FROM patients WHERE id = 1750');
my $n = 0;

# One visit and one visit under an Idempotency-Key, each checked against
# the rows it wrote. Returns the problems found.
sub visits {
    my @bad;
    my $status = 'ddl-' . ++$n;
    for my $key (undef, "ddl-$run-$n") {
        my $res = post_json('/visits', { patient => 1750, status => $status }, token => $tok,
                            headers => [defined $key ? ('Idempotency-Key' => $key) : ()]);
        my $v = jbody($res);
        if ($res->code != 200 || ref $v ne 'ARRAY') { push @bad, 'visit ' . $res->code; next }
        my $row = $dbh->selectrow_hashref('SELECT patient_id, status FROM visits WHERE id = ?',
                                          undef, $v->[0]{id});
        push @bad, "visit $v->[0]{id} row" unless $row && $row->{patient_id} == 1750
            && $row->{status} eq $status && $v->[0]{patient}{name} eq $name;
        next unless defined $key;
        my ($stored) = $dbh->selectrow_array(
            'SELECT status FROM idempotency_keys WHERE caller = ? AND route = ? AND key = ?',
            undef, "sub:ddl-$run", 'visits', $key);
        push @bad, "key $key not stored" unless ($stored // 0) == 200;
    }
    return @bad;
}

# One add-and-link (its statements run inside a transaction), checked the same way.
sub add_and_link {
    my @bad;
    my $appt = new_hex24();
    $dbh->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $appt, $doc);
    my $res = post_json("/patients/add_and_link?uid=$doc",
                        { appointment_id => $appt, firstName => 'Ddl' . ++$n, lastName => 'Test' },
                        token => $tok);
    my $id = (jbody($res) // {})->{data}{_id} // '';
    my ($linked) = $dbh->selectrow_array('SELECT patient_id FROM appointments WHERE id = ?',
                                         undef, $appt);
    my ($first) = $dbh->selectrow_array('SELECT first_name FROM practice_patients WHERE id = ?',
                                        undef, $id);
    push @bad, 'link ' . $res->code unless $res->code == 200 && ($linked // '') eq $id
        && ($first // '') eq "Ddl$n";
    return @bad;
}

# Several clients at once, so that many pooled sessions meet the change.
sub burst {
    my @kids;
    for my $k (1 .. 4) {
        pipe(my $rd, my $wr) or die "pipe: $!";
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $rd;
            Apache::TestRequest::user_agent(reset => 1, keep_alive => 0);
            print $wr join(' ', map {
                post_json('/visits', { patient => 1750, status => "ddl-burst-$k" }, token => $tok)->code
            } 1 .. 3);
            close $wr;
            POSIX::_exit(0);
        }
        close $wr;
        push @kids, [$pid, $rd];
    }
    my @codes;
    for (@kids) { my $fh = $_->[1]; local $/; push @codes, split ' ', <$fh> // ''; waitpid($_->[0], 0) }
    return map { "burst $_" } grep { $_ != 200 } @codes;
}

sub step {
    my ($what, @sql) = @_;
    $dbh->do($_) for @sql;
    # add-and-link first: the stale statement is then met inside a transaction
    my @bad = (add_and_link(), visits(), burst(), visits(), add_and_link());
    is(scalar @bad, 0, "after $what: every request 200, rows right") or diag("@bad");
}

step('nothing yet');
step('CREATE INDEX', 'CREATE INDEX clinic_ddl_status_idx ON visits (status)');
step('DROP INDEX', 'DROP INDEX clinic_ddl_status_idx');
if ($pg) {
    step('CREATE TRIGGER',
         q{CREATE FUNCTION clinic_ddl_fn() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'},
         'CREATE TRIGGER clinic_ddl_trg BEFORE INSERT ON visits FOR EACH ROW EXECUTE FUNCTION clinic_ddl_fn()');
    step('DROP TRIGGER', 'DROP TRIGGER clinic_ddl_trg ON visits', 'DROP FUNCTION clinic_ddl_fn()');
} else {
    step('CREATE TRIGGER',
         'CREATE TRIGGER clinic_ddl_trg AFTER INSERT ON visits BEGIN SELECT NEW.id; END');
    step('DROP TRIGGER', 'DROP TRIGGER clinic_ddl_trg');
}
step('ANALYZE', 'ANALYZE');
step('ADD COLUMN with a default on appointments',
     q{ALTER TABLE appointments ADD COLUMN clinic_ddl_room varchar(16) NOT NULL DEFAULT 'A1'});
my ($room, $appts) = $dbh->selectrow_array(
    'SELECT sum(CASE WHEN clinic_ddl_room = ? THEN 1 ELSE 0 END), count(*) FROM appointments'
    . ' WHERE doctor_id = ?', undef, 'A1', $doc);
is($room, $appts, "the added column holds its default on all $appts appointments");
if ($pg) {
    step('ALTER patients.name TYPE text', 'ALTER TABLE patients ALTER COLUMN name TYPE text');
    step('ALTER patients.name back to varchar(255)',
         'ALTER TABLE patients ALTER COLUMN name TYPE varchar(255)');
} else {
    step('VACUUM', 'VACUUM');
}
step('DROP COLUMN', 'ALTER TABLE appointments DROP COLUMN clinic_ddl_room');

done_testing();
