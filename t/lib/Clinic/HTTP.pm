package Clinic::HTTP;
# A minimal keep-alive HTTP/1.1 client for the farm's load (t/farm/30_kill.t):
# the whole request in ONE write with TCP_NODELAY (HTTP::Tiny writes headers
# and body separately, and Nagle plus delayed ACKs then cost ~40 ms a
# request), and precise transport errors (status 599, reason says which).
#
#   my $c = Clinic::HTTP->new($port);
#   my $res = $c->post($path, { Header => 'value' }, $body);   # {status, headers, content}
use strict;
use warnings;

use IO::Socket::INET;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use IO::Select;

sub new { my ($class, $port) = @_; bless { port => $port }, $class }
sub fail { my ($self, $why) = @_; close $self->{sock} if $self->{sock}; delete $self->{sock};
           return { status => 599, reason => $why, headers => {}, content => '' } }
sub post {
    my ($self, $path, $hdrs, $body) = @_;
    my $req = "POST $path HTTP/1.1\r\nHost: 127.0.0.1:$self->{port}\r\n"
        . join('', map { "$_: $hdrs->{$_}\r\n" } sort keys %$hdrs)
        . 'Content-Length: ' . length($body) . "\r\n\r\n" . $body;
    my $reused = $self->{sock} ? 'reused' : 'new';
    if (!$self->{sock}) {
        $self->{sock} = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port},
                                              Proto => 'tcp', Timeout => 5)
            or return $self->fail("connect:$!");
        setsockopt($self->{sock}, IPPROTO_TCP, TCP_NODELAY, 1);
    }
    my $s = $self->{sock};
    for (my $off = 0; $off < length $req;) {
        my $n = syswrite $s, $req, length($req) - $off, $off;
        return $self->fail("write($reused):$!") unless $n;
        $off += $n;
    }
    my ($buf, $need, %h, $status) = ('');
    my $sel = IO::Select->new($s);
    while (1) {
        if (!defined $status && $buf =~ /\r\n\r\n/) {
            my ($head, $rest) = split /\r\n\r\n/, $buf, 2;
            my ($line, @lines) = split /\r\n/, $head;
            ($status) = $line =~ m{^HTTP/1\.\d (\d{3})} or return $self->fail('bad-status-line');
            for (@lines) { my ($k, $v) = /^([^:]+):\s*(.*)$/ or next; $h{lc $k} = $v }
            $need = $h{'content-length'} // 0;
            $buf = $rest;
        }
        last if defined $status && length $buf >= $need;
        return $self->fail("timeout($reused)") unless $sel->can_read(30);
        my $n = sysread $s, $buf, 65536, length $buf;
        return $self->fail(($n // 0) == 0 && defined $n
            ? (defined $status ? "eof-in-body($reused)" : length $buf ? "eof-in-head($reused)" : "eof-before-answer($reused)")
            : "read($reused):$!") unless $n;
    }
    if (lc($h{connection} // '') eq 'close') { close $s; delete $self->{sock} }
    return { status => $status, headers => \%h, content => $buf };
}

1;
