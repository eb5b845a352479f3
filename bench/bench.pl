#!/usr/bin/perl
# `make bench`, the measuring program (scripts/bench.sh prepares the work dir,
# the keys and PostgreSQL, then runs this as the unprivileged user). Runs the
# cases of bench/cases.pl, then the memory run, callgrind and the native token
# costs, and writes every figure to one JSON file; bench/report.pl renders it.
# Measures; asserts nothing but the consistency of each run (its "check").
#
#   perl bench/bench.pl --work DIR --sock DIR --pgdata DIR --pgbin DIR --httpd PATH
#        --moddir DIR --mkjwt PATH --rev TEXT --out results.json
#
# Settings (environment): BENCH_DURATION (10 s per wrk/pgbench run),
# BENCH_CONNECTIONS (16), BENCH_THREADS (2), BENCH_MEM_WARMUP (20000),
# BENCH_MEM_REQUESTS (200000), BENCH_CG_N (200), BENCH_TOKEN_POOL (5000),
# BENCH_SKIP ("throughput bigdata mem cg tokens": parts left out), BENCH_CASES
# (names of the cases to run, default all).
use strict;
use Digest::SHA ();
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Getopt::Long qw(GetOptions);
use POSIX qw(WNOHANG);
use IO::Socket::INET ();
use HTTP::Tiny ();
use JSON::PP ();
use Time::HiRes qw(time sleep);
use Clinic::Token ();
use Clinic::DPoP ();

my %o;
GetOptions(\%o, qw(work=s sock=s pgdata=s pgbin=s httpd=s moddir=s mkjwt=s rev=s out=s)) or exit 2;
my $work = $o{work};
my $bench = "$work/bench";   # the copy of bench/ in the work dir
my $t_start = time;

my %S = (
    dur => $ENV{BENCH_DURATION} || 10, conns => $ENV{BENCH_CONNECTIONS} || 16,
    threads => $ENV{BENCH_THREADS} || 2, mem_warmup => $ENV{BENCH_MEM_WARMUP} || 20000,
    mem_requests => $ENV{BENCH_MEM_REQUESTS} || 200000, cg_n => $ENV{BENCH_CG_N} || 200, cg_warm => 20,
    token_pool => $ENV{BENCH_TOKEN_POOL} || 5000, dpop_pool => $ENV{BENCH_DPOP_POOL} || 60000, skip => ' ' . ($ENV{BENCH_SKIP} // '') . ' ',
);
die "bench: at most 16 wrk threads (fixtures)\n" if $S{threads} > 16;
# Free appointments per wrk thread and case, and per pgbench client: about
# twice what this 2-core machine links in BENCH_DURATION seconds. Running out
# shows: wrk counts 404s, pgbench's linked rows fall short of its
# transactions; both fail the case's check.
$S{wrk_cap} = 5000 * $S{dur};
$S{pg_cap} = 1200 * $S{dur};        # unthrottled pgbench
$S{pg_cap_rate} = 700 * $S{dur};    # pgbench -R at mod_clinic's rate
$S{cg_cap} = $S{cg_n} + $S{cg_warm} + 10;

my @cases = do "$bench/cases.pl" or die "bench/cases.pl: $@ $!\n";
if (my $only = $ENV{BENCH_CASES}) {
    my %want = map { $_ => 1 } split ' ', $only;
    @cases = grep { $want{$_->{name}} } @cases;
}
my %case = map { $_->{name} => $_ } @cases;
my $json = JSON::PP->new->utf8->canonical->pretty;
my %R = (settings => \%S, meta => {}, cases => [], status => 0);
my $port = free_port();
my $base = "http://127.0.0.1:$port";

sub say { printf STDERR "[bench %3ds] %s\n", time - $t_start, "@_" }
sub skip { index($S{skip}, " $_[0] ") >= 0 }
sub loadavg { open my $f, '<', '/proc/loadavg' or return '?'; my @l = split ' ', <$f>; "@l[0..2]" }
sub slurp { my ($f) = @_; open my $fh, '<', $f or return ''; local $/; <$fh> }
sub spew { my ($f, $text) = @_; open my $fh, '>', $f or die "$f: $!"; print $fh $text; close $fh }

sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1) or die "no port: $!";
    my $p = $s->sockport;
    close $s;
    return $p;
}

