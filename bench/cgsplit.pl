#!/usr/bin/perl
# Split a callgrind profile of the module's handler (bench/bench.pl runs
# httpd -X under callgrind with --toggle-collect=clinic_handler, and the
# module's request-pool cleanups) into the module's own work and the
# database's.
#
#   perl bench/cgsplit.pl MODULE_SO_BASENAME N callgrind.out.X
#
# Prints "key value" lines, every Ir divided by N (requests):
#   total      all Ir collected (the handler, inclusive)
#   db         inclusive Ir of the calls module code makes into the database
#              layer: ap_dbd_acquire (mod_dbd), apr_dbd_*, PQ* (libpq)
#   module     total - db
#   self       Ir executed in the module's own code
#   lib:NAME   inclusive Ir of the module's calls into library NAME (not db)
#   jwt_decode calls of jwt_decode from outside libjwt (not divided by N)
use strict;
use warnings;

my ($modso, $n, $file) = @ARGV;
die "usage: cgsplit.pl MODULE_SO N FILE\n" unless $file && $n > 0;
open(my $fh, '<', $file) or die "$file: $!\n";

my (%obname, %fnname);
my ($ob, $fn, $cob, $cfn) = ('', '', undef, undef);
my ($total, $self, $db, $jwt) = (0, 0, 0, 0);
my %lib;
my $call_pending = 0;

sub name {   # "(id) name" or "(id)" with a compression table
    my ($tab, $s) = @_;
    if ($s =~ /^\((\d+)\)(?:\s+(.*))?$/) {
        $tab->{$1} = $2 if defined $2;
        return $tab->{$1} // "?$1";
    }
    return $s;
}
sub is_module { return $_[0] =~ m{/\Q$modso\E$} }
sub is_db {
    my ($o, $f) = @_;
    return 1 if $f =~ /^(ap_dbd_acquire|apr_dbd_\w+|PQ\w+)$/;
    return 1 if $o =~ m{/(libpq\.so|apr_dbd_pgsql)};
    return 0;
}
sub libname {
    my $o = shift;
    $o =~ s{.*/}{};
    $o =~ s{\.so.*}{};
    $o =~ s{^lib}{};
    return $o;
}

while (my $line = <$fh>) {
    chomp $line;
    if ($call_pending) {   # the cost line after calls=: position(s), then Ir
        $call_pending = 0;
        my @f = split ' ', $line;
        my $ir = $f[-1];
        my $c = $cob;
        $cob = undef;
        if (is_module($ob) && !is_module($c)) {
            if (is_db($c, $cfn)) { $db += $ir }
            else { $lib{libname($c)} += $ir }
        }
        next;
    }
    if ($line =~ /^ob=(.*)/) { $ob = name(\%obname, $1); next }
    if ($line =~ /^fn=(.*)/) { $fn = name(\%fnname, $1); $cob = undef; next }
    if ($line =~ /^cob=(.*)/) { $cob = name(\%obname, $1); next }
    if ($line =~ /^cfn=(.*)/) { $cfn = name(\%fnname, $1); next }
    if ($line =~ /^calls=(\d+)/) {
        $cob //= $ob;
        $jwt += $1 if $cfn eq 'jwt_decode' && $ob !~ /libjwt/;
        $call_pending = 1;
        next;
    }
    if ($line =~ /^(summary|totals):\s*(\d+)/) { $total = $2 if $1 eq 'summary' || !$total; next }
    if ($line =~ /^[+\-*\d]/) {   # a cost line of the current function
        my @f = split ' ', $line;
        $self += $f[-1] if @f >= 2 && is_module($ob);
        $cob = undef;
        next;
    }
}
close $fh;

printf "total %d\n", $total / $n;
printf "db %d\n", $db / $n;
printf "module %d\n", ($total - $db) / $n;
printf "self %d\n", $self / $n;
printf "lib:%s %d\n", $_, $lib{$_} / $n for sort { $lib{$b} <=> $lib{$a} } keys %lib;
printf "jwt_decode %d\n", $jwt;
