#!/usr/bin/perl
# The Markdown report of `make bench` (the results section of BENCHMARKS.md)
# from the JSON that bench/bench.pl wrote. Computes nothing it could not
# recompute from that file: ratios, per-request CPU, projections.
#
#   perl bench/report.pl bench-results.json > report.md
#   perl bench/report.pl run1.json run2.json run3.json > report.md
# With several files: the report of the first, then a run-to-run table of
# every case's req/s and p99 in each run and the spread, (max - min) / median.
use strict;
use warnings;
use JSON::PP ();

die "usage: report.pl RESULTS.json [MORE.json ...]\n" unless @ARGV;
my @runs = map {
    open my $fh, '<', $_ or die "$_: $!\n";
    JSON::PP->new->utf8->decode(do { local $/; <$fh> });
} @ARGV;
my $R = $runs[0];
my ($S, $M) = @$R{qw(settings meta)};
my @cases = @{ $R->{cases} };
my %case = map { $_->{name} => $_ } @cases;
my $cores = $M->{cores} || 1;

sub f { my ($fmt, $v) = @_; defined $v && $v ne '' ? sprintf($fmt, $v) : '-' }
sub row { print '| ', join(' | ', @_), " |\n" }
sub table {   # header cells, then rows; a header cell starting with ':' is right-aligned
    my ($cols, @rows) = @_;
    print '| ', join(' | ', map { s/^://r } @$cols), " |\n";
    print '|', join('|', map { /^:/ ? '---:' : '---' } @$cols), "|\n";
    row(@$_) for @rows;
    print "\n";
}
my %token_words = (rs256 => 'RS256', hs256 => 'HS256', 'rs256-kid' => 'RS256 with a kid',
                   'rs256-new' => 'RS256, a new token every request');
sub requests { my ($c) = @_; $c->{srv} // $c->{txn} // 0 }
sub what {   # a case in words
    my ($c) = @_;
    my $route = ($c->{route} // '') eq 'link' ? '/patients/add_and_link' : '/visits';
    my $w = $c->{kind} eq 'pgbench' ? "pgbench $c->{script}" . ($c->{rate} ? " -R $c->{rate}" : '')
          : $c->{kind} eq 'static' ? "wrk GET a $c->{bytes}-byte static file"
          : "wrk POST $route, " . ($token_words{ $c->{token} // '' } // $c->{token});
    $w .= ", $c->{conns} connections" if ($c->{conns} // $S->{conns}) != $S->{conns};
    $w .= " + bench/conf/$c->{conf}.conf" if $c->{conf};
    $w .= " ($c->{note})" if $c->{note};
    return $w;
}

print "## mod_clinic benchmark\n\n";
print "- machine: $M->{cores} cores, $M->{cpu}, $M->{memory}; load average at the start $M->{load_start}, at the end $M->{load_end}\n";
print "- module: $M->{module}; $M->{date}; the run took $M->{seconds} s\n";
print "- wrk -t$S->{threads} -c$S->{conns} -d$S->{dur}s; pgbench -M prepared -c $S->{conns} -j $S->{threads} -T $S->{dur}\n\n";

if (@cases) {
    # Against the ideal: a handler that cost nothing beyond the static floor
    # and the ceiling's SQL would reach 1 / (1/ceiling + 1/floor).
    my $floor = $case{static};
    my %ceiling = map { $_->{route} => $_ } grep { ($_->{role} // '') eq 'ceiling' } @cases;
    # A case on the large data set is compared with the ceiling on it.
    my %ceiling_big = map { $_->{route} => $_ } grep { $_->{kind} eq 'pgbench' && $_->{data} && !$_->{rate_of} } @cases;
    print "### Against what this Apache and this database allow\n\n";
    print "Ceiling: pgbench running the least SQL a correct implementation must run for the route; floor: the same\n";
    print "Apache serving a static file of the size of a /visits answer; ideal = 1 / (1/ceiling + 1/floor), all in\n";
    print "this run (the ceilings and the floor at $S->{conns} connections).\n\n";
    my @rows;
    for my $c (grep { $_->{kind} eq 'wrk' } @cases) {
        my $ceil = $c->{data} ? $ceiling_big{ $c->{route} } : $ceiling{ $c->{route} };
        my ($cr, $fr) = ($ceil ? $ceil->{rps} : 0, $floor ? $floor->{rps} : 0);
        my $ideal = $cr > 0 && $fr > 0 ? 1 / (1 / $cr + 1 / $fr) : 0;
        push @rows, [$c->{name}, what($c), f('%.0f', $c->{rps}), f('%.2f', $c->{p50_ms}), f('%.2f', $c->{p99_ms}),
                     $c->{sockerr} // '-', $c->{non2xx}, f('%.0f', $cr), $cr ? f('%.2f', $c->{rps} / $cr) : '-',
                     $ideal ? f('%.0f', $ideal) : '-', $ideal ? f('%.2f', $c->{rps} / $ideal) : '-'];
    }
    table(['case', 'run', ':req/s', ':p50 ms', ':p99 ms', 'socket errors c/r/w/t', ':non-2xx', ':ceiling req/s',
           ':ratio to ceiling', ':ideal req/s', ':ratio to ideal'], @rows);
    table(['case', 'run', ':req/s or txn/s', ':p50 ms', ':p99 ms'],
          map { [$_->{name}, what($_), f('%.0f', $_->{rps}), f('%.2f', $_->{p50_ms}), f('%.2f', $_->{p99_ms})] }
          grep { $_->{kind} ne 'wrk' } @cases);

    if (my @big = grep { $_->{data} } @cases) {
        my $bd = $R->{bigdata} // {};
        print "### Cost against the data\n\n";
        print "The same cases after bench/bigdata.sql put $bd->{visits} visits and $bd->{appointments} appointments in\n";
        print "the tables (loaded in $bd->{seconds} s), against the same case earlier in this run:\n\n";
        table(['case', ':req/s', ':p99 ms', 'same case, small tables', ':req/s', ':p99 ms', ':ratio'],
              map {
                  my $c = $_;
                  (my $base_name = $c->{name}) =~ s/\.2m$//;
                  my $b = $case{$base_name};
                  [$c->{name}, f('%.0f', $c->{rps}), f('%.2f', $c->{p99_ms}), $b ? $b->{name} : '-',
                   f('%.0f', $b && $b->{rps}), f('%.2f', $b && $b->{p99_ms}),
                   $b && $b->{rps} ? f('%.2f', $c->{rps} / $b->{rps}) : '-']
              } @big);
    }

    print "### Every run: answers against rows written\n\n";
    table(['case', ':requests/s', ':p50 ms', ':p99 ms', ':2xx (client) or txns', ':non-2xx or failed',
           ':200s (server log)', ':rows written', 'check'],
          map {
              my $c = $_;
              my $rows = $c->{route} && $c->{route} eq 'link' && defined $c->{linked}
                       ? "$c->{rows} patients, $c->{linked} linked" : $c->{rows} // '-';
              my $bad = $c->{kind} eq 'pgbench' ? "$c->{failed} failed"
                      : $c->{non2xx} ? "$c->{non2xx} ($c->{codes})" : 0;
              [$c->{name}, f('%.1f', $c->{rps}), f('%.3f', $c->{p50_ms}), f('%.3f', $c->{p99_ms}),
               $c->{kind} eq 'pgbench' ? "$c->{txn} txns" : $c->{ok}, $bad, $c->{srv} // '-', $rows, $c->{check}]
          } @cases);
    print "(rows written may exceed the client's 2xx count by the requests in flight when wrk stopped, at most one per\n";
    print "connection; they must equal the server's 200s. pgbench -R latencies count from each transaction's scheduled\n";
    print "start, so they include schedule lag.)\n\n";

    print "### CPU per request\n\n";
    print "CPU used during each run, in seconds of the $cores cores over $S->{dur} s (shared with whatever else runs on\n";
    print "the machine), and per request or transaction:\n\n";
    table(['case', ':load average before', ':load generator s', ':Apache s', ':PostgreSQL s', ':total s',
           ':generator us/req', ':Apache us/req', ':PostgreSQL us/req', ':total us/req', ':WAL bytes/req',
           ":req/s if CPU-bound on $cores idle cores"],
          map {
              my ($c, $u) = ($_, $_->{cpu} // {});
              my $n = requests($c) || 1;
              my $pg = $c->{kind} eq 'pgbench';
              my $tot = ($u->{client_s} // 0) + ($pg ? 0 : $u->{apache_s} // 0) + ($u->{pg_s} // 0);
              [$c->{name}, $u->{load} // '-', f('%.2f', $u->{client_s}), $pg ? '-' : f('%.2f', $u->{apache_s}),
               f('%.2f', $u->{pg_s}), f('%.2f', $tot), f('%.0f', 1e6 * ($u->{client_s} // 0) / $n),
               $pg ? '-' : f('%.0f', 1e6 * ($u->{apache_s} // 0) / $n), f('%.0f', 1e6 * ($u->{pg_s} // 0) / $n),
               f('%.0f', 1e6 * $tot / $n), f('%.0f', ($u->{wal_bytes} // 0) / $n), $tot > 0 ? f('%.0f', $cores * $n / $tot) : '-']
          } grep { $_->{cpu} } @cases);

    print "mod_clinic / ceiling: measured requests/s over transactions/s, and the same ratio of the CPU-bound\n";
    print "projections (CPU per transaction over CPU per request, load generators included), which depends much\n";
    print "less on what else the machine runs:\n\n";
    my $cpr = sub { my ($c) = @_; my $u = $c->{cpu} // {}; my $n = requests($c) || 1;
                    (($u->{client_s} // 0) + ($c->{kind} eq 'pgbench' ? 0 : $u->{apache_s} // 0) + ($u->{pg_s} // 0)) / $n };
    for my $c (grep { $_->{kind} eq 'wrk' && !$_->{conf} && ($_->{conns} // $S->{conns}) == $S->{conns} } @cases) {
        my $ceil = $ceiling{ $c->{route} } or next;
        printf "- %s: %.2f measured, %.2f CPU-bound\n", $c->{name}, $ceil->{rps} ? $c->{rps} / $ceil->{rps} : 0,
            $cpr->($c) ? $cpr->($ceil) / $cpr->($c) : 0;
    }
    print "\n";
    print "One session's INSERT + COMMIT (synchronous_commit on, pgbench -c 1 -T 3): " . f('%.3f', $R->{commit_ms}) . " ms on average.\n";
    print "PostgreSQL checkpoints started by time or WAL volume during the whole run: " . ($R->{checkpoints} // '-') . ".\n\n";
}

if (my $m = $R->{memory}) {
    print "### Memory: one child (ServerLimit 1, ThreadsPerChild 16), POST /visits RS256\n\n";
    print "RSS sampled after $m->{warmup} warm-up requests and again after $m->{served} more.\n\n";
    table(['child pid', ':VmRSS after warm-up (kB)', ':VmRSS at the end (kB)', ':growth (kB)', ':VmHWM (kB)'],
          map { [$_->{pid}, $_->{rss0_kb}, $_->{rss1_kb} // '(exited)', $_->{growth_kb} // '-', $_->{hwm_kb}] }
          @{ $m->{children} });
    print "(children changed during the run: $m->{children_changed})\n\n" if $m->{children_changed};
}

if (my $t = $R->{tokens}) {
    print "### Native token costs on this CPU (bench/tokens.c, CPU microseconds per operation, best of 7)\n\n";
    table(['operation', ':us'], map { [$_, $t->{$_}] }
          grep { exists $t->{$_} } qw(jwt_decode_rs256 pem_parse evp_verify_rs256 jwt_decode_hs256
                                      sha256_token_implicit sha256_token_fetched));
}

if (my $cg = $R->{callgrind}) {
    print "### Instructions per request (callgrind, httpd -X, $cg->{n} requests per case after $cg->{warm} warm-up)\n\n";
    table(['case', ':handler + its pool cleanups (incl. database client)', ':database client', ':module',
           ':of which: module code', ':jansson', ':libjwt', ':libcrypto', ':httpd + APR', ':libc', ':jwt_decode calls'],
          map {
              my $c = $_;
              my $apr = 0;
              $apr += $c->{"lib:$_"} // 0 for qw(apache2 apr-1 aprutil-1);
              [$c->{name}, $c->{total}, $c->{db}, $c->{module}, $c->{self}, $c->{'lib:jansson'} // 0,
               $c->{'lib:jwt'} // 0, $c->{'lib:crypto'} // 0, $apr, $c->{'lib:c'} // 0, "$c->{jwt_decode} of $cg->{n}"]
          } @{ $cg->{cases} });
    print "Ir per request. Cases: visits/link = route; rs/hs = RS256/HS256 with one token for every request;\n";
    print "-distinct = a different token (jti) on every request. Collected: clinic_handler and the module's\n";
    print "request-pool cleanups (json_cleanup, txn_cleanup), inclusive. Database client = inclusive Ir of the\n";
    print "module's calls into ap_dbd_acquire, apr_dbd_* and libpq; module = handler - database client; the\n";
    print "columns after it split the module's Ir by where it runs (its own code, and its calls into each\n";
    print "library, inclusive).\n\n";
    my $top = $cg->{top} // {};
    my ($visits) = grep { $_->{name} eq 'visits.rs' } @{ $cg->{cases} };
    if ($top->{handler_ir} && $visits) {
        print "Top functions by inclusive Ir below clinic_handler ($top->{handler_ir} Ir/request), POST /visits RS256\n";
        print "(one token), per request:\n\n";
        table(['function', ':Ir/request', ':share of all collected Ir'],
              map { [$_->{function}, $_->{ir}, f('%.1f%%', 100 * $_->{ir} / ($visits->{total} || 1))] }
              @{ $top->{functions} });
    }
}

if (@runs > 1) {
    print "### Run to run\n\n";
    print scalar(@runs), " runs: ", join('; ', map { "$_->{meta}{date}, load $_->{meta}{load_start} to $_->{meta}{load_end}" } @runs), ".\n\n";
    my @rows;
    for my $c (@cases) {
        my @rps = map { my $r = $_; my ($x) = grep { $_->{name} eq $c->{name} } @{ $r->{cases} }; $x } @runs;
        next if grep { !defined } @rps;
        my @v = sort { $a <=> $b } map { $_->{rps} // 0 } @rps;
        my $median = $v[$#v / 2];
        push @rows, [$c->{name}, (map { f('%.0f', $_->{rps}) . ' / ' . f('%.2f', $_->{p99_ms}) } @rps),
                     $median ? f('%.0f%%', 100 * ($v[-1] - $v[0]) / $median) : '-'];
    }
    table(['case', (map { ":run $_ req/s / p99 ms" } 1 .. @runs), ':spread of req/s'], @rows);
}