# ---- PostgreSQL ------------------------------------------------------------
sub sql {
    my ($q) = @_;
    open my $fh, '-|', 'psql', '-X', '-q', '-A', '-t', '-h', $o{sock}, '-d', 'clinic', '-v', 'ON_ERROR_STOP=1',
        '-c', $q or die "psql: $!";
    local $/;
    my $out = <$fh> // '';
    close $fh or die "psql failed: $q\n";
    $out =~ s/\s+\z//;
    return $out;
}
sub sql_file {   # bench/NAME.sql with psql variables (name => value); dies when it fails
    my ($name, %var) = @_;
    system('psql', '-X', '-q', '-h', $o{sock}, '-d', 'clinic', '-v', 'ON_ERROR_STOP=1',
           (map { ('-v', "$_=$var{$_}") } sort keys %var), '-o', '/dev/null', '-f', "$bench/$name.sql") == 0
        or die "bench: bench/$name.sql failed\n";
}
sub n_visits { sql('SELECT count(*) FROM visits') }
sub n_pp { sql('SELECT count(*) FROM practice_patients') }
sub n_linked { sql('SELECT count(*) FROM appointments WHERE patient_id IS NOT NULL') }

# ---- Apache -------------------------------------------------------------------
sub render {   # template -> text, the bench placeholders filled in
    my ($file) = @_;
    my %v = (WORK => $work, MODDIR => $o{moddir}, PORT => $port, SOCK => $o{sock}, DBUSER => scalar getpwuid($<));
    my $t = slurp($file);
    $t =~ s/@([A-Z]+)@/$v{$1} \/\/ "\@$1\@"/ge;
    return $t;
}
sub apache_start {   # conf snippet name or undef, -D flags...
    my ($extra, @defines) = @_;
    my $conf = render("$bench/httpd.conf.in");
    if ($extra) {
        spew("$work/extra-$extra.conf", render("$bench/conf/$extra.conf"));
        $conf .= "\n# bench case variant: bench/conf/$extra.conf\nInclude \"$work/extra-$extra.conf\"\n";
    }
    spew("$work/httpd.conf", $conf);
    system($o{httpd}, '-f', "$work/httpd.conf", @defines) == 0 or die "bench: Apache did not start\n";
    wait_http(30);
}
sub wait_http {
    my ($seconds) = @_;
    my $ua = HTTP::Tiny->new(timeout => 2);
    for (1 .. 10 * $seconds) {
        return if $ua->get("$base/")->{status} != 599;
        sleep 0.1;
    }
    print STDERR "bench: Apache did not come up; error log:\n", (split /^/, slurp("$work/error.log"))[-20 .. -1];
    die "\n";
}
sub apache_pid { my $p = slurp("$work/httpd.pid"); chomp $p; $p =~ /^\d+$/ ? $p : undef }
sub apache_stop {
    my $pid = apache_pid() or return;
    kill 'TERM', $pid;
    for (1 .. 100) { last unless kill 0, $pid; sleep 0.1 }
    unlink "$work/httpd.pid";
}

# 200s per path (%U) in the access log, read on from where the last call stopped.
my ($log_off, %served) = (0);
sub served {
    my ($path) = @_;
    if (open my $fh, '<', "$work/access.log") {
        seek $fh, $log_off, 0;
        while (my $l = <$fh>) {
            last unless $l =~ /\n$/;   # a line being written: next time
            $log_off += length $l;
            $served{$1}++ if $l =~ /^200 (\S+)$/;
        }
    }
    return $served{$path} // 0;
}

# ---- CPU of process trees (clock ticks) -----------------------------------------
my $tck = POSIX::sysconf(POSIX::_SC_CLK_TCK());
sub ticks_of {   # pid, with its reaped children (0|1)
    my ($pid, $reaped) = @_;
    my $st = slurp("/proc/$pid/stat") or return 0;
    $st =~ s/^.*\) //;
    my @f = split ' ', $st;
    return $f[11] + $f[12] + ($reaped ? $f[13] + $f[14] : 0);
}
sub tree_ticks {
    my ($pid) = @_;
    return 0 unless $pid && -r "/proc/$pid/stat";
    my $t = ticks_of($pid, 1);
    $t += ticks_of($_, 0) for map { /(\d+)/ ? $1 : () } `ps -o pid= --ppid $pid`;
    return $t;
}
sub pg_pid { (split /\n/, slurp("$o{pgdata}/postmaster.pid"))[0] }
sub client_cpu { my @t = times; $t[2] + $t[3] }

# Runs CODE (which runs the load generator as a child and waits for it) and
# returns the CPU seconds of the generator, Apache and PostgreSQL, the WAL
# written and the load average before.
sub measured {
    my ($code) = @_;
    sql('VACUUM ANALYZE visits, practice_patients, appointments');
    my %m = (load => (split ' ', loadavg())[0]);
    my $wal0 = sql('SELECT pg_current_wal_lsn()');
    my ($a0, $p0, $c0) = (tree_ticks(apache_pid()), tree_ticks(pg_pid()), client_cpu());
    $code->();
    sleep 1;   # requests in flight finish; pgbench's backends exit (their CPU moves to the postmaster)
    $m{apache_s} = (tree_ticks(apache_pid()) - $a0) / $tck;
    $m{pg_s} = (tree_ticks(pg_pid()) - $p0) / $tck;
    $m{client_s} = client_cpu() - $c0;
    $m{wal_bytes} = sql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$wal0')::bigint");
    return \%m;
}

