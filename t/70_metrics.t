# Metrics (docs/operations.md "Metrics"): SetHandler clinic-metrics answers GET in the
# Prometheus text format that promtool accepts, 405 otherwise; after a known
# sequence of requests on both routes (successes, each kind of error,
# replays) every counter equals what was sent, summed over the children of a
# server of its own (event MPM, three children, MaxConnectionsPerChild 10 so
# that children are recycled), and still after a graceful restart; a full
# restart starts from zero; mod_status shows the same figures.
use strict;
use warnings FATAL => 'all';

use Test::More;
use JSON::PP ();
use Digest::SHA qw(sha256_hex);
use POSIX qw(strftime);
use lib 't/lib';
use Clinic::Test;
use Clinic::Httpd;

own_httpd_env();
my $promtool = (grep { -x } map { "$_/promtool" } split /:/, $ENV{PATH})[0];

my $keys = keys_dir();
my $h = Clinic::Httpd->new;
my $p2 = $h->port2;
my $mods = $ENV{CLINIC_MODDIR};

sub conf {
    my (%o) = @_;
    my $metrics = $o{off} ? "ClinicMetrics off\n" : '';
    return <<"EOF";
LoadModule status_module "$mods/mod_status.so"
StartServers 3
ServerLimit 4
ThreadsPerChild 4
MinSpareThreads 4
MaxSpareThreads 16
MaxRequestWorkers 16
MaxConnectionsPerChild 10
KeepAlive Off
$metrics
DBDriver $ENV{CLINIC_DBD_DRIVER}
DBDParams "$ENV{CLINIC_DBD_PARAMS}"
DBDMin 0
DBDKeep 2
DBDMax 4
<Location "/visits">
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicJWTKeyFile "$keys/rsa-public.pem"
</Location>
<Location "/patients/add_and_link">
    SetHandler clinic-add-and-link
    ClinicJWTAlgorithm RS256
    ClinicJWTKeyFile "$keys/rsa-public.pem"
    ClinicUidClaim userId
</Location>
<Location "/clinic-metrics">
    SetHandler clinic-metrics
    Require ip 127.0.0.1
</Location>
<Location "/server-status">
    SetHandler server-status
    Require ip 127.0.0.1
</Location>
<VirtualHost 127.0.0.1:$p2>
    DBDriver $ENV{CLINIC_DBD_DRIVER}
    DBDParams "$ENV{CLINIC_DBD_PARAMS_DOWN}"
    DBDMin 0
    <Location "/visits">
        SetHandler clinic-visits
        ClinicAuth off
    </Location>
    <Location "/patients/add_and_link">
        SetHandler clinic-add-and-link
        ClinicAuth off
    </Location>
</VirtualHost>
EOF
}

$h->write_conf(conf());
$h->start('/clinic-metrics');

my $ua = $h->ua;
my $json = JSON::PP->new->canonical;
my $dbh = dbh();
my $run = new_hex24();
my $desk = token(claims => { sub => "desk-$run", userId => "doc-$run" }, exp_in => 3600);
my $expired = token(claims => { sub => "desk-$run" }, exp_in => -3600);
my $forged = token(claims => { sub => "desk-$run" }, key => "$keys/rsa2-private.pem");
my $other = token(claims => { userId => "someone-else-$run" }, exp_in => 3600);

sub scrape {
    my $res = $ua->get($h->url('/clinic-metrics'));
    die 'scrape: ' . $res->status_line unless $res->code == 200;
    return $res;
}

# "name{labels}" => value, labels in the order given.
sub parse {
    my ($text) = @_;
    my %m;
    for (split /\n/, $text) {
        next if /^#/ || !/\S/;
        /^(\S+?(?:\{.*\})?) (\S+)$/ or die "bad line: $_";
        $m{$1} = $2;
    }
    return \%m;
}

sub metrics { parse(scrape()->content) }

# --- the expected figures, kept as the requests are sent ---
my (%req, %tok, %idem, %dberr, %db);
my $valid = 0;
my @wrong;

