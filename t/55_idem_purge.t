# Expired Idempotency-Key rows go away by themselves (src/purge.c): after
# ordinary requests, in batches of at most 100 rows per request, while
# unexpired rows stay.
use strict;
use warnings FATAL => 'all';

use Test::More;
use Time::HiRes qw(time sleep);
use POSIX qw(strftime);
use lib 't/lib';
use Clinic::Test;

my $run = new_hex24();
my $caller = "sub:purge-$run";
my $tok = token(claims => { sub => "purge-$run" }, exp_in => 3600);
my $dbh = dbh();
sub ts { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(shift)) }

my $now = time;
my $ins = $dbh->prepare('INSERT INTO idempotency_keys (caller, route, key, fingerprint, status, body,'
                        . ' created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
$dbh->begin_work;
$ins->execute($caller, 'visits', "old-$_", 'f' x 64, 200, '[]', ts($now - 90000), ts($now - 3600))
    for 1 .. 250;
$ins->execute($caller, 'visits', "abandoned-$_", 'f' x 64, undef, undef, ts($now - 90000),
              ts($now - 60)) for 1 .. 3;
$ins->execute($caller, 'visits', "live-$_", 'f' x 64, 200, '[]', ts($now - 60), ts($now + 86400))
    for 1 .. 10;
$dbh->commit;

sub expired { count_rows('idempotency_keys WHERE caller = ? AND expires_at < ?', $caller, ts($now)) }
sub live { count_rows('idempotency_keys WHERE caller = ? AND expires_at > ?', $caller, ts($now)) }
sub visit { post_json('/visits', { patient => 1750, status => 'purge' }, token => $tok)->code }

is(expired(), 253, '253 expired rows to begin with');
my @left = (expired());
my $t0 = time;
while ($left[-1] > 0 && time - $t0 < 15) {
    my $code = visit();
    die "visit answered $code" unless $code == 200;
    sleep 0.2;   # the purge runs after the answer is sent
    push @left, expired();
}
is($left[-1], 0, sprintf('the expired rows are gone after %d requests, %.1f s', $#left, time - $t0));
my @steps = map { $left[$_ - 1] - $left[$_] } 1 .. $#left;
is(scalar(grep { $_ > 100 } @steps), 0, 'no request deleted more than 100 rows (' .
   join(' ', grep { $_ } @steps) . ')');
cmp_ok(scalar(grep { $_ } @steps), '>=', 3, 'the backlog went in several batches');
is(live(), 10, 'the 10 unexpired rows stay');

done_testing();
