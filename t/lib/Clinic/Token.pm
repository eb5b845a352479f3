package Clinic::Token;
# Real tokens signed by tools/mkjwt, for the Apache::Test suite
# (Clinic::Test::token picks the suite's keys) and the farm (Clinic::Farm),
# and the random 24-hex ids (appointments, patients) requests carry.
use strict;
use warnings;

use Exporter 'import';
use JSON::PP ();

our @EXPORT_OK = qw(mint new_hex24);

my $json = JSON::PP->new->utf8->canonical->allow_nonref;

# mint(mkjwt => PATH, alg => 'RS256', key => PATH, kid => ..., claims => {...} or '...',
#      exp_in => SECONDS, no_exp => 1): the token, or die.
sub mint {
    my %o = @_;
    my $alg = $o{alg} // 'RS256';
    my @cmd = ($o{mkjwt}, 'sign', '--alg', $alg);
    push @cmd, '--key', $o{key} if defined $o{key} && $alg ne 'none';
    push @cmd, '--kid', $o{kid} if defined $o{kid};
    push @cmd, '--claims', (ref $o{claims} ? $json->encode($o{claims}) : $o{claims})
        if defined $o{claims};
    push @cmd, '--exp-in', $o{exp_in} if defined $o{exp_in};
    push @cmd, '--no-exp' if $o{no_exp};
    open(my $fh, '-|', @cmd) or die "mkjwt: $!";
    my $t = <$fh>;
    close $fh or die "mkjwt failed: @cmd";
    chomp $t;
    return $t;
}

sub new_hex24 {
    return join '', map { sprintf '%02x', int rand 256 } 1 .. 12;
}

1;
