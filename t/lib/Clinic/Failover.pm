package Clinic::Failover;
# What the failover and PgBouncer tests share: the work directory the runner
# (scripts/failover-test.sh) made, the schema loaded into a cluster, one
# Apache node with given DBDParams, requests with Idempotency-Key retries,
# and the checks of what the clients were told against a database.
use strict;
use warnings;

use Exporter 'import';
use HTTP::Tiny ();
use JSON::PP ();
use POSIX ();
use Test::More ();
use Time::HiRes qw(sleep time);
use Clinic::Node;
use Clinic::Keys;

our @EXPORT_OK = qw(work schema_files keys_once node post_retry hex24 appt_id
                    check_answers_in_db parallel);

my $json = JSON::PP->new->utf8->canonical;

sub work { $ENV{CLINIC_WORK} or die "CLINIC_WORK unset: run through scripts/failover-test.sh\n" }
sub schema_files { map { work() . "/sql/$_" } qw(schema-pgsql.sql demo-data.sql demo-sequences-pgsql.sql) }
sub hex24 { join '', map { sprintf '%02x', int rand 256 } 1 .. 12 }
# A distinct appointment id per (series, n).
sub appt_id { sprintf '%08x%016x', 0xf0000000 + $_[0], $_[1] }

my $keys;
sub keys_once { $keys ||= Clinic::Keys->new(dir => work() . '/keys', mkjwt => work() . '/mkjwt') }

# An Apache node on DBDParams $params, started.
sub node {
    my ($name, $params, @extra) = @_;
    return Clinic::Node->new(run => work() . '/run', node => $name, top => work(),
                              keydir => keys_once()->dir, dbparams => $params,
                              extra => \@extra)->start;
}

# POST with an Idempotency-Key, sent again after a 503 or a transport error
# until the route answers or $give_up seconds pass. Returns the final
# response and the list of statuses seen (with a flag for 503 without
# Retry-After).
sub post_retry {
    my ($url, $token, $body, $key, %o) = @_;
    my $ua = HTTP::Tiny->new(timeout => 30, keep_alive => 0);
    my $until = time + ($o{give_up} // 30);
    my (@seen, $res);
    while (1) {
        $res = $ua->request('POST', $url, { headers => {
            'Authorization' => "Bearer $token", 'Content-Type' => 'application/json',
            ($key ? ('Idempotency-Key' => $key) : ()) }, content => $body });
        push @seen, $res->{status} . ($res->{status} == 503 && !$res->{headers}{'retry-after'}
                                      ? '-no-retry-after' : '');
        last unless $res->{status} == 503 || $res->{status} == 599;
        last if time > $until;
        sleep($o{pause} // 0.2);
    }
    return ($res, @seen);
}

# Run $code->($i) for i = 0 .. $n-1 in $n forked processes started together;
# returns what each returned (a hash or array reference), in order.
sub parallel {
    my ($n, $code) = @_;
    my @kids;
    for my $i (0 .. $n - 1) {
        pipe(my $rd, my $wr) or die "pipe: $!";
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $rd;
            print $wr $json->encode($code->($i));
            close $wr;
            POSIX::_exit(0);
        }
        close $wr;
        push @kids, [$pid, $rd];
    }
    return map { my $fh = $_->[1]; local $/; my $v = <$fh>; waitpid($_->[0], 0);
                 $v ? $json->decode($v) : undef } @kids;
}

# Every answered write is in $dbh, exactly once, with its stored answer.
# $done: Clinic::Load results (or the same shape); visits carry "status":
# "fo <key>", links firstName = key. Returns the number of problems found.
sub check_answers_in_db {
    my ($dbh, $done, $label) = @_;
    my ($lost, $dup, $stored, $other) = (0, 0, 0, 0);
    for my $r (@$done) {
        if ($r->{status} != 200) { $other++; next }
        my $a = eval { $json->decode($r->{answer}) } or do { $other++; next };
        if ($r->{path} =~ m{^/visits}) {
            my ($n) = $dbh->selectrow_array('SELECT count(*) FROM visits WHERE status = ?', undef,
                                            "fo $r->{key}");
            my ($id) = $dbh->selectrow_array('SELECT id FROM visits WHERE id = ? AND status = ?',
                                             undef, $a->[0]{id}, "fo $r->{key}");
            $lost++ unless $id;
            $dup++ if $n > 1;
        } else {
            my $pid = $a->{data}{_id};
            my ($n) = $dbh->selectrow_array('SELECT count(*) FROM practice_patients WHERE first_name = ?',
                                            undef, $r->{key});
            my ($linked) = $dbh->selectrow_array('SELECT count(*) FROM appointments WHERE patient_id = ?',
                                                 undef, $pid);
            $lost++ unless $linked == 1;
            $dup++ if $n > 1;
        }
        my ($body) = $dbh->selectrow_array(
            'SELECT body FROM idempotency_keys WHERE key = ? AND status = 200', undef, $r->{key});
        $stored++ unless defined $body && $body eq $r->{answer};
    }
    Test::More::is($other, 0, "$label: every request ended in 200");
    Test::More::is($lost, 0, "$label: every 200 the clients saw is in the database (0 lost)");
    Test::More::is($dup, 0, "$label: every key wrote exactly once");
    Test::More::is($stored, 0, "$label: every key's stored answer is the answer given, byte for byte");
    return $lost + $dup + $stored + $other;
}

1;
