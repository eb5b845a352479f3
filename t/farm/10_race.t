# Farm check a: link races through both nodes. 20 clients, alternating node
# A and B, post their own patient for ONE free appointment: exactly one 200,
# nineteen 409, one row, the appointment holds the winner (3 rounds).
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
my $clients = 20;

sub race_round {
    my ($round) = @_;
    my $uid = 'farm_race_' . $farm->tag . "_$round";
    my $appt = new_hex24();
    $farm->dbh->do('INSERT INTO appointments (id, doctor_id) VALUES (?, ?)', undef, $appt, $uid);
    my $tok = $farm->token({ sub => $uid, userId => $uid });
    my @results = Clinic::Race::run(clients => $clients, prepare => sub {
        my ($i) = @_;
        my $node = $i % 2 ? 'a' : 'b';
        my $ua = HTTP::Tiny->new(keep_alive => 0, timeout => 30);
        my $body = $farm->encode({ appointment_id => $appt, firstName => "Racer$i", lastName => 'Farm' });
        return sub {
            my $res = $farm->post($ua, $node, "/patients/add_and_link?uid=$uid", $tok, $body);
            my $b = Clinic::Farm::jbody($res);
            return { node => $node, status => $res->{status},
                     id => ref $b eq 'HASH' && ref $b->{data} eq 'HASH' ? $b->{data}{_id} // '-' : '-',
                     code => ref $b eq 'HASH' ? $b->{code} // '-' : '-' };
        };
    });

    my (%st, %by_node, $winner, $winner_i);
    for my $r (@results) {
        my ($i, $status, $code) = @$r{qw(i status code)};
        my $node = uc($r->{node} // ($i % 2 ? 'a' : 'b'));
        $st{$status}++;
        $by_node{"$node $status"}++;
        ($winner, $winner_i) = ($r->{id}, $i) if $status eq '200';
        note("round $round: client $i (node $node) answered $status " . ($code // $r->{error}))
            if $status ne '200' && !($status eq '409' && ($code // '') eq 'APPOINTMENT_ALREADY_LINKED');
    }
    note("round $round: " . counts(\%by_node));
    same(scalar @results, $clients, "a$round: all clients answered");
    same($st{200} // 0, 1, "a$round: exactly one 200");
    same($st{409} // 0, $clients - 1, "a$round: nineteen 409");
    same($farm->one('SELECT count(*) FROM practice_patients WHERE doctor_id = ?', $uid), 1,
         "a$round: one practice_patients row for the doctor");
    my $linked = $farm->one('SELECT patient_id FROM appointments WHERE id = ?', $appt);
    ok(defined $winner && defined $linked && $linked eq $winner,
       "a$round: appointment.patient_id is the winner's _id");
    same($farm->one('SELECT first_name FROM practice_patients WHERE doctor_id = ?', $uid),
         defined $winner_i ? "Racer$winner_i" : '(no winner)', "a$round: the stored patient is the winner's");
}

race_round($_) for 1 .. 3;
done_testing();
