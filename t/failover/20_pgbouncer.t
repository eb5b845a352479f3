# Apache -> PgBouncer (session pooling) -> PostgreSQL: both routes, the link
# race (one winner of 20), Idempotency-Key replays and racing duplicates,
# and a PostgreSQL restart behind PgBouncer. Then transaction pooling, which
# mod_clinic refuses: see README.md "PgBouncer".
use strict;
use warnings;

use Test::More;
use JSON::PP ();
use Time::HiRes qw(sleep time);
use lib 't/lib';
use Clinic::Procs qw(wait_until);
use Clinic::PgCluster;
use Clinic::PgBouncer;
use Clinic::Failover qw(work schema_files keys_once node post_retry hex24 appt_id
                    check_answers_in_db parallel);

my $json = JSON::PP->new->utf8->canonical;
my $d = work() . '/pgbouncer';
mkdir $d;
my $user = getpwuid($<);
my $run = hex24();

my $pg = Clinic::PgCluster->new(dir => "$d/pg", conf => ['max_connections = 100'])->init->start;
$pg->load_schema(schema_files());
my $db = $pg->dbh;
# PgBouncer does not pass libpq's options= on: the timeout is set on the database.
$db->do("ALTER DATABASE clinic SET statement_timeout = '5s'");
my $doc = 'pgb-doc';
$db->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, appt_id(20, $_), $doc)
    for 0 .. 99;

my $pgb = Clinic::PgBouncer->new(dir => "$d/bouncer", cluster => $pg, pool_mode => 'session')->start;
my $h = node('pgb', "host=127.0.0.1 port=" . $pgb->port . " dbname=clinic user=$user connect_timeout=2");
my $k = keys_once();
my $vt = $k->token({ sub => 'pgb-desk' });
my $lt = $k->token({ sub => $doc, userId => $doc });
my $link_url = $h->url("/patients/add_and_link?uid=$doc");
my $link_body = sub { sprintf '{"appointment_id": "%s", "firstName": "%s", "lastName": "Bouncer"}', @_ };
my $ua = HTTP::Tiny->new(timeout => 30, keep_alive => 0);
my $post = sub {
    my ($url, $tok, $body, $key) = @_;
    return $ua->request('POST', $url, { headers => { 'Authorization' => "Bearer $tok",
        'Content-Type' => 'application/json', ($key ? ('Idempotency-Key' => $key) : ()) },
        content => $body });
};

# --- both routes ---------------------------------------------------------------
my $v = $post->($h->url('/visits'), $vt, '{"patient": 1750, "status": "via pgbouncer"}');
is($v->{status}, 200, 'visits through PgBouncer: 200');
is(eval { $json->decode($v->{content})->[0]{status} }, 'via pgbouncer', '... the visit answered');
my $l = $post->($link_url, $lt, $link_body->(appt_id(20, 0), 'Ann'));
is($l->{status}, 200, 'add-and-link through PgBouncer: 200');
my $lid = eval { $json->decode($l->{content})->{data}{_id} } // '';
is(($db->selectrow_array('SELECT patient_id FROM appointments WHERE id = ?', undef, appt_id(20, 0)))[0],
   $lid, '... the appointment holds the patient');

# --- the race: 20 doctors' clients, one appointment -----------------------------
{
    my $appt = appt_id(20, 1);
    my @r = parallel(20, sub {
        my $res = $post->($link_url, $lt, $link_body->($appt, "Racer$_[0]"));
        return { status => $res->{status}, id => eval { $json->decode($res->{content})->{data}{_id} } };
    });
    my %by;
    $by{$_->{status}}++ for @r;
    is($by{200}, 1, 'race of 20 through PgBouncer: one 200 (' . join(', ', map { "$_: $by{$_}" } sort keys %by) . ')');
    is($by{409}, 19, '... nineteen 409');
    my ($winner) = map { $_->{id} } grep { $_->{status} == 200 } @r;
    is(($db->selectrow_array('SELECT patient_id FROM appointments WHERE id = ?', undef, $appt))[0],
       $winner, '... the appointment holds the winner');
    is(($db->selectrow_array(q(SELECT count(*) FROM practice_patients WHERE first_name LIKE 'Racer%')))[0],
       1, '... and the losers wrote nothing');
}

