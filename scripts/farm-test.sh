#!/bin/bash
# The farm test: two Apache nodes with mod_clinic behind a mod_proxy_balancer
# front (conf/farm/*.conf.in), one PostgreSQL cluster created here with initdb
# in a temp dir (unix socket only), all on 127.0.0.1. Checks:
#
#   a. link races through both nodes: 20 clients, alternating node A and B,
#      post their own patient for ONE free appointment: exactly one 200,
#      nineteen 409, one row, the appointment holds the winner (3 rounds)
#   b. Idempotency-Key across nodes: the answer of node A is replayed by
#      node B byte for byte, nothing written twice (also with racing copies)
#   c. node B killed (SIGKILL) under load through the front: every 200 the
#      clients saw is committed and linked, nothing half-written, the front
#      keeps serving with node A
#   d. `apache2 -k graceful` twice during a 20 s wrk run (16 connections) on
#      node A, for each route: no 5xx, no socket error, every 200 committed
#
# Run as root: PostgreSQL and the Apache children run as the unprivileged
# user `clinictest` (created if missing). Otherwise as the current user.
# Needs the module and the token tool built (make mod_clinic.so tools/mkjwt).
#
#   FARM_KEEP=1          keep the work dir (logs, configs) for inspection
#   FARM_LOAD_SECONDS=15 length of the kill test (c); the kill comes at 1/3
#   FARM_WRK_SECONDS=20  length of each graceful-restart wrk run (d)
# Ends with the line `farm: N passed, M failed`; exit 0 only when M = 0.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
httpd=$(apxs -q SBINDIR)/$(apxs -q TARGET)
moddir=$(apxs -q LIBEXECDIR)
t_start=$(date +%s)

for f in "$top/mod_clinic.so" "$top/tools/mkjwt"; do
    [ -f "$f" ] || { echo "farm: $f missing: make mod_clinic.so tools/mkjwt" >&2; exit 2; }
done
for m in mod_proxy mod_proxy_http mod_proxy_balancer mod_lbmethod_byrequests mod_slotmem_shm \
         mod_mpm_event mod_dbd mod_reqtimeout; do
    [ -f "$moddir/$m.so" ] || { echo "farm: $moddir/$m.so missing (Debian package apache2)" >&2; exit 2; }
done
command -v wrk >/dev/null || { echo "farm: wrk missing (Debian package wrk)" >&2; exit 2; }

# shellcheck source=scripts/unpriv.sh
. "$top/scripts/unpriv.sh"
group=$(id -gn "$user")

work=$(mktemp -d /tmp/mod_clinic-farm.XXXXXX)
run="$work/run"
keys="$work/keys"
pgdata="$work/pg"
mkdir -p "$run/rt-a" "$run/rt-b" "$run/rt-front" "$run/cores-a" "$run/cores-b" "$keys"
# The servers load a private copy: a rebuild in the tree during the run
# rewrites mod_clinic.so in place, and every process that mapped it crashes.
cp "$top/mod_clinic.so" "$top/tools/mkjwt" "$work/"
cp -r "$top/sql" "$work/"

