# Farm check d: `apache2 -k graceful` twice during a wrk run on node A (16
# connections, FARM_WRK_SECONDS, default 20), for each route: no 5xx, no
# socket error, every 200 committed. The wrk script is bench/farm-graceful.lua.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(time sleep);
use Clinic::Farm qw(sleep_until counts same);

my $farm = Clinic::Farm->load or plan skip_all => 'no farm: run make farm (scripts/farm-test.sh)';
my $lua = "$FindBin::Bin/../../bench/farm-graceful.lua";
my $dbh = $farm->dbh;
sub one { $farm->one(@_) }
my %token = (visits => $farm->token({ sub => 'farm-registration-desk' }),
             link => $farm->token({ sub => 'farm_grace', userId => 'farm_grace' }));

sub graceful_test {
    my ($route) = @_;
    my $dur = $ENV{FARM_WRK_SECONDS} || 20;
    my ($conns, $threads) = (16, 2);
    # Free appointments per wrk thread: well over what one thread links in
    # $dur s (both threads together linked 6,540/s with the one-statement SQL).
    my $per_thread = 10000 * $dur;
    my $uid = 'farm_grace';
    my $name = $route eq 'visits' ? '/visits' : 'add_and_link';
    if ($route eq 'link') {
        $dbh->do(q{INSERT INTO appointments (id, doctor_id)
                   SELECT 'd1' || lpad(to_hex(t), 2, '0') || lpad(to_hex(i), 20, '0'), ?
                   FROM generate_series(1, ?) t, generate_series(0, ?) i}, undef, $uid, $threads, $per_thread - 1);
    }
    my $rows0 = $route eq 'visits' ? one(q{SELECT count(*) FROM visits WHERE status LIKE 'farm-d-%'}) : 0;
    my $g0 = $farm->graceful_count('node-a');
    my $sampler = $farm->sampler_start();
    my $work = $farm->work_dir;
    my $out = "$work/wrk-$route.out";
    my $t0 = time;
    my $pid = fork // die;
    if (!$pid) {
        open STDOUT, '>', $out or die;
        open STDERR, '>&', \*STDOUT or die;
        exec 'wrk', "-t$threads", "-c$conns", "-d${dur}s", '--timeout', '10s', '-s', $lua,
            "http://127.0.0.1:" . $farm->port('a') . '/', '--', $route, $work,
            $token{$route}, $uid;
        die "exec wrk: $!";
    }
    my @rc;
    for my $at (0.3 * $dur, 0.65 * $dur) {
        sleep_until($t0 + $at);
        push @rc, $farm->graceful('node-a');
        note(sprintf "d %s: apache2 -k graceful at %.1f s: exit %d", $name, time - $t0, $rc[-1]);
    }
    waitpid $pid, 0;
    my $wrk_rc = $? >> 8;
    note("d $name: peak PostgreSQL sessions of node A: " . $farm->sampler_stop($sampler));
    open my $fh, '<', $out or die;
    my @wrk = <$fh>;
    close $fh;
    note(map { "  $_" } grep { !/^LUA/ } @wrk);
    my %st = map { (split ' ')[2, 3] } grep { /^LUA status/ } @wrk;
    my ($sent_all, $got_all) = (join('', @wrk) =~ /LUA sent (\d+) answered (\d+)/);
    my ($e_conn, $e_read, $e_write, $e_to, $e_status) =
        (join('', @wrk) =~ /LUA errors connect (\d+) read (\d+) write (\d+) timeout (\d+) status (\d+)/);
    same($wrk_rc, 0, "d $name: wrk ran");
    same(join(' ', @rc), '0 0', "d $name: two graceful restarts sent");
    same($farm->graceful_count('node-a') - $g0, 2, "d $name: node A logged two graceful restarts");
    note("d $name: statuses: " . counts(\%st) . "; sent $sent_all, answered $got_all");
    same(join(' ', map { $_ // '?' } $e_conn, $e_read, $e_write, $e_to), '0 0 0 0',
         "d $name: socket errors connect/read/write/timeout");
    same(scalar(grep { $_ >= 500 } keys %st), 0, "d $name: no 5xx");
    same(scalar(grep { $_ != 200 } keys %st), 0, "d $name: no answer but 200");

    # every request and answer, from the per-thread logs
    my (%sent, %ok);
    my $bad = 0;
    for my $t (1 .. $threads) {
        open my $l, '<', "$work/wrk-$route-$t.log" or next;
        while (<$l>) {
            my ($kind, @f) = split ' ';
            if ($kind eq 'S') { $sent{$f[0]} = 1 }
            elsif ($f[0] == 200) { $f[1] =~ /^[-?]$/ ? $bad++ : ($ok{$f[1]} = $f[2]) }
        }
    }
    my $unanswered = grep { !exists $ok{$_} } keys %sent;
    same($bad, 0, "d $name: every 200 names its request");
    my %committed;
    if ($route eq 'visits') {
        %committed = map { $_->[1] => $_->[0] } @{ $dbh->selectall_arrayref(
            q{SELECT id, status FROM visits WHERE status LIKE 'farm-d-%'}) };
        same(one(q{SELECT count(*) FROM visits WHERE status LIKE 'farm-d-%'}) - $rows0,
             scalar(keys %committed), "d $name: rows of this run");
    } else {
        %committed = map { @$_ } @{ $dbh->selectall_arrayref(
            'SELECT id, patient_id FROM appointments WHERE doctor_id = ? AND patient_id IS NOT NULL', undef, $uid) };
        same(one(q{SELECT count(*) FROM practice_patients p WHERE doctor_id = ?
                   AND NOT EXISTS (SELECT 1 FROM appointments a WHERE a.patient_id = p.id)}, $uid), 0,
             "d $name: no patient row left unlinked");
        ok(one('SELECT count(*) FROM appointments WHERE doctor_id = ? AND patient_id IS NULL', $uid) > 0,
           "d $name: free appointments left over (the run did not exhaust them)");
    }
    my @lost = grep { !defined $committed{$_} || $committed{$_} ne $ok{$_} } keys %ok;
    ok(keys(%ok) > 0 && !@lost, sprintf "d %s: every 200 (%d) is a committed row with its id (%d not)",
       $name, scalar keys %ok, scalar @lost);
    my @extra = grep { !exists $ok{$_} } keys %committed;
    same(scalar(grep { !$sent{$_} } @extra), 0, "d $name: no committed row that wrk did not send");
    note(sprintf "d %s: %d rows added = %d answered 200 + %d in flight when wrk stopped (%d sent, not answered)",
         $name, scalar keys %committed, scalar keys %ok, scalar @extra, $unanswered);
    ok(@extra == $unanswered && $unanswered <= $conns,
       "d $name: rows added = 200s + requests in flight at wrk's stop (at most one per connection)");
    note(sprintf "d %s: %.0f requests/s", $name, $got_all / $dur) if $got_all;
}

graceful_test('visits');
graceful_test('link');
done_testing();
