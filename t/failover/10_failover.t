# A PostgreSQL primary with a synchronous standby (pg_basebackup -R), one
# Apache node with a two-host DBDParams and target_session_attrs=read-write.
# Under load on both routes with Idempotency-Key retries, the primary is
# SIGKILLed and the standby promoted, as a failover manager would: nothing
# acknowledged is lost, nothing is written twice, clients only ever see 200
# or 503 with Retry-After, service is back within 5 s of the promotion with
# no Apache restart. A request blocked inside its transaction at the kill
# is retried and handled, never answered 409 (its claim died with it). Then
# the old primary comes back as a standby of the new one (requests still
# succeed), and the new primary is fenced read-only while the standby is
# promoted again: pooled sessions on the read-only server answer 503 once
# and reconnect to the primary (SQLSTATE 25006).
use strict;
use warnings;

use Test::More;
use JSON::PP ();
use Time::HiRes qw(sleep time);
use lib 't/lib';
use Clinic::Procs qw(wait_until on_exit stop_pid);
use Clinic::PgCluster;
use Clinic::Load;
use Clinic::Failover qw(work schema_files keys_once node post_retry hex24 appt_id check_answers_in_db);

my $json = JSON::PP->new->utf8->canonical;
my $d = work() . '/failover';
mkdir $d;
my $user = getpwuid($<);
my $run = hex24();
my $sync = ["synchronous_standby_names = '*'", 'synchronous_commit = on', 'max_connections = 200'];
my $nosync = ["synchronous_standby_names = ''"];

# --- the pair ---------------------------------------------------------------
my $p = Clinic::PgCluster->new(dir => "$d/p", conf => ['max_connections = 200'])->init->start;
$p->load_schema(schema_files());
my $s = Clinic::PgCluster->new(dir => "$d/s", conf => $nosync)->standby_of($p)->start;
$p->set(@$sync);
my $pdb = $p->dbh;
ok(wait_until(30, sub { ($pdb->selectrow_array(
        "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"))[0] == 1 }),
   'the standby streams synchronously');

# Free appointments: plenty per link client (a fast run makes ~2000 links
# per client in 11 s), series 8 for the later rounds, series 9 the pinned one.
my $per = 8000;
my @doctors = map { "fo-doc-$_" } 0 .. 3;
my $appts = q(INSERT INTO appointments (id, doctor_id)
              SELECT to_hex(4026531840 + ?::int) || lpad(to_hex(n), 16, '0'), ?
              FROM generate_series(0, ? - 1) n);   # = appt_id(series, n)
$pdb->do($appts, undef, $_, $doctors[$_], $per) for 0 .. $#doctors;
$pdb->do($appts, undef, 8, $doctors[0], 40);
my $pin_appt = appt_id(9, 0);
$pdb->do($appts, undef, 9, 'fo-pin', 1);
is(($pdb->selectrow_array('SELECT count(*) FROM appointments WHERE id = ?', undef, appt_id(3, $per - 1)))[0],
   1, 'appointments made with the ids the clients use');

my $params = 'host=' . $p->host . ',' . $s->host . ' port=' . $p->port . ',' . $s->port
           . " dbname=clinic user=$user target_session_attrs=read-write connect_timeout=2"
           . q( options='-c statement_timeout=5000');
my $h = node('fo', $params);
my $k = keys_once();

# --- load: 4 clients per route, every request keyed, retried on 503 ---------
my @clients;
for my $i (0 .. 3) {
    my $tok = $k->token({ sub => "fo-desk-$i" });
    push @clients, sub {
        my $key = "v$i-$_[0]-$run";
        return { path => '/visits', token => $tok, key => $key,
                 body => qq({"patient": 1750, "status": "fo $key"}) };
    };
}
for my $i (0 .. 3) {
    my $tok = $k->token({ sub => $doctors[$i], userId => $doctors[$i] });
    push @clients, sub {
        my $key = "l$i-$_[0]-$run";
        return { path => "/patients/add_and_link?uid=$doctors[$i]", token => $tok, key => $key,
                 body => sprintf('{"appointment_id": "%s", "firstName": "%s", "lastName": "Failover"}',
                                 appt_id($i, $_[0]), $key) };
    };
}
my $load = Clinic::Load->new(dir => "$d/load", url => $h->url(''), clients => \@clients)->start;

