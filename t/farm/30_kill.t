# Farm check c: node B killed (SIGKILL) under load through the front. Every
# 200 the clients saw is committed and linked, nothing half-written, the
# front keeps serving with node A. FARM_LOAD_SECONDS (default 15) long; the
# kill comes at a third. Node B is started again at the end, for the files
# after this one (scripts/farm-run.pl runs the files in name order).
use strict;
use warnings;
use FindBin;
use HTTP::Tiny ();
use lib "$FindBin::Bin/../lib";
use Test::More;
use POSIX ();
use Time::HiRes qw(time sleep);
use JSON::PP ();
use Clinic::Farm qw(sleep_until counts same);
use Clinic::HTTP ();

my $farm = Clinic::Farm->load or plan skip_all => 'no farm: run make farm (scripts/farm-test.sh)';
my $json = JSON::PP->new->utf8->canonical;
my $dbh = $farm->dbh;
sub one { $farm->one(@_) }

sub kill_test {
    my $workers = 8;
    my $slice = 20000;
    my $dur = $ENV{FARM_LOAD_SECONDS} || 15;
    my $kill_after = $dur / 3;
    my $uid = 'farm_load';
    my $token = $farm->token({ sub => $uid, userId => $uid });
    $dbh->do(q{INSERT INTO appointments (id, doctor_id)
               SELECT 'c0' || lpad(to_hex(w), 2, '0') || lpad(to_hex(i), 20, '0'), ?
               FROM generate_series(0, ?) w, generate_series(0, ?) i}, undef, $uid, $workers - 1, $slice - 1);
    note(sprintf 'c: %d free appointments created for %s', $workers * $slice, $uid);
    my $sampler = $farm->sampler_start();
    my $t0 = time;
    my @pids;
    for my $w (0 .. $workers - 1) {
        my $pid = fork // die;
        if (!$pid) {
            open my $log, '>', $farm->work_dir . "/load-$w.log" or die;
            my $ua = Clinic::HTTP->new($farm->port('front'));
            my %h = ('Authorization' => "Bearer $token", 'Content-Type' => 'application/json');
            for (my $i = 0; $i < $slice && time < $t0 + $dur; $i++) {
                my $appt = sprintf 'c0%02x%020x', $w, $i;
                my $ts = time;
                my $res = $ua->post("/patients/add_and_link?uid=$uid", \%h,
                    $json->encode({ appointment_id => $appt, firstName => 'Load', lastName => "Worker$w" }));
                my $b = $res->{status} == 200 ? Clinic::Farm::jbody($res) : undef;
                my $id = $b && ref $b->{data} eq 'HASH' ? $b->{data}{_id} : '-';
                my $why = $res->{status} == 599 ? ($res->{reason} =~ s/\s+/_/gr) : '-';
                printf $log "%.6f %.6f %d %s %s %.60s\n", $ts, time, $res->{status}, $appt, $id, $why;
            }
            close $log;
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    sleep_until($t0 + $kill_after);
    my @victims = $farm->node_pids('node-b');
    my $t_kill = time;
    my $n = @victims ? kill('KILL', @victims) : 0;
    my $t_killed = time;   # the parent may lose the CPU around kill(): a window
    unlink $farm->run_dir . '/node-b.pid';   # so that cleanup signals no recycled pid
    ok(@victims >= 2 && $n == @victims, sprintf('c: node B killed at %.1f s (SIGKILL to parent %s and %d children)',
                                                $t_kill - $t0, $victims[0] // '?', @victims - 1));
    waitpid $_, 0 for @pids;
    note(sprintf 'c: load ran %.1f s; peak PostgreSQL sessions of both nodes: %s', time - $t0, $farm->sampler_stop($sampler));

    my (%phase, @rows);
    for my $w (0 .. $workers - 1) {
        open my $fh, '<', $farm->work_dir . "/load-$w.log" or next;
        while (<$fh>) {
            my ($ts, $td, $status, $appt, $id, $why) = split ' ';
            my $ph = $td < $t_kill ? 'before' : $ts > $t_killed ? 'after' : 'in-flight';
            $phase{$ph}{$status}++;
            push @rows, [$status, $appt, $id, $ph, $why];
        }
    }
    note(sprintf 'c: kill() took %.1f ms', 1000 * ($t_killed - $t_kill));
    note('c: answered before the kill: ' . counts($phase{before} // {}));
    note('c: in flight during the kill: ' . counts($phase{'in-flight'} // {}));
    note('c: sent after the kill: ' . counts($phase{after} // {}));
    my %why;
    $why{$_->[4]}++ for grep { $_->[0] == 599 } @rows;
    note("c: transport errors: $_ x$why{$_}") for sort keys %why;
    my %linked = map { @$_ } @{ $dbh->selectall_arrayref(
        'SELECT id, patient_id FROM appointments WHERE doctor_id = ? AND patient_id IS NOT NULL', undef, $uid) };
    my %patient = map { $_->[0] => 1 } @{ $dbh->selectall_arrayref(
        'SELECT id FROM practice_patients WHERE doctor_id = ?', undef, $uid) };
    my @ok = grep { $_->[0] == 200 } @rows;
    my @lost = grep { !(defined $linked{$_->[1]} && $linked{$_->[1]} eq $_->[2] && $patient{$_->[2]}) } @ok;
    note("c: 200 not committed: @{$_}[1,2]") for @lost[0 .. ($#lost < 4 ? $#lost : 4)];
    ok(@ok > 0 && !@lost, sprintf 'c: every 200 (%d) has its patient row and its appointment linked to that _id (%d not)',
       scalar @ok, scalar @lost);
    my %sent = map { $_->[1] => $_ } @rows;
    my @unknown = grep { $_->[0] != 200 } @rows;
    my $unknown_committed = grep { defined $linked{$_->[1]} } @unknown;
    note(sprintf 'c: %d answers other than 200 (outcome unknown to the client): %d committed, %d not',
         scalar @unknown, $unknown_committed, @unknown - $unknown_committed);
    same(scalar(grep { !$sent{$_} } keys %linked), 0, 'c: no appointment linked that no request asked for');
    same(scalar(keys %linked), @ok + $unknown_committed, 'c: links = 200s + committed unknown outcomes');
    same(scalar(grep { $_->[0] != 200 && $_->[0] != 502 && $_->[0] != 503 && $_->[0] != 599 } @rows), 0,
         'c: no answer but 200, 502/503 (front) and transport errors');
    same(one(q{SELECT count(*) FROM (SELECT patient_id FROM appointments WHERE patient_id IS NOT NULL
               GROUP BY patient_id HAVING count(*) > 1) d}), 0, 'c: no patient linked to two appointments');
    same(one(q{SELECT count(*) FROM practice_patients p WHERE doctor_id = ?
               AND NOT EXISTS (SELECT 1 FROM appointments a WHERE a.patient_id = p.id)}, $uid), 0,
         'c: no patient row left unlinked (no half-done request)');
    same(one(q{SELECT count(*) FROM appointments a JOIN practice_patients p ON p.id = a.patient_id
               WHERE a.doctor_id <> p.doctor_id}), 0, 'c: every link joins a doctor\'s own patient');
    my $before_all = 0; $before_all += $_ for values %{ $phase{before} // {} };
    same($phase{before}{200} // 0, $before_all, 'c: before the kill every answer is 200');
    my $after_all = 0; $after_all += $_ for values %{ $phase{after} // {} };
    my $after_ok = $phase{after}{200} // 0;
    ok($after_all > 0 && $after_ok * 2 > $after_all,
       sprintf 'c: the front kept serving after the kill (%d of %d answers 200, %.2f%%)', $after_ok, $after_all,
       $after_all ? 100 * $after_ok / $after_all : 0);
    note(sprintf 'c: %d requests in %.1f s, %.0f/s', scalar @rows, $dur, @rows / $dur);
}

kill_test();
$farm->restart_server('node-b');
is($farm->post(HTTP::Tiny->new(timeout => 30), 'b', '/visits', $farm->token({ sub => 'farm-c-back' }),
               { patient => 1750, status => 'farm-c-back' })->{status}, 200, 'c: node B started again answers');
done_testing();
