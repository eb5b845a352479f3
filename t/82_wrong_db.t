# A database with an older schema is the wrong database, not an outage: on
# the clinic_v1 virtual host (sql/upgrade/<db>-1.sql) every route answers
# 500 in its own shape, with no SQL, and the error log names the script to
# apply, once per process. Applying it while Apache runs heals the server;
# a table missing under a current clinic_schema is named the same way.
use strict;
use warnings FATAL => 'all';

use Test::More;
use Apache::Test ();
use Apache::TestRequest ();
use DBI ();
use lib 't/lib';
use Clinic::Test;
use Clinic::Schema;

my $kind = db_kind();
my $log_file = Apache::Test::vars('t_logs') . '/error_log';
my $dsn = $ENV{CLINIC_DB_DSN_V1};
my $run = new_hex24();

sub log_size { -s $log_file // 0 }
sub log_since {
    my ($from) = @_;
    open(my $fh, '<', $log_file) or die "$log_file: $!";
    seek($fh, $from, 0);
    local $/;
    return <$fh> // '';
}
# pid => number of lines matching $re
sub per_pid {
    my ($text, $re) = @_;
    my %n;
    $n{$_}++ for map { /\[pid (\d+)/ ? $1 : () } grep { /$re/ } split /\n/, $text;
    return \%n;
}

sub visit { post_json('/visits', { patient => 1750, status => 'wrong-db' }, @_) }
sub link_new {
    my ($appt) = @_;
    return post_json('/patients/add_and_link?uid=doctor_uid_123',
                     { appointment_id => $appt // new_hex24(), firstName => 'Wrong', lastName => 'Db' }, @_[1 .. $#_]);
}

Apache::TestRequest::module('clinic_v1');

# --- version 1: 500 in each route's shape, the log says what to apply ---
my $from = log_size();
my (@v, @l);
for (1 .. 12) {   # fresh connections: every process and several sessions
    Apache::TestRequest::user_agent(reset => 1, keep_alive => 0);
    push @v, visit();
    push @l, link_new();
}
is(scalar(grep { $_->code == 500 } @v), 12, 'visits on a version-1 database: 500, not 503');
is(scalar(grep { $_->content eq '{"error":"Internal server error"}' } @v), 12,
   'visits: the DRF 500 body, no SQL');
is(scalar(grep { $_->code == 500 } @l), 12, 'add-and-link on a version-1 database: 500');
is(scalar(grep { $_->content eq '{"success":false,"error":"Internal server error","code":"INTERNAL_ERROR"}' } @l),
   12, 'add-and-link: the envelope 500 body, no SQL');
is(scalar(grep { ($_->header('Content-Type') // '') eq 'application/json' } @v, @l), 24, 'all JSON');

my $log = log_since($from);
my $said = qr/\[clinic:error\].*the database schema is version 1 \(no clinic_schema table\) and mod_clinic needs version 3: apply sql\/upgrade\/$kind-2\.sql, then each later step up to $kind-3\.sql/;
my $per = per_pid($log, $said);
cmp_ok(scalar keys %$per, '>=', 1, 'the error log names the script: apply sql/upgrade/' . "$kind-2.sql")
    or diag($log);
is(scalar(grep { $_ != 1 } values %$per), 0,
   'once per process (' . join(', ', map { "pid $_: $per->{$_}" } sort keys %$per) . ')');
is(scalar(grep { /\[clinic:error\]/ && !/$said/ } split /\n/, $log), 0,
   'and no other error line per request');
unlike($log, qr/no database connection from mod_dbd/, 'not reported as an outage');

# --- the upgrade applied while Apache runs: the same server heals ---
for my $step (2, 3) {
    my ($ok, $out) = apply_sql($dsn, sql_dir() . "/upgrade/$kind-$step.sql");
    ok($ok, "sql/upgrade/$kind-$step.sql applied to the live database") or diag($out);
}
my $dbh = DBI->connect($dsn, '', '', { RaiseError => 1, AutoCommit => 1, PrintError => 0 });
my (@after, @linked);
for my $i (1 .. 6) {
    Apache::TestRequest::user_agent(reset => 1, keep_alive => 0);
    push @after, visit(headers => ['Idempotency-Key' => "wrong-db-$run-$i"])->code;
    my $appt = new_hex24();
    $dbh->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $appt, 'doctor_uid_123');
    my $res = link_new($appt);
    my $id = (jbody($res) // {})->{data}{_id} // '';
    my ($got) = $dbh->selectrow_array('SELECT patient_id FROM appointments WHERE id = ?', undef, $appt);
    push @linked, $res->code == 200 && ($got // '') eq $id ? 'ok' : $res->code;
}
is("@after", join(' ', (200) x 6), 'after the upgrade: visits 200 without restarting Apache');
is("@linked", join(' ', ('ok') x 6), 'after the upgrade: add-and-link 200, appointment linked');
my ($keys) = $dbh->selectrow_array('SELECT count(*) FROM idempotency_keys WHERE key LIKE ?', undef,
                                   "wrong-db-$run-%");
is($keys, 6, 'the upgraded database stores Idempotency-Key answers');

# --- a table missing under a current clinic_schema ---
$dbh->do('ALTER TABLE idempotency_keys RENAME TO idempotency_keys_away');
$from = log_size();
my @missing;
for my $i (1 .. 8) {
    Apache::TestRequest::user_agent(reset => 1, keep_alive => 0);
    my $res = visit(headers => ['Idempotency-Key' => "wrong-db-missing-$run-$i"]);
    push @missing, $res->code == 500 && $res->content eq '{"error":"Internal server error"}' ? 500 : $res->code;
}
is("@missing", join(' ', (500) x 8), 'idempotency_keys gone: 500 with the fixed body');
$log = log_since($from);
$said = qr/\[clinic:error\].*statement clinic_idem_\w+ cannot be prepared .*idempotency_keys.* does not match sql\/schema-$kind\.sql/;
$per = per_pid($log, $said);
cmp_ok(scalar keys %$per, '>=', 1, 'the log names the statement and the table') or diag($log);
is(scalar(grep { $_ != 1 } values %$per), 0, 'once per process');
$dbh->do('ALTER TABLE idempotency_keys_away RENAME TO idempotency_keys');
my @back = map { Apache::TestRequest::user_agent(reset => 1, keep_alive => 0);
                 visit(headers => ['Idempotency-Key' => "wrong-db-back-$run-$_"])->code } 1 .. 6;
is("@back", join(' ', (200) x 6), 'table back: 200 again');

Apache::TestRequest::module('default');
done_testing();
