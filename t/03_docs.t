# The documents speak of the module as it is: no issue numbers, no work
# sessions ("database session", "pooled session" are the database's own). And
# every ```apache block keeps its comments on lines of their own: Apache reads
# a "#" after a directive as more arguments, and configtest fails.
use strict;
use warnings FATAL => 'all';

use Test::More;

my @docs = (qw(README.md FARM.md BENCHMARKS.md), glob('docs/*.md'), glob('conf/*.conf'),
            qw(debian/changelog debian/control debian/clinic-mkjwt.1));
my $history = qr/\b(?:issues?\s+\d+|(?:this|first|second|third|previous|earlier|last)\s+session)\b|(?<![&\w])#\d+\b/i;

for my $doc (@docs) {
    open(my $fh, '<', $doc) or die "$doc: $!";
    my ($lang, @history, @trailing);
    while (my $line = <$fh>) {
        push @history, "$.: $line" if $line =~ $history;
        if ($line =~ /^```(\w*)/) { $lang = defined $lang ? undef : $1; next; }
        push @trailing, "$.: $line"
            if defined $lang && $lang eq 'apache' && $line =~ /^\s*[^#\s].*\s#/;
    }
    close $fh;
    is(join('', @history), '', "$doc: no issue numbers or work sessions");
    is(join('', @trailing), '', "$doc: no comment after a directive in an apache block")
        if $doc =~ /\.md$/;
}

done_testing();