# Stop an Apache by the pid in its own pid file (SIGTERM, then SIGKILL).
stop_apache() {
    local pidfile="$run/$1.pid" pid i
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile" 2>/dev/null || true)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_apache front
    stop_apache node-a
    stop_apache node-b
    if [ -f "$pgdata/postmaster.pid" ]; then
        as_user "$pgbin/pg_ctl" -D "$pgdata" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [ -n "${FARM_KEEP:-}" ]; then echo "farm: work dir kept: $work"; else rm -rf "$work"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- keys and tokens -------------------------------------------------------
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$keys/jwt-private.pem" 2>/dev/null
openssl pkey -in "$keys/jwt-private.pem" -pubout -out "$keys/jwt-public.pem"
mint() { "$work/mkjwt" sign --alg RS256 --key "$keys/jwt-private.pem" --claims "$1" --exp-in 3600; }
token_visits=$(mint '{"sub":"farm-registration-desk"}')
token_load=$(mint '{"sub":"farm_load","userId":"farm_load"}')
token_grace=$(mint '{"sub":"farm_grace","userId":"farm_grace"}')

# --- PostgreSQL ------------------------------------------------------------
chown -R "$user:$group" "$work" 2>/dev/null || true
# Room for two nodes' pools, graceful-restart overlap included (FARM.md).
# shellcheck source=scripts/pgtemp.sh
. "$top/scripts/pgtemp.sh"
pg_temp_start "$pgdata" "max_connections = 300"
dbparams="host=$pgdata dbname=clinic user=$user connect_timeout=2 options='-c statement_timeout=5000'"

# --- three free loopback ports ---------------------------------------------
read -r port_a port_b port_front < <(perl -MIO::Socket::INET -e '
    my @s = map { IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1,
                                        ReuseAddr => 1) or die "no free port: $!" } 1 .. 3;
    print join(" ", map { $_->sockport } @s), "\n";')

render() {   # render TEMPLATE OUTPUT NODE PORT
    sed -e "s|@RUNDIR@|$run|g" -e "s|@TOPDIR@|$work|g" -e "s|@MODDIR@|$moddir|g" \
        -e "s|@KEYDIR@|$keys|g" -e "s|@DBPARAMS@|$dbparams|g" -e "s|@USER@|$user|g" \
        -e "s|@GROUP@|$group|g" -e "s|@NODE@|$3|g" -e "s|@PORT@|$4|g" \
        -e "s|@PORT_A@|$port_a|g" -e "s|@PORT_B@|$port_b|g" "$top/conf/farm/$1.conf.in" > "$2"
}
render node "$run/node-a.conf" a "$port_a"
render node "$run/node-b.conf" b "$port_b"
render front "$run/front.conf" front "$port_front"
chown -R "$user:$group" "$run" 2>/dev/null || true

wait_port() {   # wait until something answers HTTP on the port
    local i
    for i in $(seq 1 100); do
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" && return 0
        sleep 0.1
    done
    echo "farm: nothing answers on 127.0.0.1:$1" >&2
    return 1
}
# A crashing child leaves a core in run/cores-*; reported below.
ulimit -c unlimited 2>/dev/null || true
for n in node-a node-b front; do
    "$httpd" -t -f "$run/$n.conf" 2>&1 | grep -v 'Syntax OK' || true
    "$httpd" -f "$run/$n.conf" -k start
done
wait_port "$port_a"
wait_port "$port_b"
wait_port "$port_front"
echo "farm: node A 127.0.0.1:$port_a, node B 127.0.0.1:$port_b, front 127.0.0.1:$port_front, work dir $work"

# --- the checks (perl: HTTP::Tiny clients, DBI for the database, wrk) -------
cat > "$work/farm.pl" <<'PERL'
use strict;
use warnings;
use POSIX ();
use Time::HiRes qw(time sleep);
use HTTP::Tiny;
use JSON::PP;
use DBI;

$| = 1;
my %E = map { $_ => $ENV{"FARM_$_"} } qw(PORT_A PORT_B PORT_FRONT WORK RUN PGHOST PGUSER HTTPD
    MKJWT KEY TOKEN_VISITS TOKEN_LOAD TOKEN_GRACE LOAD_SECONDS WRK_SECONDS);
my ($A, $B, $F) = @E{qw(PORT_A PORT_B PORT_FRONT)};
my $json = JSON::PP->new->utf8->canonical;
my $dsn = "dbi:Pg:host=$E{PGHOST};dbname=clinic;application_name=farm-test";
my $dbh = DBI->connect($dsn, $E{PGUSER}, '', { RaiseError => 1, AutoCommit => 1, PrintError => 0 });
$dbh->{AutoInactiveDestroy} = 1;   # forked children never close the parent's session
my $run = sprintf '%x%x', time, $$;

my ($passed, $failed) = (0, 0);
sub check {
    my ($ok, $name) = @_;
    print +($ok ? 'ok' : 'not ok'), " - $name\n";
    $ok ? $passed++ : $failed++;
    return $ok;
}
sub same { my ($got, $want, $name) = @_; $got //= 'undef'; check($got eq $want, "$name (got $got, want $want)") }
sub info { print "# @_\n" }
sub one { my ($sql, @bind) = @_; my ($v) = $dbh->selectrow_array($sql, undef, @bind); $v }
sub sleep_until { my ($t) = @_; my $d = $t - time; sleep($d) if $d > 0 }   # HiRes dies on < 0
sub hex24 { join '', map { sprintf '%02x', int rand 256 } 1 .. 12 }

sub token {
    my ($claims) = @_;
    open my $fh, '-|', $E{MKJWT}, 'sign', '--alg', 'RS256', '--key', $E{KEY},
        '--claims', $json->encode($claims), '--exp-in', '3600' or die "mkjwt: $!";
    my $t = <$fh>;
    close $fh or die "mkjwt failed";
    chomp $t;
    return $t;
}

sub post {
    my ($ua, $port, $path, $token, $body, %h) = @_;
    return $ua->request('POST', "http://127.0.0.1:$port$path", {
        headers => { 'Authorization' => "Bearer $token", 'Content-Type' => 'application/json', %h },
        content => ref $body ? $json->encode($body) : $body });
}
sub jbody { my ($res) = @_; my $b = eval { $json->decode($res->{content}) }; $b }

# A minimal keep-alive HTTP/1.1 client: the whole request in ONE write with
# TCP_NODELAY (HTTP::Tiny writes headers and body separately, and Nagle plus
# delayed ACKs then cost ~40 ms a request), and precise transport errors.
package Mini {
    use IO::Socket::INET;
    use Socket qw(IPPROTO_TCP TCP_NODELAY);
    use IO::Select;
    sub new { my ($class, $port) = @_; bless { port => $port }, $class }
    sub fail { my ($self, $why) = @_; close $self->{sock} if $self->{sock}; delete $self->{sock};
               return { status => 599, reason => $why, headers => {}, content => '' } }
    sub post {
        my ($self, $path, $hdrs, $body) = @_;
        my $req = "POST $path HTTP/1.1\r\nHost: 127.0.0.1:$self->{port}\r\n"
            . join('', map { "$_: $hdrs->{$_}\r\n" } sort keys %$hdrs)
            . 'Content-Length: ' . length($body) . "\r\n\r\n" . $body;
        my $reused = $self->{sock} ? 'reused' : 'new';
        if (!$self->{sock}) {
            $self->{sock} = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port},
                                                  Proto => 'tcp', Timeout => 5)
                or return $self->fail("connect:$!");
            setsockopt($self->{sock}, IPPROTO_TCP, TCP_NODELAY, 1);
        }
        my $s = $self->{sock};
        for (my $off = 0; $off < length $req;) {
            my $n = syswrite $s, $req, length($req) - $off, $off;
            return $self->fail("write($reused):$!") unless $n;
            $off += $n;
        }
        my ($buf, $need, %h, $status) = ('');
        my $sel = IO::Select->new($s);
        while (1) {
            if (!defined $status && $buf =~ /\r\n\r\n/) {
                my ($head, $rest) = split /\r\n\r\n/, $buf, 2;
                my ($line, @lines) = split /\r\n/, $head;
                ($status) = $line =~ m{^HTTP/1\.\d (\d{3})} or return $self->fail('bad-status-line');
                for (@lines) { my ($k, $v) = /^([^:]+):\s*(.*)$/ or next; $h{lc $k} = $v }
                $need = $h{'content-length'} // 0;
                $buf = $rest;
            }
            last if defined $status && length $buf >= $need;
            return $self->fail("timeout($reused)") unless $sel->can_read(30);
            my $n = sysread $s, $buf, 65536, length $buf;
            return $self->fail(($n // 0) == 0 && defined $n
                ? (defined $status ? "eof-in-body($reused)" : length $buf ? "eof-in-head($reused)" : "eof-before-answer($reused)")
                : "read($reused):$!") unless $n;
        }
        if (lc($h{connection} // '') eq 'close') { close $s; delete $self->{sock} }
        return { status => $status, headers => \%h, content => $buf };
    }
}

# Peak number of PostgreSQL sessions opened by the nodes, sampled every
# 100 ms by a child process until sampler_stop.
sub sampler_start {
    my $file = "$E{WORK}/sampler.$$." . time;
    my $pid = fork // die;
    if (!$pid) {
        my $d = DBI->connect($dsn, $E{PGUSER}, '', { RaiseError => 1, AutoCommit => 1, PrintError => 0 });
        my $max = 0;
        my $stop = 0;
        local $SIG{TERM} = sub { $stop = 1 };
        while (!$stop) {
            my ($n) = $d->selectrow_array(q{SELECT count(*) FROM pg_stat_activity WHERE datname = 'clinic'
                AND backend_type = 'client backend' AND application_name <> 'farm-test'});
            $max = $n if $n > $max;
            sleep 0.1;
        }
        open my $fh, '>', $file or POSIX::_exit(1);
        print $fh "$max\n";
        close $fh;
        $d->disconnect;
        POSIX::_exit(0);
    }
    return [$pid, $file];
}
sub sampler_stop {
    my ($s) = @_;
    kill 'TERM', $s->[0];
    waitpid $s->[0], 0;
    open my $fh, '<', $s->[1] or return '?';
    chomp(my $max = <$fh> // '?');
    return $max;
}

sub counts { my ($h) = @_; join(', ', map { "$_: $h->{$_}" } sort keys %$h) || 'none' }

# ------------------------------------------------------------------------
# a. link races through both nodes
sub race_round {
    my ($round) = @_;
    my $clients = 20;
    my $uid = "farm_race_${run}_$round";
    my $appt = hex24();
    $dbh->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $appt, $uid);
    my $tok = token({ sub => $uid, userId => $uid });
    pipe(my $go_r, my $go_w) or die;
    pipe(my $res_r, my $res_w) or die;
    pipe(my $ready_r, my $ready_w) or die;
    my @pids;
    for my $i (1 .. $clients) {
        my $port = $i % 2 ? $A : $B;
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $_ for $go_w, $res_r, $ready_r;
            alarm 60;
            my $line = "$i $port 000 - not-sent\n";
            eval {
                my $ua = HTTP::Tiny->new(keep_alive => 0, timeout => 30);
                my $body = $json->encode({ appointment_id => $appt, firstName => "Racer$i", lastName => 'Farm' });
                syswrite $ready_w, 'r';
                close $ready_w;
                sysread $go_r, my $buf, 1;        # EOF: the parent let go
                my $res = post($ua, $port, "/patients/add_and_link?uid=$uid", $tok, $body);
                my $b = jbody($res);
                my $id = ref $b eq 'HASH' && ref $b->{data} eq 'HASH' ? $b->{data}{_id} // '-' : '-';
                my $code = ref $b eq 'HASH' ? $b->{code} // '-' : '-';
                $line = "$i $port $res->{status} $id $code\n";
                1;
            } or $line = "$i $port 000 - died\n";
            syswrite $res_w, $line;
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    close $_ for $go_r, $res_w, $ready_w;
    my ($ready, $buf) = (0, '');
    while ($ready < $clients) { my $n = sysread $ready_r, $buf, $clients or last; $ready += $n }
    close $ready_r;
    close $go_w;                                  # go!
    my @lines = <$res_r>;
    close $res_r;
    waitpid $_, 0 for @pids;

    my (%st, %by_node, $winner, $winner_i);
    for (@lines) {
        my ($i, $port, $status, $id, $code) = split ' ';
        $st{$status}++;
        $by_node{($port == $A ? 'A' : 'B') . " $status"}++;
        ($winner, $winner_i) = ($id, $i) if $status eq '200';
        info("round $round: client $i (node " . ($port == $A ? 'A' : 'B') . ") answered $status $code")
            if $status ne '200' && !($status eq '409' && $code eq 'APPOINTMENT_ALREADY_LINKED');
    }
    info("round $round: " . counts(\%by_node));
    same(scalar @lines, $clients, "a$round: all clients answered");
    same($st{200} // 0, 1, "a$round: exactly one 200");
    same($st{409} // 0, $clients - 1, "a$round: nineteen 409");
    same(one('SELECT count(*) FROM practice_patients WHERE doctor_id = ?', $uid), 1,
         "a$round: one practice_patients row for the doctor");
    my $linked = one('SELECT patient_id FROM appointments WHERE id = ?', $appt);
    check(defined $winner && defined $linked && $linked eq $winner,
          "a$round: appointment.patient_id is the winner's _id");
    same(one('SELECT first_name FROM practice_patients WHERE doctor_id = ?', $uid),
         defined $winner_i ? "Racer$winner_i" : '(no winner)', "a$round: the stored patient is the winner's");
}

# ------------------------------------------------------------------------
# b. Idempotency-Key across nodes
sub idempotency {
    my $ua = HTTP::Tiny->new(keep_alive => 0, timeout => 30);
    my $visits0 = one('SELECT count(*) FROM visits');
    my $key = "farm-b-$run-visit";
    my $body = { patient => 1750, status => "farm-b-$run" };
    my $r1 = post($ua, $A, '/visits', $E{TOKEN_VISITS}, $body, 'Idempotency-Key' => $key);
    same($r1->{status}, 200, 'b: POST /visits with a key on node A');
    my $r2 = post($ua, $B, '/visits', $E{TOKEN_VISITS}, $body, 'Idempotency-Key' => $key);
    same($r2->{status}, 200, 'b: the same on node B');
    same($r2->{headers}{'idempotent-replayed'}, 'true', 'b: node B says Idempotent-Replayed: true');
    check($r1->{content} eq $r2->{content}, 'b: node B answers node A\'s body byte for byte');
    same(one('SELECT count(*) FROM visits') - $visits0, 1, 'b: one visit row');
    my $r3 = post($ua, $B, '/visits', $E{TOKEN_VISITS}, { %$body, status => 'other' }, 'Idempotency-Key' => $key);
    same($r3->{status}, 422, 'b: the key with another body on node B');

    # add-and-link: first on B, the retry on A
    my $uid = "farm_idem_$run";
    my $appt = hex24();
    $dbh->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $appt, $uid);
    my $tok = token({ sub => $uid, userId => $uid });
    my $lb = { appointment_id => $appt, firstName => 'Idem', lastName => 'Farm' };
    my $l1 = post($ua, $B, "/patients/add_and_link?uid=$uid", $tok, $lb, 'Idempotency-Key' => 'k1');
    my $l2 = post($ua, $A, "/patients/add_and_link?uid=$uid", $tok, $lb, 'Idempotency-Key' => 'k1');
    same("$l1->{status} $l2->{status}", '200 200', 'b: add_and_link on node B, its retry on node A');
    same($l2->{headers}{'idempotent-replayed'}, 'true', 'b: node A replays');
    check($l1->{content} eq $l2->{content}, 'b: the same body, the same _id');
    same(one('SELECT count(*) FROM practice_patients WHERE doctor_id = ?', $uid), 1, 'b: one patient row');

    # ten copies of one keyed request at once, alternating nodes
    my $key2 = "farm-b-$run-race";
    my $rbody = $json->encode({ patient => 1750, status => "farm-b-race-$run" });
    $visits0 = one('SELECT count(*) FROM visits');
    pipe(my $res_r, my $res_w) or die;
    my @pids;
    my $t0 = time + 0.5;
    for my $i (1 .. 10) {
        my $pid = fork // die;
        if (!$pid) {
            close $res_r;
            my $ua2 = HTTP::Tiny->new(keep_alive => 0, timeout => 30);
            sleep_until($t0);
            my $res = post($ua2, $i % 2 ? $A : $B, '/visits', $E{TOKEN_VISITS}, $rbody, 'Idempotency-Key' => $key2);
            syswrite $res_w, "$res->{status} " . ($res->{headers}{'idempotent-replayed'} // '-') . "\n";
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    close $res_w;
    my @lines = <$res_r>;
    waitpid $_, 0 for @pids;
    my %st;
    $st{join ' ', split ' '}++ for @lines;
    info('b: ten racing copies: ' . counts(\%st));
    same($st{'200 -'} // 0, 1, 'b: exactly one racing copy did the work');
    same(scalar(grep { !/^(200 true|200 -|409 -)$/ } map { join ' ', split ' ' } @lines), 0,
         'b: the others were replayed or told "in progress"');
    same(one('SELECT count(*) FROM visits') - $visits0, 1, 'b: one visit row for ten racing copies');
}

# ------------------------------------------------------------------------
# c. node B killed under load through the front
sub node_pids {    # the parent from its pid file, and its children
    my ($name) = @_;
    open my $fh, '<', "$E{RUN}/$name.pid" or return;
    chomp(my $pid = <$fh> // '');
    return unless $pid =~ /^\d+$/ && kill 0, $pid;
    my @kids = grep { /^\d+$/ } map { s/\s+//gr } `ps -o pid= --ppid $pid`;
    return ($pid, @kids);
}

sub kill_test {
    my $workers = 8;
    my $slice = 20000;
    my $dur = $E{LOAD_SECONDS};
    my $kill_after = $dur / 3;
    my $uid = 'farm_load';
    $dbh->do(q{INSERT INTO appointments (id, doctor_id)
               SELECT 'c0' || lpad(to_hex(w), 2, '0') || lpad(to_hex(i), 20, '0'), ?
               FROM generate_series(0, ?) w, generate_series(0, ?) i}, undef, $uid, $workers - 1, $slice - 1);
    info(sprintf 'c: %d free appointments created for %s', $workers * $slice, $uid);
    my $sampler = sampler_start();
    my $t0 = time;
    my @pids;
    for my $w (0 .. $workers - 1) {
        my $pid = fork // die;
        if (!$pid) {
            open my $log, '>', "$E{WORK}/load-$w.log" or die;
            my $ua = Mini->new($F);
            my %h = ('Authorization' => "Bearer $E{TOKEN_LOAD}", 'Content-Type' => 'application/json');
            for (my $i = 0; $i < $slice && time < $t0 + $dur; $i++) {
                my $appt = sprintf 'c0%02x%020x', $w, $i;
                my $ts = time;
                my $res = $ua->post("/patients/add_and_link?uid=$uid", \%h,
                    $json->encode({ appointment_id => $appt, firstName => 'Load', lastName => "Worker$w" }));
                my $b = $res->{status} == 200 ? jbody($res) : undef;
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
    my @victims = node_pids('node-b');
    my $t_kill = time;
    my $n = @victims ? kill('KILL', @victims) : 0;
    my $t_killed = time;   # the parent may lose the CPU around kill(): a window
    unlink "$E{RUN}/node-b.pid";   # so that cleanup signals no recycled pid
    check(@victims >= 2 && $n == @victims, sprintf('c: node B killed at %.1f s (SIGKILL to parent %s and %d children)',
                                                   $t_kill - $t0, $victims[0] // '?', @victims - 1));
    waitpid $_, 0 for @pids;
    info(sprintf 'c: load ran %.1f s; peak PostgreSQL sessions of both nodes: %s', time - $t0, sampler_stop($sampler));

    my (%phase, @rows);
    for my $w (0 .. $workers - 1) {
        open my $fh, '<', "$E{WORK}/load-$w.log" or next;
        while (<$fh>) {
            my ($ts, $td, $status, $appt, $id, $why) = split ' ';
            my $ph = $td < $t_kill ? 'before' : $ts > $t_killed ? 'after' : 'in-flight';
            $phase{$ph}{$status}++;
            push @rows, [$status, $appt, $id, $ph, $why];
        }
    }
    info(sprintf 'c: kill() took %.1f ms', 1000 * ($t_killed - $t_kill));
    info('c: answered before the kill: ' . counts($phase{before} // {}));
    info('c: in flight during the kill: ' . counts($phase{'in-flight'} // {}));
    info('c: sent after the kill: ' . counts($phase{after} // {}));
    my %why;
    $why{$_->[4]}++ for grep { $_->[0] == 599 } @rows;
    info("c: transport errors: $_ x$why{$_}") for sort keys %why;
    my %linked = map { @$_ } @{ $dbh->selectall_arrayref(
        'SELECT id, patient_id FROM appointments WHERE doctor_id = ? AND patient_id IS NOT NULL', undef, $uid) };
    my %patient = map { $_->[0] => 1 } @{ $dbh->selectall_arrayref(
        'SELECT id FROM practice_patients WHERE doctor_id = ?', undef, $uid) };
    my @ok = grep { $_->[0] == 200 } @rows;
    my @lost = grep { !(defined $linked{$_->[1]} && $linked{$_->[1]} eq $_->[2] && $patient{$_->[2]}) } @ok;
    info("c: 200 not committed: @{$_}[1,2]") for @lost[0 .. ($#lost < 4 ? $#lost : 4)];
    check(@ok > 0 && !@lost, sprintf 'c: every 200 (%d) has its patient row and its appointment linked to that _id (%d not)',
          scalar @ok, scalar @lost);
    my %sent = map { $_->[1] => $_ } @rows;
    my @unknown = grep { $_->[0] != 200 } @rows;
    my $unknown_committed = grep { defined $linked{$_->[1]} } @unknown;
    info(sprintf 'c: %d answers other than 200 (outcome unknown to the client): %d committed, %d not',
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
    check($after_all > 0 && $after_ok * 2 > $after_all,
          sprintf 'c: the front kept serving after the kill (%d of %d answers 200, %.2f%%)', $after_ok, $after_all,
          $after_all ? 100 * $after_ok / $after_all : 0);
    info(sprintf 'c: %d requests in %.1f s, %.0f/s', scalar @rows, $dur, @rows / $dur);
}

# ------------------------------------------------------------------------
# d. graceful restarts of node A under wrk
my $lua = <<'LUA';
-- wrk script: a distinct POST per request, every request and answer logged
-- per thread; per-thread counters gathered in done().
local threads = {}
function setup(thread)
    table.insert(threads, thread)
    thread:set("tid", #threads)
end
function init(args)
    route, logdir, token, uid = args[1], args[2], args[3], args[4]
    log = io.open(logdir .. "/wrk-" .. route .. "-" .. tid .. ".log", "w")
    log:setvbuf("line")
    sent, got, statuses = 0, 0, {}
    hdrs = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
    -- wrk calls request() once on the first thread before it starts, only to
    -- count pipelined requests (script_verify_request); that one is never sent.
    verifying = (tid == 1)
end
function request()
    if verifying then
        verifying = false
        return wrk.format("POST", "/never-sent", hdrs, "{}")
    end
    local tag, body, path
    if route == "visits" then
        tag = string.format("farm-d-%d-%d", tid, sent)
        body = '{"patient": 1750, "status": "' .. tag .. '"}'
        path = "/visits"
    else
        tag = string.format("d1%02x%020x", tid, sent)
        body = '{"appointment_id": "' .. tag .. '", "firstName": "Grace", "lastName": "' .. tag .. '"}'
        path = "/patients/add_and_link?uid=" .. uid
    end
    sent = sent + 1
    log:write("S ", tag, "\n")
    return wrk.format("POST", path, hdrs, body)
end
function response(status, headers, body)
    got = got + 1
    statuses[tostring(status)] = (statuses[tostring(status)] or 0) + 1
    local tag, id = "-", "-"
    if status == 200 then
        if route == "visits" then
            id = string.match(body, '"id":%s*(%d+)') or "?"
            tag = string.match(body, '"status":%s*"([^"]*)"') or "?"
        else
            id = string.match(body, '"_id":%s*"(%x+)"') or "?"
            tag = string.match(body, '"lastName":%s*"(%x+)"') or "?"
        end
    end
    log:write("R ", status, " ", tag, " ", id, "\n")
end
function done(summary, latency, requests)
    local sent_all, got_all, total = 0, 0, {}
    for _, t in ipairs(threads) do
        sent_all = sent_all + t:get("sent")
        got_all = got_all + t:get("got")
        for k, v in pairs(t:get("statuses")) do total[k] = (total[k] or 0) + v end
    end
    io.write(string.format("LUA sent %d answered %d\n", sent_all, got_all))
    for k, v in pairs(total) do io.write(string.format("LUA status %s %d\n", k, v)) end
    local e = summary.errors
    io.write(string.format("LUA errors connect %d read %d write %d timeout %d status %d\n",
                           e.connect, e.read, e.write, e.timeout, e.status))
end
LUA

sub graceful_count {
    open my $fh, '<', "$E{RUN}/node-a-error.log" or return 0;
    return scalar grep { /SIGUSR1 received/ } <$fh>;
}

sub graceful_test {
    my ($route) = @_;
    my $dur = $E{WRK_SECONDS};
    my ($conns, $threads) = (16, 2);
    my $per_thread = 60000;
    my $uid = 'farm_grace';
    my $name = $route eq 'visits' ? '/visits' : 'add_and_link';
    if ($route eq 'link') {
        $dbh->do(q{INSERT INTO appointments (id, doctor_id)
                   SELECT 'd1' || lpad(to_hex(t), 2, '0') || lpad(to_hex(i), 20, '0'), ?
                   FROM generate_series(1, ?) t, generate_series(0, ?) i}, undef, $uid, $threads, $per_thread - 1);
    }
    open my $lf, '>', "$E{WORK}/farm.lua" or die;
    print $lf $lua;
    close $lf;
    my $rows0 = $route eq 'visits' ? one(q{SELECT count(*) FROM visits WHERE status LIKE 'farm-d-%'}) : 0;
    my $g0 = graceful_count();
    my $sampler = sampler_start();
    my $out = "$E{WORK}/wrk-$route.out";
    my $t0 = time;
    my $pid = fork // die;
    if (!$pid) {
        open STDOUT, '>', $out or die;
        open STDERR, '>&', \*STDOUT or die;
        exec 'wrk', "-t$threads", "-c$conns", "-d${dur}s", '--timeout', '10s', '-s', "$E{WORK}/farm.lua",
            "http://127.0.0.1:$A/", '--', $route, $E{WORK},
            $route eq 'visits' ? $E{TOKEN_VISITS} : $E{TOKEN_GRACE}, $uid;
        die "exec wrk: $!";
    }
    my @rc;
    for my $at (0.3 * $dur, 0.65 * $dur) {
        sleep_until($t0 + $at);
        push @rc, system($E{HTTPD}, '-f', "$E{RUN}/node-a.conf", '-k', 'graceful') >> 8;
        info(sprintf "d %s: apache2 -k graceful at %.1f s: exit %d", $name, time - $t0, $rc[-1]);
    }
    waitpid $pid, 0;
    my $wrk_rc = $? >> 8;
    info("d $name: peak PostgreSQL sessions of node A: " . sampler_stop($sampler));
    open my $fh, '<', $out or die;
    my @wrk = <$fh>;
    close $fh;
    print map { "#   $_" } grep { !/^LUA/ } @wrk;
    my %st = map { (split ' ')[2, 3] } grep { /^LUA status/ } @wrk;
    my ($sent_all, $got_all) = (join('', @wrk) =~ /LUA sent (\d+) answered (\d+)/);
    my ($e_conn, $e_read, $e_write, $e_to, $e_status) =
        (join('', @wrk) =~ /LUA errors connect (\d+) read (\d+) write (\d+) timeout (\d+) status (\d+)/);
    same($wrk_rc, 0, "d $name: wrk ran");
    same(join(' ', @rc), '0 0', "d $name: two graceful restarts sent");
    same(graceful_count() - $g0, 2, "d $name: node A logged two graceful restarts");
    info("d $name: statuses: " . counts(\%st) . "; sent $sent_all, answered $got_all");
    same(join(' ', map { $_ // '?' } $e_conn, $e_read, $e_write, $e_to), '0 0 0 0',
         "d $name: socket errors connect/read/write/timeout");
    same(scalar(grep { $_ >= 500 } keys %st), 0, "d $name: no 5xx");
    same(scalar(grep { $_ != 200 } keys %st), 0, "d $name: no answer but 200");

    # every request and answer, from the per-thread logs
    my (%sent, %ok);
    my $bad = 0;
    for my $t (1 .. $threads) {
        open my $l, '<', "$E{WORK}/wrk-$route-$t.log" or next;
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
        check(one('SELECT count(*) FROM appointments WHERE doctor_id = ? AND patient_id IS NULL', $uid) > 0,
              "d $name: free appointments left over (the run did not exhaust them)");
    }
    my @lost = grep { !defined $committed{$_} || $committed{$_} ne $ok{$_} } keys %ok;
    check(keys(%ok) > 0 && !@lost, sprintf "d %s: every 200 (%d) is a committed row with its id (%d not)",
          $name, scalar keys %ok, scalar @lost);
    my @extra = grep { !exists $ok{$_} } keys %committed;
    same(scalar(grep { !$sent{$_} } @extra), 0, "d $name: no committed row that wrk did not send");
    info(sprintf "d %s: %d rows added = %d answered 200 + %d in flight when wrk stopped (%d sent, not answered)",
         $name, scalar keys %committed, scalar keys %ok, scalar @extra, $unanswered);
    check(@extra == $unanswered && $unanswered <= $conns,
          "d $name: rows added = 200s + requests in flight at wrk's stop (at most one per connection)");
    info(sprintf "d %s: %.0f requests/s", $name, $got_all / $dur) if $got_all;
}

# ------------------------------------------------------------------------
my $t = time;
race_round($_) for 1 .. 3;
info(sprintf 'a took %.1f s', time - $t); $t = time;
idempotency();
info(sprintf 'b took %.1f s', time - $t); $t = time;
kill_test();
info(sprintf 'c took %.1f s', time - $t); $t = time;
graceful_test('visits');
graceful_test('link');
info(sprintf 'd took %.1f s', time - $t);
print "PERL $passed passed, $failed failed\n";
PERL

set +e
FARM_PORT_A=$port_a FARM_PORT_B=$port_b FARM_PORT_FRONT=$port_front FARM_WORK=$work FARM_RUN=$run \
FARM_PGHOST=$pgdata FARM_PGUSER=$user FARM_HTTPD=$httpd FARM_MKJWT=$work/mkjwt \
FARM_KEY=$keys/jwt-private.pem FARM_TOKEN_VISITS=$token_visits FARM_TOKEN_LOAD=$token_load \
FARM_TOKEN_GRACE=$token_grace FARM_LOAD_SECONDS=${FARM_LOAD_SECONDS:-15} \
FARM_WRK_SECONDS=${FARM_WRK_SECONDS:-20} \
    perl "$work/farm.pl" 2>&1 | tee "$work/farm.log"
perl_rc=${PIPESTATUS[0]}
set -e

passed=$(grep -c '^ok ' "$work/farm.log" || true)
failed=$(grep -c '^not ok ' "$work/farm.log" || true)
if [ "$perl_rc" != 0 ] || ! grep -q '^PERL ' "$work/farm.log"; then
    echo "farm: the checks stopped early (perl exit $perl_rc)"
    failed=$((failed + 1))
fi

# What the servers logged (warn and above), for the record.
for n in node-a node-b front; do
    log="$run/$n-error.log"
    [ -f "$log" ] || continue
    echo "farm: $n error log: $(grep -c '' "$log") lines;" \
        "$(grep -oE '\] \[[a-z_]+:[a-z0-9]+\]' "$log" | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
    if [ "$failed" != 0 ]; then
        grep -vE 'AH00489|AH00490|AH00493|AH00094|AH00169|AH00171' "$log" | tail -20 | sed 's/^/    /'
    fi
done
# Crashes: count them, and show where the first one happened.
crashes=$(cat "$run"/node-*-error.log 2>/dev/null | grep -c 'exit signal' || true)
if [ "$crashes" != 0 ]; then
    echo "farm: $crashes node child processes died of a signal (error log AH00052)"
    failed=$((failed + 1))
    core=$(ls -t "$run"/cores-*/core* 2>/dev/null | tail -1 || true)
    if [ -n "$core" ] && command -v gdb >/dev/null; then
        echo "farm: backtrace of $core:"
        gdb -batch -ex 'info threads' -ex 'thread apply all bt 25' "$httpd" "$core" 2>/dev/null \
            | grep -E '^(#|Thread|\*| +[0-9]+ +Thread)' | head -120 | sed 's/^/    /'
        FARM_KEEP=1
    fi
fi
echo "farm: took $(( $(date +%s) - t_start )) s"
echo "farm: $passed passed, $failed failed"
[ "$failed" = 0 ]
