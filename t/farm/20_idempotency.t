# Farm check b: Idempotency-Key across nodes. The answer of node A is replayed
# by node B byte for byte, nothing written twice, also with racing copies.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use HTTP::Tiny ();
use Clinic::Farm qw(counts same);
use Clinic::Race ();
use Clinic::Token qw(new_hex24);

my $farm = Clinic::Farm->load or plan skip_all => 'no farm: run make farm (scripts/farm-test.sh)';
my $run = $farm->tag;
my $tok_visits = $farm->token({ sub => 'farm-registration-desk' });
my $ua = HTTP::Tiny->new(keep_alive => 0, timeout => 30);
sub visits { $farm->one('SELECT count(*) FROM visits') }

# /visits: first on node A, the retry on B
{
    my $visits0 = visits();
    my $key = "farm-b-$run-visit";
    my $body = { patient => 1750, status => "farm-b-$run" };
    my $r1 = $farm->post($ua, 'a', '/visits', $tok_visits, $body, 'Idempotency-Key' => $key);
    same($r1->{status}, 200, 'b: POST /visits with a key on node A');
    my $r2 = $farm->post($ua, 'b', '/visits', $tok_visits, $body, 'Idempotency-Key' => $key);
    same($r2->{status}, 200, 'b: the same on node B');
    same($r2->{headers}{'idempotent-replayed'}, 'true', 'b: node B says Idempotent-Replayed: true');
    ok($r1->{content} eq $r2->{content}, 'b: node B answers node A\'s body byte for byte');
    same(visits() - $visits0, 1, 'b: one visit row');
    my $r3 = $farm->post($ua, 'b', '/visits', $tok_visits, { %$body, status => 'other' }, 'Idempotency-Key' => $key);
    same($r3->{status}, 422, 'b: the key with another body on node B');
}

# add-and-link: first on B, the retry on A
{
    my $uid = "farm_idem_$run";
    my $appt = new_hex24();
    $farm->dbh->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $appt, $uid);
    my $tok = $farm->token({ sub => $uid, userId => $uid });
    my $lb = { appointment_id => $appt, firstName => 'Idem', lastName => 'Farm' };
    my $l1 = $farm->post($ua, 'b', "/patients/add_and_link?uid=$uid", $tok, $lb, 'Idempotency-Key' => 'k1');
    my $l2 = $farm->post($ua, 'a', "/patients/add_and_link?uid=$uid", $tok, $lb, 'Idempotency-Key' => 'k1');
    same("$l1->{status} $l2->{status}", '200 200', 'b: add_and_link on node B, its retry on node A');
    same($l2->{headers}{'idempotent-replayed'}, 'true', 'b: node A replays');
    ok($l1->{content} eq $l2->{content}, 'b: the same body, the same _id');
    same($farm->one('SELECT count(*) FROM practice_patients WHERE doctor_id = ?', $uid), 1, 'b: one patient row');
}

# ten copies of one keyed request at once, alternating nodes
{
    my $key = "farm-b-$run-race";
    my $body = $farm->encode({ patient => 1750, status => "farm-b-race-$run" });
    my $visits0 = visits();
    my @results = Clinic::Race::run(clients => 10, prepare => sub {
        my ($i) = @_;
        my $ua2 = HTTP::Tiny->new(keep_alive => 0, timeout => 30);
        return sub {
            my $res = $farm->post($ua2, $i % 2 ? 'a' : 'b', '/visits', $tok_visits, $body, 'Idempotency-Key' => $key);
            return { status => $res->{status}, replayed => $res->{headers}{'idempotent-replayed'} // '-' };
        };
    });
    my @answers = map { "$_->{status} " . ($_->{replayed} // '-') } @results;
    my %st;
    $st{$_}++ for @answers;
    note('b: ten racing copies: ' . counts(\%st));
    same($st{'200 -'} // 0, 1, 'b: exactly one racing copy did the work');
    same(scalar(grep { !/^(200 true|200 -|409 -)$/ } @answers), 0,
         'b: the others were replayed or told "in progress"');
    same(visits() - $visits0, 1, 'b: one visit row for ten racing copies');
}

done_testing();
