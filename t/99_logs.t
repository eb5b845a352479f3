# Runs last: the error log of the whole suite (LogLevel info) and its audit
# log (the clinic_audit format) hold no token the suite sent, no JWT at all,
# and no patient name it sent or read.
use strict;
use warnings FATAL => 'all';

use Test::More;
use Apache::Test ();
use JSON::PP ();
use lib 't/lib';
use Clinic::Test;

my $logs = Apache::Test::vars('t_logs');
sub slurp { my $f = shift; open(my $fh, '<:raw', $f) or return ''; local $/; <$fh> }
my $audit = slurp("$logs/clinic_audit.log");
ok(length $audit > 0, 'the audit log has content');
my $log = slurp("$logs/error_log") . $audit;
ok(length $log > length $audit, 'the error log has content');

my @tokens = grep { length } split /\n/, slurp("$logs/sent-tokens.txt");
cmp_ok(scalar @tokens, '>', 0, scalar(@tokens) . ' tokens were sent by the suite');
my @leaked = grep { index($log, (split /\./, $_)[-1] // $_) >= 0 || index($log, $_) >= 0 } @tokens;
is(scalar @leaked, 0, 'no token (nor its signature) is in the error or audit log');
unlike($log, qr/eyJ[A-Za-z0-9_-]{8,}\.eyJ/, 'nothing shaped like a JWT is in the error or audit log');

my %names;
my $json = JSON::PP->new->utf8->relaxed;
for my $line (split /\n/, slurp("$logs/sent-bodies.txt")) {
    my $v = eval { $json->decode($line) };
    next unless ref $v eq 'HASH';
    for my $k (qw(firstName lastName name)) {
        $names{ $json->encode($v->{$k}) =~ s/^"|"$//gr } = 1
            if defined $v->{$k} && !ref $v->{$k} && length $v->{$k} >= 4;
    }
}
$names{$_} = 1 for grep { length >= 4 }
    map { $_->[0] } @{ dbh()->selectall_arrayref('SELECT name FROM patients') };
cmp_ok(scalar keys %names, '>', 5, scalar(keys %names) . ' patient names to look for');
my @found = grep { index($log, $_) >= 0 } sort keys %names;
is(scalar @found, 0, 'no patient name is in the error or audit log') or diag("found: @found");

done_testing();