# ---- tokens ----------------------------------------------------------------------
my %token;
sub make_tokens {
    my %key = (RS256 => "$work/keys/rsa-private.pem", HS256 => "$work/keys/hs-secret");
    my $claims = { sub => 'bench', userId => 'doc-bench' };
    $token{rs256} = Clinic::Token::mint(mkjwt => $o{mkjwt}, alg => 'RS256', key => $key{RS256}, claims => $claims, exp_in => 3600);
    $token{hs256} = Clinic::Token::mint(mkjwt => $o{mkjwt}, alg => 'HS256', key => $key{HS256}, claims => $claims, exp_in => 3600);
    $token{'rs256-kid'} = Clinic::Token::mint(mkjwt => $o{mkjwt}, alg => 'RS256', key => $key{RS256}, kid => 'bench-1',
                                              claims => $claims, exp_in => 3600);
    spew("$work/keys/rs256.token", "$token{rs256}\n");
    spew("$work/keys/hs256.token", "$token{hs256}\n");
    # bench/tokens.c: distinct RS256 tokens, more than the module's cache of
    # verified tokens holds (a new token every request), and the native cost
    # of the token work.
    # (built by `make bench/tokens`, linking the core's base64url)
    -x "$bench/tokens" or die "bench: bench/tokens is not built (make bench/tokens)\n";
    system('cp', "$bench/tokens", "$work/tokens") == 0 or die "bench: cp bench/tokens\n";
    system("'$work/tokens' mint '$key{RS256}' $S{token_pool} > '$work/keys/rs256-pool'") == 0 or die "tokens mint\n";
    $token{'rs256-new'} = "\@$work/keys/rs256-pool";
    dpop_pools($claims, $key{RS256}) if grep { $_->{token} && $_->{token} eq 'rs256-dpop' } @cases;
    # A key set with the same public key, for variants (bench/conf/jwks-file.conf).
    system("'$o{mkjwt}' jwks --kid bench-1 --alg RS256 '$work/keys/rsa-public.pem' > '$work/keys/jwks.json'") == 0
        or die "mkjwt jwks\n";
    system('cp', "$work/keys/jwks.json", "$work/htdocs/jwks.json");
    # The kept last-good document of bench/conf/jwks-url.conf's URL (remote.c
    # names it jwks-<first 16 bytes of SHA-256(URL) in hex>.json).
    my $url = 'https://127.0.0.1:1/jwks.json';
    mkdir "$work/kept", 0700;
    system('cp', "$work/keys/jwks.json",
           "$work/kept/jwks-" . substr(Digest::SHA::sha256_hex($url), 0, 32) . '.json') == 0
        or die "bench: cannot seed the kept key document\n";
}

# DPoP cases (bench/conf/dpop.conf): one RS256 token bound to a P-256 key
# (cnf.jkt), and BENCH_DPOP_POOL distinct ES256 proofs of it per route, a
# "TOKEN PROOF" line each (bench/count.lua's %FILE): every request a new jti.
# The proofs' iat is now; dpop.conf's ClinicDPoPWindow covers the run.
sub dpop_pools {
    my ($claims, $rsa) = @_;
    system("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out '$work/keys/dpop.pem' 2>/dev/null"
           . " && openssl pkey -in '$work/keys/dpop.pem' -pubout -out '$work/keys/dpop-public.pem'") == 0
        or die "bench: openssl (DPoP key)\n";
    my $jkt = Clinic::DPoP::jkt_of($o{mkjwt}, "$work/keys/dpop-public.pem");
    my $tok = Clinic::Token::mint(mkjwt => $o{mkjwt}, alg => 'RS256', key => $rsa, exp_in => 3600,
                                  claims => { %$claims, cnf => { jkt => $jkt } });
    for my $route (['visits', '/visits'], ['link', '/patients/add_and_link']) {
        my @p = Clinic::DPoP::proof(mkjwt => $o{mkjwt}, key => "$work/keys/dpop.pem",
                                    pub => "$work/keys/dpop-public.pem", token => $tok, jti => "bench-$route->[0]",
                                    htu => "https://api.bench.example$route->[1]", count => $S{dpop_pool});
        spew("$work/keys/dpop-$route->[0]", join('', map { "$tok $_\n" } @p));
        $token{"rs256-dpop-$route->[0]"} = "%$work/keys/dpop-$route->[0]";
    }
}

