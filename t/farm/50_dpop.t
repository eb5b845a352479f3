# Farm check e: DPoP proofs are accepted once across the farm. The replay
# store is the shared database (dpop_jtis): a proof node A accepted is
# refused by node B; ten copies of one proof racing through both nodes give
# exactly one 200 (PostgreSQL's unique index decides), one visit row.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use HTTP::Tiny ();
use File::Temp ();
use Clinic::Farm qw(counts same);
use Clinic::Race ();
use Clinic::DPoP qw(proof jkt_of);

my $farm = Clinic::Farm->load or plan skip_all => 'no farm: run make farm (scripts/farm-test.sh)';
my $run = $farm->tag;
my $mkjwt = $farm->{mkjwt};
my $tmp = File::Temp::tempdir(CLEANUP => 1);
system("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $tmp/dpop.pem 2>/dev/null") == 0
    && system("openssl pkey -in $tmp/dpop.pem -pubout -out $tmp/dpop-public.pem") == 0 or die 'openssl';
my %key = (mkjwt => $mkjwt, key => "$tmp/dpop.pem", pub => "$tmp/dpop-public.pem", alg => 'ES256',
           htu => 'https://api.hospital.example/dpop/visits');
my $tok = $farm->token({ sub => "farm-dpop-$run", cnf => { jkt => jkt_of($mkjwt, $key{pub}) } });
my $ua = HTTP::Tiny->new(keep_alive => 0, timeout => 30);
my $body = { patient => 1750, status => "farm-e-$run" };
sub visits { $farm->one('SELECT count(*) FROM visits WHERE status = ?', "farm-e-$run") }

sub send_proof {
    my ($ua, $node, $p) = @_;
    return $ua->request('POST', 'http://127.0.0.1:' . $farm->port($node) . '/dpop/visits', {
        headers => { Authorization => "DPoP $tok", DPoP => $p, 'Content-Type' => 'application/json' },
        content => $farm->encode($body) });
}

# one proof, node A then node B
{
    my $p = proof(%key, token => $tok);
    my $r1 = send_proof($ua, 'a', $p);
    same($r1->{status}, 200, 'e: a proof on node A');
    my $r2 = send_proof($ua, 'b', $p);
    same($r2->{status}, 401, 'e: the same proof on node B is refused');
    same($r2->{headers}{'www-authenticate'},
         'DPoP error="invalid_dpop_proof", algs="RS256 RS384 RS512 ES256 ES384 ES512"',
         'e: node B says invalid_dpop_proof');
    same(send_proof($ua, 'b', proof(%key, token => $tok))->{status}, 200, 'e: a fresh proof on node B');
    same(visits(), 2, 'e: two visit rows');
}

# ten copies of one proof at once, alternating nodes
{
    my $p = proof(%key, token => $tok);
    my $v0 = visits();
    my @results = Clinic::Race::run(clients => 10, prepare => sub {
        my ($i) = @_;
        my $ua2 = HTTP::Tiny->new(keep_alive => 0, timeout => 30);
        return sub { return { status => send_proof($ua2, $i % 2 ? 'a' : 'b', $p)->{status} } };
    });
    my %st;
    $st{ $_->{status} }++ for @results;
    note('e: ten racing copies: ' . counts(\%st));
    same($st{200} // 0, 1, 'e: exactly one racing copy accepted');
    same($st{401} // 0, 9, 'e: nine refused');
    same(visits() - $v0, 1, 'e: one visit row for ten racing copies');
}

done_testing();