# send(route, method, path, body, status, code, token => t, tok => result, db => 1,
#      idem => outcome, headers => [...], type => ..., port => ...)
sub send_req {
    my ($route, $method, $path, $body, $status, $code, %o) = @_;
    my @hd = @{ $o{headers} || [] };
    push @hd, Authorization => "Bearer $o{token}" if $o{token};
    push @hd, 'Content-Type' => $o{type} // 'application/json';
    my $req = HTTP::Request->new($method => $h->url($path, $o{port}), \@hd,
                                 ref $body ? $json->encode($body) : $body);
    my $res = $ua->request($req);
    push @wrong, "$method $path: " . $res->code . " (want $status) " . $res->content
        unless $res->code == $status;
    $req{"$route|$status|$code"}++;
    $db{$route}++ if $o{db};
    if (defined $o{tok}) { $o{tok} eq 'valid' ? $valid++ : $tok{$o{tok}}++ }
    $idem{$o{idem}}++ if $o{idem};
    $dberr{$o{dberr}}++ if $o{dberr};
    return $res;
}

sub ts { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(shift)) }

my $round = 0;
sub one_round {
    $round++;
    my $doc = "doc-$run";
    my $V = sub { send_req('visits', @_) };
    my $L = sub { send_req('add_and_link', @_) };
    my $visit = { patient => 1750, status => "metrics $round" };

    # /visits
    $V->('POST', '/visits', $visit, 200, 'created', token => $desk, tok => 'valid', db => 1);
    $V->('POST', '/visits', { status => 'x' }, 400, 'invalid', token => $desk, tok => 'valid');
    $V->('POST', '/visits', $visit, 401, 'unauthorized', tok => 'missing');
    $V->('POST', '/visits', $visit, 401, 'unauthorized', token => $expired, tok => 'expired');
    $V->('POST', '/visits', $visit, 401, 'unauthorized', token => $forged, tok => 'signature');
    $V->('GET', '/visits', '', 405, 'method_not_allowed', token => $desk);
    $V->('POST', '/visits', 'x', 415, 'unsupported_media_type', token => $desk, tok => 'valid',
         type => 'text/plain');
    $V->('POST', '/visits', '"' . ('a' x 70000) . '"', 413, 'too_large', token => $desk,
         tok => 'valid');
    my $k = "m-$run-$round";
    my $body = $json->encode($visit);
    $V->('POST', '/visits', $body, 200, 'created', token => $desk, tok => 'valid', db => 1,
         idem => 'stored', headers => ['Idempotency-Key' => $k]);
    $V->('POST', '/visits', $body, 200, 'replayed', token => $desk, tok => 'valid', db => 1,
         idem => 'replayed', headers => ['Idempotency-Key' => $k]);
    $V->('POST', '/visits', '{"patient": 1750, "status": "other"}', 422, 'key_reused',
         token => $desk, tok => 'valid', db => 1, idem => 'key_reused',
         headers => ['Idempotency-Key' => $k]);
    $dbh->do('INSERT INTO idempotency_keys (caller, route, key, fingerprint, status, body,'
             . ' created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', undef,
             "sub:desk-$run", 'visits', "busy-$k", sha256_hex("visits\0\0$body"), undef, undef,
             ts(time), ts(time + 3600));
    $V->('POST', '/visits', $body, 409, 'in_progress', token => $desk, tok => 'valid', db => 1,
         idem => 'in_progress', headers => ['Idempotency-Key' => "busy-$k"]);
    $V->('POST', '/visits', $visit, 503, 'unavailable', port => $p2, dberr => 'unavailable');

    # add-and-link
    my $appt = new_hex24();
    $dbh->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $appt, $doc);
    my $theirs = new_hex24();
    $dbh->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $theirs, "x-$doc");
    my $pat = sub { { appointment_id => $_[0], firstName => 'Ada', lastName => 'Byron' } };
    my $u = "/patients/add_and_link?uid=$doc";
    $L->('POST', $u, $pat->($appt), 200, 'LINKED', token => $desk, tok => 'valid', db => 1);
    $L->('POST', $u, $pat->($appt), 401, 'AUTH_REQUIRED', tok => 'missing');
    $L->('POST', $u, $pat->($appt), 401, 'INVALID_TOKEN', token => $expired, tok => 'expired');
    $L->('POST', $u, 'x', 415, 'UNSUPPORTED_MEDIA_TYPE', token => $desk, tok => 'valid',
         type => 'text/plain');
    $L->('POST', $u, '{', 400, 'INVALID_JSON', token => $desk, tok => 'valid');
    $L->('POST', $u, { firstName => 'A', lastName => 'B' }, 400, 'MISSING_APPOINTMENT_ID',
         token => $desk, tok => 'valid');
    $L->('POST', $u, { appointment_id => $appt }, 400, 'MISSING_PATIENT_FIELDS',
         token => $desk, tok => 'valid');
    $L->('POST', $u, { %{ $pat->($appt) }, dateOfBirth => '2020-13-01' }, 400, 'INVALID_FIELD',
         token => $desk, tok => 'valid');
    $L->('POST', $u, $pat->($appt), 403, 'UID_MISMATCH', token => $other, tok => 'valid');
    $L->('POST', $u, $pat->(new_hex24()), 404, 'APPOINTMENT_NOT_FOUND', token => $desk,
         tok => 'valid', db => 1);
    $L->('POST', $u, $pat->($theirs), 403, 'NOT_APPOINTMENT_OWNER', token => $desk,
         tok => 'valid', db => 1);
    $L->('POST', $u, $pat->($appt), 409, 'APPOINTMENT_ALREADY_LINKED', token => $desk,
         tok => 'valid', db => 1);
    my $appt2 = new_hex24();
    $dbh->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $appt2, $doc);
    my $lk = ['Idempotency-Key' => "l-$k"];
    $L->('POST', $u, $pat->($appt2), 200, 'LINKED', token => $desk, tok => 'valid', db => 1,
         idem => 'stored', headers => $lk);
    $L->('POST', $u, $pat->($appt2), 200, 'REPLAYED', token => $desk, tok => 'valid', db => 1,
         idem => 'replayed', headers => $lk);
    $L->('POST', $u, $pat->($appt), 422, 'IDEMPOTENCY_KEY_REUSED', token => $desk,
         tok => 'valid', db => 1, idem => 'key_reused', headers => $lk);
    $L->('POST', $u, $pat->($appt), 400, 'INVALID_IDEMPOTENCY_KEY', token => $desk,
         tok => 'valid', headers => ['Idempotency-Key' => 'has space']);
    $L->('GET', $u, '', 405, 'METHOD_NOT_ALLOWED', token => $desk);
    $L->('POST', $u, $pat->($appt), 503, 'DATABASE_UNAVAILABLE', port => $p2,
         dberr => 'unavailable');
}