# A keyed request that is inside its transaction when the primary dies: its
# appointment is locked, so the request waits in its UPDATE.
my $locker = $p->dbh;
$locker->begin_work;
$locker->do('SELECT id FROM appointments WHERE id = ? FOR UPDATE', undef, $pin_appt);
my $pin_key = "pin-$run";
my $pin_tok = $k->token({ sub => 'fo-pin', userId => 'fo-pin' });
my $pin_body = qq({"appointment_id": "$pin_appt", "firstName": "$pin_key", "lastName": "Pinned"});
pipe(my $pin_rd, my $pin_wr) or die;
my $pin_pid = fork // die;
if (!$pin_pid) {
    close $pin_rd;
    my ($res, @seen) = post_retry($h->url('/patients/add_and_link?uid=fo-pin'), $pin_tok,
                                  $pin_body, $pin_key, give_up => 40);
    print $pin_wr $json->encode({ status => $res->{status}, answer => $res->{content},
                                  seen => \@seen, key => $pin_key, body => $pin_body,
                                  path => '/patients/add_and_link?uid=fo-pin' });
    close $pin_wr;
on_exit(sub { stop_pid($pin_pid, 'KILL', 1) });
    POSIX::_exit(0);
}
close $pin_wr;

sleep 3;
my ($before) = $pdb->selectrow_array('SELECT count(*) FROM visits');
ok($before > 20, "load is running ($before visits before the kill)");
ok(wait_until(5, sub { ($pdb->selectrow_array(q(SELECT count(*) FROM pg_stat_activity
        WHERE wait_event_type = 'Lock')))[0] >= 1 }), 'the pinned request waits inside its transaction');

# --- the failover -----------------------------------------------------------
my $t_kill = time;
$p->kill9;
$_->{InactiveDestroy} = 1 for $locker, $pdb;   # their server is gone
my $t_promote = time;
$s->promote;
my $t_promoted = time;
sleep 8;
$load->stop;
my @done = $load->results;
my $pin = do { local $/; $json->decode(<$pin_rd>) };
waitpid($pin_pid, 0);

my @tries = map { @{ $_->{tries} } } @done;
my %codes;
$codes{$_->[2] . ($_->[2] == 503 && !$_->[3] ? ' without Retry-After' : '')}++ for @tries;
my $codes = join(', ', map { "$_: $codes{$_}" } sort keys %codes);
diag("answers seen: $codes; " . scalar(@done) . ' requests');
is(join(',', grep { !/^(200|503)$/ } keys %codes), '', 'during the failover only 200 and 503 with Retry-After');
ok($codes{503}, 'the failover was seen (some 503)');
ok(scalar(grep { @{ $_->{tries} } > 1 && $_->{status} == 200 } @done) > 0,
   'requests retried with their key after a 503 ended in 200');
my ($slowest) = sort { $b <=> $a } map { $_->[1] } @tries;
ok($slowest < 12, sprintf('no hung worker: the slowest answer took %.1f s', $slowest));
my ($first_ok) = sort { $a <=> $b } map { $_->[0] + $_->[1] }
    grep { $_->[2] == 200 && $_->[0] + $_->[1] > $t_promoted } @tries;
