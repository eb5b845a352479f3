#!/usr/bin/perl
# The files' layers, from the objects' own symbols: file A uses file B when A
# leaves undefined a symbol that B defines (nm). A static library counts as
# one file (the core), below every object: it may use none of them. The
# object given with --record holds the module record that every file refers
# to: what it defines makes no edge, so it comes out on top; what it uses is
# checked like any file's.
#
#   layers.pl [--record OBJ] OBJ|LIB.a...
#
# Prints each circle (files that use one another, directly or not) with the
# symbols that close it, and each use a library makes of an object, and exits
# 1; else prints the files bottom to top, each with its layer (one above the
# highest of the files it uses) and the files it uses, and exits 0.
use strict;
use warnings;
use File::Basename qw(basename);

my (%record, %lib, @files);
while (@ARGV) {
    my $arg = shift @ARGV;
    if ($arg eq '--record') { $record{$ARGV[0]} = 1; push @files, shift @ARGV }
    else { push @files, $arg }
}
die "usage: layers.pl [--record OBJ] OBJ|LIB.a...\n" unless @files;

# name => { def => {sym=>1}, undef => {sym=>1} }
my %file;
for my $path (@files) {
    my $name = basename($path);
    $lib{$name} = 1 if $name =~ s/^lib(.*)\.a$/$1/;
    $name =~ s/\.o$//;
    open my $nm, '-|', 'nm', '-P', $path or die "nm $path: $!";
    while (<$nm>) {
        my ($sym, $type) = split;
        next unless defined $type;
        if ($type eq 'U' || $type eq 'w' || $type eq 'v') {
            $file{$name}{undef}{$sym} = 1;
        } elsif ($type =~ /^[A-Z]$/ && !$record{$path}) {
            $file{$name}{def}{$sym} = 1;
        }
    }
    close $nm or die "nm $path failed\n";
}

# Within a library a member's use of another is no edge.
for my $f (values %file) {
    delete @{$f->{undef}}{keys %{$f->{def} || {}}};
}

my %definer;
for my $name (sort keys %file) {
    $definer{$_} //= $name for keys %{$file{$name}{def} || {}};
}

# %uses: A => { B => [symbols] }
my %uses;
for my $from (sort keys %file) {
    $uses{$from} = {};
    for my $sym (sort keys %{$file{$from}{undef} || {}}) {
        my $to = $definer{$sym};
        push @{$uses{$from}{$to}}, $sym if defined $to && $to ne $from;
    }
}

# Tarjan: the strongly connected components, each found after those it uses.
my ($index, @stack, %on, %idx, %low, @sccs) = (0);
sub visit {
    my ($v) = @_;
    $idx{$v} = $low{$v} = $index++;
    push @stack, $v;
    $on{$v} = 1;
    for my $w (sort keys %{$uses{$v}}) {
        if (!exists $idx{$w}) {
            visit($w);
            $low{$v} = $low{$w} if $low{$w} < $low{$v};
        } elsif ($on{$w}) {
            $low{$v} = $idx{$w} if $idx{$w} < $low{$v};
        }
    }
    return unless $low{$v} == $idx{$v};
    my @scc;
    while (1) {
        my $w = pop @stack;
        delete $on{$w};
        push @scc, $w;
        last if $w eq $v;
    }
    push @sccs, [sort @scc];
}
for my $v (sort keys %uses) {
    visit($v) unless exists $idx{$v};
}

my @circles = grep { @$_ > 1 } @sccs;
for my $scc (@circles) {
    my %in = map { $_ => 1 } @$scc;
    print "layers: a circle between ", join(', ', @$scc), ":\n";
    for my $from (@$scc) {
        for my $to (grep { $in{$_} } sort keys %{$uses{$from}}) {
            print "  $from -> $to: ", join(" ", @{$uses{$from}{$to}}), "\n";
        }
    }
}
# A library is below every object: it uses none of them.
my @up = grep { %{$uses{$_}} } sort keys %lib;
for my $l (@up) {
    print "layers: the library $l uses $_: @{$uses{$l}{$_}}\n" for sort keys %{$uses{$l}};
}
exit 1 if @circles || @up;

# A file's layer: one above the highest of the files it uses (0: uses none).
my %layer;
for my $scc (@sccs) {
    my $v = $scc->[0];
    $layer{$v} = 0;
    for my $w (keys %{$uses{$v}}) {
        $layer{$v} = $layer{$w} + 1 if $layer{$w} + 1 > $layer{$v};
    }
}
print "layers: no circle; bottom to top, each file with the files it uses:\n";
for my $v (sort { $layer{$a} <=> $layer{$b} || $a cmp $b } keys %layer) {
    my @below = sort keys %{$uses{$v}};
    printf "  %2d %-14s %s\n", $layer{$v}, $v, @below ? join(' ', @below) : '-';
}
exit 0;