# ---- fixtures ----------------------------------------------------------------------
# Link cases take their appointments from their own slots (bench/link.lua):
# run 0 is the warm-up, then one per link case in order.
sub fixtures {
    my $run = 0;
    $_->{run} = ++$run for grep { $_->{kind} eq 'wrk' && $_->{route} eq 'link' } @cases;
    die "bench: at most 30 link cases (fixture slots)\n" if $run > 30;
    my $n0 = 0;
    for my $c (grep { $_->{kind} eq 'pgbench' && $_->{route} eq 'link' } @cases) {
        $c->{n0} = $n0;
        $n0 += $c->{rate_of} ? $S{pg_cap_rate} : $S{pg_cap};
    }
    my $conns = $S{conns};
    $conns = $_->{conns} for grep { $_->{kind} eq 'pgbench' && ($_->{conns} // 0) > $conns } @cases;
    say("PostgreSQL: fixtures (1000 patients, free appointments for " . ($run + 1) . " wrk link runs and $n0 pgbench links a client)");
    sql_file('fixtures', wrk_runs => $run + 1, wrk_threads => $S{threads}, wrk_cap => $S{wrk_cap},
             pg_clients => $conns, pg_cap => $n0 || 1, cg_cap => $S{cg_cap});
    sql('CHECKPOINT');
}

# ---- the throughput cases: one function per kind ------------------------------------
sub parse_bench_line {   # wrk output -> hash of the BENCH line (bench/count.lua)
    my ($file) = @_;
    my ($line) = grep { /^BENCH / } split /\n/, slurp($file);
    die "bench: wrk gave no summary ($file):\n" . slurp($file) unless $line;
    return { map { split /=/, $_, 2 } grep { /=/ } split ' ', $line };
}
sub wrk {   # case, script, path, args... -> the case's wrk figures
    my ($c, $script, $path, @args) = @_;
    my $conns = $c->{conns} // $S{conns};
    my $out = "$work/logs/wrk-$c->{name}.out";
    my $cpu = measured(sub {
        system("wrk -t$S{threads} -c$conns -d$S{dur}s --timeout 10s -s '$bench/$script' '$base$path' -- "
               . join(' ', map { "'$_'" } @args) . " > '$out' 2>&1");
    });
    my $w = parse_bench_line($out);
    return (conns => $conns, rps => $w->{rps} + 0, p50_ms => $w->{p50_ms} + 0, p99_ms => $w->{p99_ms} + 0,
            ok => $w->{ok} + 0, non2xx => $w->{non2xx} + 0, codes => $w->{codes}, sockerr => $w->{sockerr},
            maxn => $w->{maxn} + 0, cpu => $cpu);
}
sub check_rows {   # rows written vs 200s: the client's and the server's
    my ($r) = @_;
    my $ok = $r->{ok} > 0 && $r->{non2xx} == 0 && $r->{rows} == $r->{srv} && $r->{rows} >= $r->{ok}
          && $r->{rows} <= $r->{ok} + $r->{conns};
    $ok &&= $r->{linked} == $r->{rows} if defined $r->{linked};
    return $ok ? 'ok' : 'FAILED';
}

sub case_wrk {   # a module route
    my ($c) = @_;
    my $pre = $c->{token} =~ /^hs/ ? '/hs' : '';
    my $tok = $token{ $c->{token} } // $token{"$c->{token}-$c->{route}"}
        // die "bench: case $c->{name}: unknown token $c->{token}\n";
    my %r;
    if ($c->{route} eq 'visits') {
        my ($rows0, $srv0) = (n_visits(), served("$pre/visits"));
        %r = wrk($c, 'visits.lua', "$pre/visits", $tok, 1000, $S{threads});
        @r{qw(rows srv)} = (n_visits() - $rows0, served("$pre/visits") - $srv0);
    } else {
        my $path = "$pre/patients/add_and_link";
        my ($rows0, $linked0, $srv0) = (n_pp(), n_linked(), served($path));
        %r = wrk($c, 'link.lua', "$path?uid=doc-bench", $tok, $c->{run}, $S{wrk_cap}, $S{threads});
        @r{qw(rows linked srv)} = (n_pp() - $rows0, n_linked() - $linked0, served($path) - $srv0);
    }
    return { %r, check => check_rows({ %r }) };
}

sub case_static {   # the httpd floor: a static file the size of a /visits answer
    my ($c) = @_;
    my $res = HTTP::Tiny->new->request('POST', "$base/visits", { content => '{"patient": 1000, "status": "started"}',
        headers => { Authorization => "Bearer $token{rs256}", 'Content-Type' => 'application/json' } });
    my $bytes = length $res->{content};
    spew("$work/htdocs/static.json", '{"pad": "' . ('x' x ($bytes - 11)) . '"}');
    my $srv0 = served('/static.json');
    my %r = wrk($c, 'get.lua', '/static.json');
    $r{srv} = $r{rows} = served('/static.json') - $srv0;
    return { %r, bytes => -s "$work/htdocs/static.json", check => check_rows({ %r }) };
}

sub pg_percentiles {   # pgbench --log files -> p50, p99 of the latency column (ms)
    my ($prefix) = @_;
    my @lat;
    for my $f (glob "$prefix.*") {
        open my $fh, '<', $f or next;
        while (<$fh>) { my @f = split; push @lat, $f[2] }
    }
    @lat = sort { $a <=> $b } @lat;
    my $pct = sub { my $i = int(@lat * $_[0] / 100 + 0.999999); $i = 1 if $i < 1; @lat ? $lat[$i - 1] / 1000 : 0 };
    return ($pct->(50), $pct->(99));
}
sub pgbench {   # name, script, extra args -> pgbench figures
    my ($name, $script, @args) = @_;
    my $out = "$work/logs/pgbench-$name.out";
    my $prefix = "$work/logs/pglog-$name";
    my $rc;
    my $cpu = measured(sub {
        $rc = system("cd '$work/logs' && '$o{pgbin}/pgbench' -h '$o{sock}' -n -M prepared -j $S{threads} -T $S{dur}"
                     . " --log --log-prefix='$prefix' " . join(' ', map { "'$_'" } @args)
                     . " -f '$bench/$script' clinic > '$out' 2>&1");
    });
    my $text = slurp($out);
    die "bench: pgbench $name failed:\n$text" if $rc;
    my ($tps) = $text =~ /^tps = ([0-9.]+)/m;
    my ($txn) = $text =~ /^number of transactions actually processed: (\d+)/m;
    my ($failed) = $text =~ /^number of failed transactions: (\d+)/m;
    my ($lat) = $text =~ /^latency average = ([0-9.]+) ms/m;
    my ($p50, $p99) = pg_percentiles($prefix);
    return (rps => ($tps // 0) + 0, txn => ($txn // 0) + 0, failed => ($failed // 0) + 0, p50_ms => $p50,
            p99_ms => $p99, avg_ms => ($lat // 0) + 0, cpu => $cpu);
}

sub case_pgbench {   # the route's SQL straight from pgbench
    my ($c) = @_;
    my $conns = $c->{conns} // $S{conns};
    my @rate;
    if ($c->{rate_of}) {
        my $of = $R{case}{ $c->{rate_of} } or return { check => "skipped: no $c->{rate_of}" };
        @rate = ('-R', int $of->{rps});
    }
    my %r;
    if ($c->{route} eq 'visits') {
        my $rows0 = n_visits();
        %r = pgbench($c->{name}, $c->{script}, '-c', $conns, @rate, '-D', 'npatients=1000',
                     '-D', 'visit_ts=2026-11-21T07:05:00.000000Z', '-D', 'status=started');
        $r{rows} = n_visits() - $rows0;
    } else {
        my ($rows0, $linked0) = (n_pp(), n_linked());
        %r = pgbench($c->{name}, $c->{script}, '-c', $conns, @rate, '-D', "n=$c->{n0}", '-D', 'doc=doc-bench',
                     '-D', 'first=Jane', '-D', 'last=Smith', '-D', 'dob=1990-03-20',
                     '-D', 'created=2026-11-21T07:05:00.000000Z');
        @r{qw(rows linked)} = (n_pp() - $rows0, n_linked() - $linked0);
    }
    $r{conns} = $conns;
    $r{rate} = $rate[1] if @rate;
    my $ok = $r{txn} > 0 && $r{rows} == $r{txn} && $r{failed} == 0 && (!defined $r{linked} || $r{linked} == $r{txn});
    return { %r, check => $ok ? 'ok' : 'FAILED' };
}

my %run_kind = (wrk => \&case_wrk, static => \&case_static, pgbench => \&case_pgbench);

sub commit_latency {   # one session's INSERT + COMMIT: the floor of every write's latency
    my $out = "$work/logs/pgbench-commit.out";
    system("cd '$work/logs' && '$o{pgbin}/pgbench' -h '$o{sock}' -n -M prepared -c 1 -T 3"
           . " -D visit_ts=2026-11-21T07:05:00Z -D status=started -f '$bench/commit.pgbench' clinic > '$out' 2>&1");
    my ($ms) = slurp($out) =~ /^latency average = ([0-9.]+) ms/m;
    return $ms;
}

sub warm_up {   # 2 s per route, after a start with the default configuration
    say("Apache on $base; warm-up (2 s per route); load " . loadavg());
    system("wrk -t$S{threads} -c$S{conns} -d2s -s '$bench/visits.lua' '$base/visits' -- '$token{rs256}'"
           . " > '$work/logs/wrk-warm-visits.out' 2>&1");
    system("wrk -t$S{threads} -c$S{conns} -d2s -s '$bench/link.lua' '$base/patients/add_and_link?uid=doc-bench'"
           . " -- '$token{rs256}' 0 $S{wrk_cap} > '$work/logs/wrk-warm-link.out' 2>&1");
    sleep 1;
}

sub big_data {   # bench/bigdata.sql: 2 million visits and appointments
    my $t0 = time;
    say('PostgreSQL: 2 million visits and 2 million appointments (bench/bigdata.sql)');
    sql_file('bigdata');
    $R{bigdata} = { seconds => int(time - $t0), visits => n_visits() + 0,
                    appointments => sql('SELECT count(*) FROM appointments') + 0 };
    say("  loaded in $R{bigdata}{seconds} s: $R{bigdata}{visits} visits, $R{bigdata}{appointments} appointments");
}

sub throughput {
    $R{commit_ms} = commit_latency();
    say("one session's INSERT + COMMIT: $R{commit_ms} ms on average");
    # Apache cases, grouped by configuration (one start each, default first);
    # then pgbench with Apache stopped; then the same on the large data set.
    my @small = grep { !$_->{data} } @cases;
    my @big = skip('bigdata') ? () : grep { $_->{data} } @cases;
    for my $set (\@small, \@big) {
        next unless @$set;
        big_data() if $set == \@big;
        my @http = grep { $_->{kind} ne 'pgbench' } @$set;
        my @confs = do { my %seen; grep { !$seen{$_}++ } map { $_->{conf} // '' } @http };
        for my $conf (@confs) {
            apache_start($conf || undef);
            warm_up() if $conf eq '';
            run_case($_) for grep { ($_->{conf} // '') eq $conf } @http;
            apache_stop();
        }
        run_case($_) for grep { $_->{kind} eq 'pgbench' } @$set;
    }
    $R{checkpoints} = () = slurp("$work/logs/pg.log") =~ /checkpoint starting: (?:time|wal)/g;
}
sub run_case {
    my ($c) = @_;
    say(sprintf '%s: %s%s, %s s; load %s', $c->{name}, $c->{kind}, $c->{conf} ? " + bench/conf/$c->{conf}.conf" : '',
        $S{dur}, loadavg());
    my $r = $run_kind{ $c->{kind} }->($c);
    my %desc = map { defined $c->{$_} ? ($_ => $c->{$_}) : () } qw(name kind route token conf script role rate_of data note);
    my $res = { %desc, %$r };
    push @{ $R{cases} }, $res;
    $R{case}{ $c->{name} } = $res;
    $R{status} = 1 if ($res->{check} // '') eq 'FAILED';
    say(sprintf '  %.1f req/s, p50 %.2f ms, p99 %.2f ms, check %s', $res->{rps} // 0, $res->{p50_ms} // 0,
        $res->{p99_ms} // 0, $res->{check});
}

# ---- memory: one child, RSS before and after many requests ----------------------------
sub rss_of { my ($pid, $what) = @_; slurp("/proc/$pid/status") =~ /^$what:\s+(\d+)/m ? $1 : undef }
sub children { my $p = apache_pid() or return (); sort { $a <=> $b } map { /(\d+)/ ? $1 : () } `ps -o pid= --ppid $p` }
sub drive_until {   # send /visits (RS256) until N more 200s were logged
    my ($n) = @_;
    my $goal = served('/visits') + $n;
    my $pid = fork // die;
    if (!$pid) {
        open STDOUT, '>', "$work/logs/wrk-mem.out" or die;
        open STDERR, '>&', \*STDOUT or die;
        { exec 'wrk', "-t$S{threads}", "-c$S{conns}", '-d3600s', '--timeout', '10s', '-s', "$bench/visits.lua",
              "$base/visits", '--', $token{rs256}, 1000 }
        POSIX::_exit(127);   # no END block (it would stop Apache) in the child
    }
    while (served('/visits') < $goal) {
        die "bench: wrk stopped in the memory run:\n" . slurp("$work/logs/wrk-mem.out") if waitpid($pid, WNOHANG) > 0;
        sleep 0.2;
    }
    kill 'INT', $pid;
    waitpid $pid, 0;
    sleep 1;
    if (slurp("$work/logs/wrk-mem.out") !~ /^BENCH .* non2xx=0 /m) {
        print STDERR "bench: memory run had errors:\n", slurp("$work/logs/wrk-mem.out");
        $R{status} = 1;
    }
}
sub memory {
    apache_start(undef, '-D', 'MEMTEST');
    say("memory: one child, warm-up of $S{mem_warmup} requests; load " . loadavg());
    drive_until($S{mem_warmup});
    my @kids = children();
    my %rss0 = map { $_ => rss_of($_, 'VmRSS') } @kids;
    my $m0 = served('/visits');
    say("memory: $S{mem_requests} more requests (children: @kids); load " . loadavg());
    drive_until($S{mem_requests});
    my %m = (warmup => $S{mem_warmup}, served => served('/visits') - $m0, children => []);
    for my $c (@kids) {
        my $r1 = rss_of($c, 'VmRSS');
        push @{ $m{children} }, { pid => $c, rss0_kb => $rss0{$c} + 0, rss1_kb => defined $r1 ? $r1 + 0 : undef,
                                  growth_kb => defined $r1 ? $r1 - $rss0{$c} : undef,
                                  hwm_kb => (rss_of($c, 'VmHWM') // 0) + 0 };
        $R{status} = 1 unless defined $r1;
    }
    my @now = children();
    $m{children_changed} = "@now" if "@now" ne "@kids";
    apache_stop();
    $R{memory} = \%m;
}

# ---- callgrind: instructions per request -------------------------------------------------
# Module work = inclusive Ir of clinic_handler (and of the module's own
# request-pool cleanups, which free its JSON after the handler returns) minus
# the inclusive Ir of the calls module code makes into the database layer
# (mod_dbd's acquire, apr_dbd_*, libpq): bench/cgsplit.pl.
my $cg_seq = 0;
sub curl_cfg {   # file, path, token, n, route, slot, [file of distinct tokens]
    my ($out, $path, $tok, $n, $route, $slot, $toks) = @_;
    my @distinct = $toks ? split /\n/, slurp($toks) : ();
    my @parts;
    for my $i (1 .. $n) {
        $tok = $distinct[$i - 1] if @distinct;
        my $body = $route eq 'visits'
            ? sprintf('{\"patient\": %d, \"status\": \"started\", \"visit_date\": \"21 November 2026 14:05\"}', 1 + ($i * 7919) % 1000)
            : sprintf('{\"appointment_id\": \"%012x%012x\", \"firstName\": \"Jane\", \"lastName\": \"Smith\", \"dateOfBirth\": \"1990-03-20\"}',
                      $slot, ++$cg_seq);
        push @parts, qq(url = "$base$path"\nheader = "Authorization: Bearer $tok"\nheader = "Content-Type: application/json"\n)
                   . qq(data = "$body"\noutput = "/dev/null"\nwrite-out = "%{http_code}\\n"\n);
    }
    spew($out, join("next\n", @parts));
}
sub curl_run {   # every answer 200, or die
    my ($cfg) = @_;
    my %codes;
    $codes{$_}++ for split ' ', `curl -s -K '$cfg'`;
    die "bench: callgrind requests answered: " . join(' ', map { "$_ x$codes{$_}" } sort keys %codes) . "\n"
        unless keys %codes == 1 && $codes{200};
}
sub callgrind {
    my $cg = "$work/cg";
    my ($n, $warm) = @S{qw(cg_n cg_warm)};
    say("callgrind: httpd -X, $n requests per case; load " . loadavg());
    # Tokens that differ per request (a jti each): every one is verified in full.
    my %key = (RS256 => "$work/keys/rsa-private.pem", HS256 => "$work/keys/hs-secret");
    for my $alg (sort keys %key) {
        spew("$cg/tokens-$alg", join '', map { Clinic::Token::mint(mkjwt => $o{mkjwt}, alg => $alg, key => $key{$alg},
            claims => { sub => 'bench', userId => 'doc-bench', jti => "cg-$_" }, exp_in => 3600) . "\n" } 1 .. $n);
    }
    spew("$work/httpd.conf", render("$bench/httpd.conf.in"));
    my $vg = fork // die;
    if (!$vg) {
        chdir $cg;
        open STDOUT, '>', "$work/logs/valgrind.log" or die;
        open STDERR, '>&', \*STDOUT or die;
        { exec 'valgrind', '--tool=callgrind', "--callgrind-out-file=$cg/callgrind.out", '--collect-atstart=no',
              '--toggle-collect=clinic_handler', '--toggle-collect=json_cleanup', '--toggle-collect=txn_cleanup',
              '--vgdb=yes', $o{httpd}, '-X', '-f', "$work/httpd.conf", '-D', 'CALLGRIND' }
        POSIX::_exit(127);
    }
    wait_http(180);
    my @names = qw(visits.rs visits.hs link.rs link.hs visits.rs-distinct visits.hs-distinct);
    my $slot = 511;
    for my $name (@names) {
        my ($route, $v) = split /\./, $name;
        my ($alg) = $v =~ /^(rs|hs)/;
        my $pre = $alg eq 'hs' ? '/hs' : '';
        my $path = $route eq 'visits' ? "$pre/visits" : "$pre/patients/add_and_link?uid=doc-bench";
        $slot++;
        $cg_seq = 0;
        my $tok = $token{"${alg}256"};
        curl_cfg("$cg/warm-$name", $path, $tok, $warm, $route, $slot);
        curl_cfg("$cg/run-$name", $path, $tok, $n, $route, $slot,
                 $v =~ /-distinct$/ ? "$cg/tokens-" . uc($alg) . '256' : undef);
        curl_run("$cg/warm-$name");
        system("callgrind_control -z $vg > /dev/null 2>&1");
        curl_run("$cg/run-$name");
        system("callgrind_control -d $name $vg > /dev/null 2>&1");
    }
    kill 'TERM', $vg;
    waitpid $vg, 0;
    my %res = (n => $n, warm => $warm, cases => []);
    my $i = 0;
    for my $name (@names) {
        $i++;
        my ($f) = glob "$cg/callgrind.out*.$i" or die "bench: no callgrind dump $i ($name)\n";
        system("callgrind_annotate --inclusive=yes --auto=no --threshold=100 '$f' > '$cg/annotate-$name.txt' 2>/dev/null");
        my %v = map { split ' ', $_, 2 } split /\n/, `perl '$bench/cgsplit.pl' mod_clinic.so $n '$f'`;
        chomp %v;
        push @{ $res{cases} }, { name => $name, %v };
    }
    $res{top} = top_functions("$cg/annotate-visits.rs.txt", $n);
    $R{callgrind} = \%res;
}
# The 15 functions with the most inclusive Ir below clinic_handler (the
# frames above it have its inclusive cost), per request.
sub top_functions {
    my ($file, $n) = @_;
    my (@top, %seen, $handler);
    for (split /\n/, slurp($file)) {
        my ($ir, $fn, $ob) = /^\s*([0-9,]+)\s+\(\s*[0-9.]+%\)\s+(\S+)\s+\[([^\]]*)\]/ or next;
        $ir = int(($ir =~ tr/,//dr) / $n);
        $handler //= $ir if $fn =~ /:clinic_handler$/;
        next unless defined $handler;
        next if $ir >= 0.995 * $handler || index($_, "'") >= 0 || @top >= 15;
        $fn =~ s/^.*://;
        $ob =~ s{.*/}{};
        $ob =~ s/\.so.*//;
        my $label = $fn =~ /^0x/ ? "($ob internal $fn)" : "$fn ($ob)";
        push @top, { function => $label, ir => $ir } unless $seen{$label}++;
    }
    return { handler_ir => $handler, functions => \@top };
}

# ---- native token costs --------------------------------------------------------------------
sub token_costs {
    my $out = `'$work/tokens' cost '$work/keys/rs256.token' '$work/keys/rsa-public.pem' '$work/keys/hs256.token' '$work/keys/hs-secret'`;
    $R{tokens} = { map { my ($k, $v) = split ' '; ($k => $v + 0) } grep { /\S/ } split /\n/, $out };
}

# ---- the run ----------------------------------------------------------------------------------
sub machine {
    my $cpu = slurp('/proc/cpuinfo') =~ /^model name\s*: (.*)$/m ? $1 : '?';
    my $mem = slurp('/proc/meminfo') =~ /^MemTotal:\s+(\d+)/m ? sprintf('%.1f GiB', $1 / 1048576) : '?';
    chomp(my $cores = `nproc`);
    return { cores => $cores + 0, cpu => $cpu, memory => $mem, load_start => loadavg(), module => $o{rev},
             date => POSIX::strftime('%Y-%m-%dT%H:%M:%SZ', gmtime) };
}

$SIG{$_} = sub { exit 130 } for qw(INT TERM);
END { apache_stop() if $work }

$R{meta} = machine();
say("machine: $R{meta}{cores} cores, $R{meta}{cpu}, $R{meta}{memory}; load " . loadavg() . "; module at $o{rev}");
make_tokens();
fixtures();
throughput() unless skip('throughput');
memory() unless skip('mem');
callgrind() unless skip('cg');
token_costs() unless skip('tokens');
$R{meta}{load_end} = loadavg();
$R{meta}{seconds} = int(time - $t_start);
delete $R{case};
spew($o{out}, $json->encode(\%R));
say("done in $R{meta}{seconds} s: $o{out}");
exit $R{status};