# Every figure against what was sent; $what names the moment.
sub check_all {
    my ($what) = @_;
    my $m = metrics();
    my (%got, %n);
    for (keys %$m) {
        next unless /^clinic_requests_total\{route="(\w+)",status="(\w+)",code="(\w+)"\}$/;
        $got{"$1|$2|$3"} = $m->{$_};
        $n{$1} += $m->{$_};
    }
    is_deeply(\%got, \%req, "$what: clinic_requests_total equals the requests sent, one series each");
    for my $route (qw(visits add_and_link)) {
        my $sent = 0;
        $sent += $req{$_} for grep { /^$route\|/ } keys %req;
        for my $hist (qw(request db)) {
            my $name = "clinic_${hist}_duration_seconds";
            my $want = $hist eq 'db' ? ($db{$route} // 0) : $sent;
            my @b = map { $m->{"${name}_bucket{route=\"$route\",le=\"$_\"}"} }
                qw(0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 +Inf);
            my @down = grep { !defined $b[$_] || ($_ && $b[$_] < $b[$_ - 1]) } 0 .. $#b;
            is("@down", '', "$what: $name\{$route} has 14 non-decreasing buckets");
            is($m->{"${name}_count{route=\"$route\"}"}, $want,
               "$what: $name\{$route} _count = $want requests");
            is($b[-1], $want, "$what: $name\{$route} +Inf bucket = _count");
            ok(!$want || $m->{"${name}_sum{route=\"$route\"}"} > 0, "$what: $name\{$route} _sum > 0");
        }
    }
    my %tg = map { /result="(\w+)"/ ? ($1 => $m->{$_}) : () }
             grep { /^clinic_token_verifications_total/ } keys %$m;
    is($tg{ok} + $tg{cache_hit}, $valid, "$what: ok + cache_hit = $valid valid tokens");
    ok($tg{ok} >= 1, "$what: some tokens verified by signature ($tg{ok})");
    delete @tg{qw(ok cache_hit)};
    delete $tg{$_} for grep { !$tg{$_} } keys %tg;
    is_deeply(\%tg, \%tok, "$what: each rejection reason counted");
    my %ig = map { /outcome="(\w+)"/ ? ($1 => $m->{$_}) : () }
             grep { /^clinic_idempotency_total/ && $m->{$_} } keys %$m;
    is_deeply(\%ig, \%idem, "$what: clinic_idempotency_total");
    my %dg = map { /class="(\w+)"/ ? ($1 => $m->{$_}) : () }
             grep { /^clinic_db_errors_total/ && $m->{$_} } keys %$m;
    is_deeply(\%dg, \%dberr, "$what: clinic_db_errors_total");
    is($m->{clinic_metrics_unlisted_total}, 0, "$what: nothing counted as unlisted");
    return $m;
}

# --- the handler itself ---
{
    my $res = scrape();
    is($res->header('Content-Type'), 'text/plain; version=0.0.4', 'Content-Type of format 0.0.4');
    like($res->content, qr/^clinic_build_info\{version="[^"]+"\} 1$/m, 'clinic_build_info{version} 1');
    for my $m (qw(POST PUT DELETE)) {
        my $r = $ua->request(HTTP::Request->new($m => $h->url('/clinic-metrics')));
        is($r->code, 405, "$m /clinic-metrics: 405");
        is($r->header('Allow'), 'GET, HEAD', "$m: Allow: GET, HEAD");
    }
    my $text = $res->content;
    my @fam = $text =~ /^# TYPE (\S+) /mg;
    my %help = map { $_ => 1 } $text =~ /^# HELP (\S+) /mg;
    is(scalar(grep { !$help{$_} } @fam), 0, 'every family has # HELP and # TYPE');
    ok(scalar(@fam) >= 12, 'the families listed in docs/operations.md are all there');
}

sub promtool_ok {
    my ($what) = @_;
    SKIP: {
        skip 'promtool is not installed', 1 unless $promtool;
        my $file = $h->dir . '/scrape.txt';
        open(my $fh, '>', $file) or die;
        print $fh scrape()->content;
        close $fh;
        my $out = `$promtool check metrics < $file 2>&1`;
        is($?, 0, "$what: promtool check metrics accepts the output") or diag($out);
    }
}

# --- a known sequence, over recycled children ---
my @first = $h->children;
ok(@first >= 3, 'the server runs several children (' . scalar(@first) . ')');
one_round() for 1 .. 5;
is(join("\n", @wrong), '', 'every request answered as expected');
my %now = map { $_ => 1 } $h->children;
my @gone = grep { !$now{$_} } @first;
ok(@gone >= 1, 'children were recycled (' . scalar(@gone) . ' of the first gone)');
my $m = check_all('after recycled children');
promtool_ok('after the sequence');

# --- mod_status: the same figures ---
{
    my $res = $ua->get($h->url('/server-status?auto'));
    is($res->code, 200, '/server-status?auto: 200');
    my %s = $res->content =~ /^(Clinic\w+): (\S+)$/mg;
    my %n;
    for (keys %req) { my ($r) = split /\|/; $n{$r} += $req{$_} }
    is($s{ClinicVisitsRequests}, $n{visits}, 'mod_status ClinicVisitsRequests');
    is($s{ClinicLinkRequests}, $n{add_and_link}, 'mod_status ClinicLinkRequests');
    is($s{ClinicVisits5xx}, $req{'visits|503|unavailable'}, 'mod_status ClinicVisits5xx');
    is($s{ClinicDBUnavailable}, $dberr{unavailable}, 'mod_status ClinicDBUnavailable');
    is($s{ClinicIdempotentReplays}, $idem{replayed}, 'mod_status ClinicIdempotentReplays');
    my $html = $ua->get($h->url('/server-status'))->content;
    like($html, qr{<h2>mod_clinic</h2>.*<td>visits</td><td>$n{visits}</td>}s,
         '/server-status: a mod_clinic section with the /visits count');
}

# --- graceful restart keeps every figure ---
ok($h->restart('USR1', '/clinic-metrics'), 'graceful restart done');
check_all('after a graceful restart');
one_round();
is(join("\n", @wrong), '', 'after the graceful restart: answers as expected');
check_all('after a graceful restart and one more round');

# --- the database too slow: a timeout is its own class ---
{
    my $doc = "doc-$run";
    my $appt = new_hex24();
    $dbh->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $appt, $doc);
    my $hold = DBI->connect($ENV{CLINIC_DB_DSN}, '', '', { RaiseError => 1, AutoCommit => 1 });
    if (db_kind() eq 'pgsql') {
        $hold->begin_work;
        $hold->do('SELECT id FROM appointments WHERE id = ? FOR UPDATE', undef, $appt);
    } else {
        $hold->do('BEGIN IMMEDIATE');
    }
    send_req('add_and_link', 'POST', "/patients/add_and_link?uid=$doc",
             { appointment_id => $appt, firstName => 'Ada', lastName => 'Byron' },
             503, 'DATABASE_UNAVAILABLE', token => $desk, tok => 'valid', db => 1,
             dberr => 'timeout');
    $hold->do('ROLLBACK');
    $hold->disconnect;
    is(join("\n", @wrong), '', 'a locked row or database: 503');
    $m = check_all('after a timeout');
}

# --- PostgreSQL restarted under pooled sessions: lost, then repaired ---
if (db_kind() eq 'pgsql') {
    my @pg_ctl = ("$ENV{CLINIC_PGBIN}/pg_ctl", '-D', $ENV{CLINIC_PGDATA}, '-w', '-l',
                  "$ENV{CLINIC_PGDATA}/../pg.log");
    my $visit = { patient => 1750, status => 'metrics restart' };
    my $V = sub { send_req('visits', 'POST', '/visits', $visit, $_[0], $_[1], token => $desk,
                           tok => 'valid', db => 1) };
    $V->(200, 'created') for 1 .. 20;                 # sessions pooled in every child
    my $before = metrics();
    system(@pg_ctl, '-m', 'fast', 'restart') == 0 or die 'pg_ctl restart';
    my $failed = 0;
    for (1 .. 20) {
        my $res = $V->(200, 'created');
        next if $res->code == 200;
        # the one failure 40_pg_faults.t allows: count it as what it was
        $failed++;
        pop @wrong;
        $req{'visits|200|created'}--;
        $req{'visits|' . $res->code . '|' . ($res->code == 503 ? 'unavailable' : 'error')}++;
    }
    cmp_ok($failed, '<=', 1, "PostgreSQL restarted: at most one failure in 20 ($failed)");
    my $after = metrics();
    my $d = sub { my $k = "clinic_db_errors_total{class=\"$_[0]\"}"; $after->{$k} - $before->{$k} };
    cmp_ok($d->('repaired_session'), '>=', 1,
           'PostgreSQL restarted: repaired_session counted (' . $d->('repaired_session') . ')');
    cmp_ok($d->('unavailable'), '>=', $d->('repaired_session'),
           'each repaired session was first a lost one (unavailable)');
    $dberr{$_} += $d->($_) for grep { $d->($_) } qw(unavailable repaired_session timeout other);
    $dbh = DBI->connect($ENV{CLINIC_DB_DSN}, '', '', { RaiseError => 1, AutoCommit => 1 });
    is(join("\n", @wrong), '', 'after the PostgreSQL restart: answers as expected');
    $m = check_all('after a PostgreSQL restart');
}

# --- a full restart starts from zero ---
{
    my $t0 = $m->{clinic_metrics_start_time_seconds};
    sleep 1;
    ok($h->restart('HUP', '/clinic-metrics'), 'full restart done');
    (%req, %tok, %idem, %dberr, %db) = ();
    $valid = 0;
    my $z = metrics();
    ok($z->{clinic_metrics_start_time_seconds} > $t0, 'clinic_metrics_start_time_seconds moved on');
    is(scalar(grep { /^clinic_requests_total/ } keys %$z), 0, 'no request counted after a full restart');
    one_round();
    check_all('after a full restart and one round');
    promtool_ok('after a full restart');
}

# --- ClinicMetrics off: no segment, 404 from the handler, routes unchanged ---
{
    $h->write_conf(conf(off => 1));
    ok($h->restart('USR1', '/clinic-metrics'), 'graceful restart with ClinicMetrics off');
    is($ua->get($h->url('/clinic-metrics'))->code, 404, 'ClinicMetrics off: the handler answers 404');
    my $res = $ua->post($h->url('/visits'), Authorization => "Bearer $desk",
                        'Content-Type' => 'application/json',
                        Content => '{"patient": 1750, "status": "off"}');
    is($res->code, 200, 'ClinicMetrics off: /visits still answers 200');
    unlike($ua->get($h->url('/server-status?auto'))->content, qr/^Clinic/m,
           'ClinicMetrics off: no mod_status section');
}

$h->stop;
done_testing();