# --- Idempotency-Key: replay, racing duplicates -----------------------------------
{
    my $key = "pgb-$run";
    my $body = qq({"patient": 1750, "status": "fo $key"});
    my $first = $post->($h->url('/visits'), $vt, $body, $key);
    my $again = $post->($h->url('/visits'), $vt, $body, $key);
    is($first->{status}, 200, 'keyed visit through PgBouncer: 200');
    is($again->{content}, $first->{content}, '... its retry replays the answer byte for byte');
    is($again->{headers}{'idempotent-replayed'}, 'true', '... marked Idempotent-Replayed');
    my $rkey = "pgb-race-$run";
    my $rbody = qq({"patient": 1750, "status": "fo $rkey"});
    my @r = parallel(10, sub { my $res = $post->($h->url('/visits'), $vt, $rbody, $rkey);
                               return { status => $res->{status}, answer => $res->{content} } });
    my @ok = grep { $_->{status} == 200 } @r;
    is(scalar(grep { $_->{status} == 200 || $_->{status} == 409 } @r), 10,
       '10 racing duplicates: 200 or 409 each (' . join(' ', sort map { $_->{status} } @r) . ')');
    is(scalar(grep { $_->{answer} ne $ok[0]{answer} } @ok), 0, '... every 200 is the same answer');
    is(($db->selectrow_array('SELECT count(*) FROM visits WHERE status = ?', undef, "fo $rkey"))[0], 1,
       '... one visit written');
}

# --- PostgreSQL restarts behind PgBouncer ------------------------------------------
{
    $pg->restart;
    my (@done, @seen);
    for my $n (0 .. 5) {
        my $key = "pgb-restart-$n-$run";
        my ($path, $tok, $body) = $n % 2
            ? ("/patients/add_and_link?uid=$doc", $lt, $link_body->(appt_id(20, 10 + $n), $key))
            : ('/visits', $vt, qq({"patient": 1750, "status": "fo $key"}));
        my ($res, @s) = post_retry($h->url($path), $tok, $body, $key, give_up => 20);
        push @seen, @s;
        push @done, { path => $path, key => $key, status => $res->{status}, answer => $res->{content} };
    }
    diag('after the restart: ' . join(' ', @seen));
    is(join(' ', grep { !/^(200|503)$/ } @seen), '', 'PostgreSQL restarted behind PgBouncer: only 200 and 503');
    check_answers_in_db($db = $pg->dbh, \@done, 'after the restart behind PgBouncer');
}

is(scalar($h->log_lines(qr/\b(segfault|Segmentation|AH00052)\b/)), 0, 'no child crashed');

# --- transaction pooling: refused, with a clear log line -------------------------
# apr_dbd prepares with SQL PREPARE on the session; per-transaction pooling
# hands the next transaction to a server connection that never saw it.
# Clients then get 503 (never a 500, nothing half-written) and the log says
# what is wrong at the first request that meets it.
{
    my $tx = Clinic::PgBouncer->new(dir => "$d/bouncer-tx", cluster => $pg,
                                    pool_mode => 'transaction', pool_size => 4)->start;
    my $ht = node('pgbt', "host=127.0.0.1 port=" . $tx->port . " dbname=clinic user=$user connect_timeout=2");
    # Said by the module when statements vanish between transactions, or at the
    # first request that mod_dbd could not give a connection (its PREPAREs at
    # connect found the statements of another client's session).
    my $said = qr/(vanish from this database session between transactions|already exists" there means).*pool_mode = session/;
    my (@seen, $rounds);
    for my $round (1 .. 10) {
        $rounds = $round;
        push @seen, map { $_->{status} } parallel(8, sub {
            my $key = "pgbt-$round-$_[0]-$run";
            my $res = $post->($ht->url('/visits'), $vt, qq({"patient": 1750, "status": "fo $key"}), $key);
            return { status => $res->{status} };
        });
        last if $ht->log_lines($said);
    }
    my %by;
    $by{$_}++ for @seen;
    diag("transaction pooling, $rounds rounds of 8: " . join(', ', map { "$_: $by{$_}" } sort keys %by));
    my ($line) = $ht->log_lines($said);
    $line = undef if $line && $line =~ /there means/
        && !$ht->log_lines(qr/failed to prepare SQL statements: .*already exists/);
    ok($line, 'transaction pooling: the error log says it is not supported, and why');
    diag('log: ' . ($line =~ s/^.*?\[clinic:/[clinic:/r)) if $line;
    is(join(' ', grep { !/^(200|503)$/ } @seen), '', '... clients get 200 or 503, never a 500');
    my ($dups) = $db->selectrow_array(q(SELECT count(*) FROM (SELECT status FROM visits
        WHERE status LIKE 'fo pgbt-%' GROUP BY 1 HAVING count(*) > 1) x));
    is($dups, 0, '... and nothing is written twice');
}
done_testing();