my $back = defined $first_ok ? $first_ok - $t_promoted : 99;
ok($back < 5, sprintf('first 200 %.3f s after the promotion completed (%.2f s after the kill; '
                      . 'pg_ctl promote took %.2f s), no Apache restart',
                      $back, ($first_ok // 0) - $t_kill, $t_promoted - $t_promote));
my $sdb = $s->dbh;
check_answers_in_db($sdb, [@done, $pin], 'failover');
is($pin->{status}, 200, 'the request in flight at the kill, retried with its key: 200 (seen '
                        . join(' ', @{ $pin->{seen} }) . ')');
ok(!grep({ /^409/ } @{ $pin->{seen} }), '... never 409 in progress: its claim died with it');
my %answered = map { (($json->decode($_->{answer})->{data} || {})->{_id} // '') => 1 }
    grep { $_->{path} =~ /add_and_link/ && $_->{status} == 200 } @done, $pin;
my $pps = $sdb->selectcol_arrayref(q(SELECT id FROM practice_patients WHERE doctor_id LIKE 'fo-%'));
is(scalar(grep { !$answered{$_} } @$pps), 0,
   'no practice patient exists without the answer that created it (' . scalar(@$pps) . ' patients)');
my ($linked) = $sdb->selectrow_array(q(SELECT count(*) FROM appointments WHERE doctor_id LIKE 'fo-%'
                                       AND patient_id IS NOT NULL));
is($linked, scalar(@$pps), 'every appointment linked holds exactly its one answered patient');
my ($twice) = $sdb->selectrow_array(q(SELECT count(*) FROM (SELECT patient_id FROM appointments
                                      WHERE patient_id IS NOT NULL GROUP BY 1 HAVING count(*) > 1) x));
is($twice, 0, 'no patient is linked to two appointments');

# --- demotion: the old primary returns as a standby of the new one ----------
$s->set(@$sync);
my $p2 = $p;
$p2->{conf} = $nosync;
$p2->standby_of($s)->start;
ok(wait_until(30, sub { ($sdb->selectrow_array(
        "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"))[0] == 1 }),
   'the old primary streams from the new one as its synchronous standby');
# A failover manager restarting the node drops its sessions; new ones try
# the old primary first (it is now a standby, skipped) and reach the primary.
$sdb->do(q(SELECT pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()));
my $vt = $k->token({ sub => 'fo-desk-demote' });
my $lt = $k->token({ sub => $doctors[0], userId => $doctors[0] });
# Ten keyed requests, alternating the routes, each retried until answered;
# links take appointments of series 8 from $first_appt on.
sub ten_keyed {
    my ($tag, $first_appt) = @_;
    my @out;
    for my $n (0 .. 9) {
        my $key = "$tag-$n-$run";
        my ($path, $tok, $body) = $n % 2
            ? ("/patients/add_and_link?uid=$doctors[0]", $lt,
               sprintf('{"appointment_id": "%s", "firstName": "%s", "lastName": "%s"}',
                       appt_id(8, $first_appt + $n), $key, $tag))
            : ('/visits', $vt, qq({"patient": 1750, "status": "fo $key"}));
        my ($res, @seen) = post_retry($h->url($path), $tok, $body, $key, give_up => 15);
        push @out, { path => $path, key => $key, status => $res->{status},
                     answer => $res->{content}, seen => \@seen };
    }
    return @out;
}
my @after = ten_keyed('demote', 0);
is(join(' ', grep { !/^(200|503)$/ } map { @{ $_->{seen} } } @after), '',
   'after the demotion: only 200 and 503 with Retry-After');
check_answers_in_db($sdb, \@after, 'after the demotion');

# --- a server that became read-only (SQLSTATE 25006) -------------------------
# Fence the primary the sessions are on (default_transaction_read_only, as a
# switchover does before promoting), then promote the standby.
$sdb->do('ALTER SYSTEM SET default_transaction_read_only = on');
$sdb->do('SELECT pg_reload_conf()');
$p2->promote;
my @ro = ten_keyed('readonly', 20);
my @ro_seen = map { @{ $_->{seen} } } @ro;
diag('read-only switchover answers: ' . join(' ', @ro_seen));
is(join(' ', grep { !/^(200|503)$/ } @ro_seen), '', 'read-only server: only 200 and 503 with Retry-After');
ok(grep({ $_ eq '503' } @ro_seen), 'a pooled session met the read-only server (503)');
check_answers_in_db($p2->dbh, \@ro, 'after the read-only switchover');
ok(scalar($h->log_lines(qr/database server is read-only/)), 'the error log says the server was read-only');
is(scalar($h->log_lines(qr/\b(segfault|Segmentation|AH00052)\b/)), 0, 'no child crashed');

done_testing();
