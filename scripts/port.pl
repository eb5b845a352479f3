#!/usr/bin/perl
# Ports on 127.0.0.1 for `make run` and its test.
#   port.pl in-use PORT   exit 0 when PORT cannot be bound (something listens there), else 1
#   port.pl free          print a port that is free now
use strict;
use warnings;
use IO::Socket::INET ();

my ($mode, $port) = @ARGV;
my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $mode eq 'free' ? 0 : $port,
                                 Proto => 'tcp', ReuseAddr => 1, Listen => 1);
if ($mode eq 'free') {
    die "port.pl: no free port: $!\n" unless $sock;
    print $sock->sockport, "\n";
    exit 0;
}
exit($sock ? 1 : 0);
