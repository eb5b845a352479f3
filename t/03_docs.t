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

# Every relative Markdown link and every #anchor in the Markdown documents
# points at a file that exists and, with an anchor, at one of its headings
# (GitHub's anchors: lower case, spaces to '-', punctuation dropped; a second
# heading of the same words gets -1, -2, ...). Code blocks and inline code are
# not links.
use File::Basename qw(dirname);
use File::Spec ();

my %anchors;
sub anchors {
    my ($file) = @_;
    return $anchors{$file} //= do {
        open(my $fh, '<', $file) or die "$file: $!";
        my (%seen, %set, $fence);
        while (my $line = <$fh>) {
            if ($line =~ /^\s*```/) { $fence = !$fence; next; }
            next if $fence || $line !~ /^#{1,6}\s+(.*?)\s*#*\s*$/;
            (my $a = lc $1) =~ s/[^\w\- ]//g;
            $a =~ tr/ /-/;
            my $n = $seen{$a}++;
            $set{$n ? "$a-$n" : $a} = 1;
        }
        close $fh;
        \%set;
    };
}

my @md = grep { /\.md$/ } @docs;
for my $doc (@md) {
    open(my $fh, '<', $doc) or die "$doc: $!";
    my ($fence, @bad);
    while (my $line = <$fh>) {
        if ($line =~ /^\s*```/) { $fence = !$fence; next; }
        next if $fence;
        $line =~ s/`[^`]*`//g;
        while ($line =~ /\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g) {
            my $target = $1;
            next if $target =~ m{^[a-z][a-z0-9+.-]*:}i;
            my ($path, $anchor) = $target =~ /^([^#]*)(?:#(.*))?$/;
            my $file = $path eq '' ? $doc
                     : File::Spec->canonpath(File::Spec->catfile(dirname($doc), $path));
            1 while $file =~ s{(^|/)(?!\.\./)[^/]+/\.\.(?:/|$)}{$1};
            if (!-e $file) { push @bad, "$.: $target (no file $file)"; next; }
            push @bad, "$.: $target (no heading #$anchor in $file)"
                if defined $anchor && $file =~ /\.md$/ && !anchors($file)->{$anchor};
        }
    }
    close $fh;
    is(join("\n", @bad), '', "$doc: every relative link and anchor leads somewhere");
}

done_testing();
