package Clinic::Race;
# The fork-and-pipe race harness of t/31_link_race.t, t/50_idempotency.t and
# the farm tests (t/farm/): N child processes each get ready to send one
# request, wait on a shared pipe, and all go at the same instant when the
# parent closes it; each writes one JSON line with its result on another pipe.
#
#   my @r = Clinic::Race::run(clients => 20, prepare => sub {
#       my ($i) = @_;                 # 1 .. clients, in the child
#       ...                           # build the user agent and the request
#       return sub { ...; return { status => 200, id => ... } };   # sends it
#   });
#
# Returns one hash per client, in no particular order: what the sender
# returned, plus i => its number; a child that died before or while sending
# gives { i => N, status => '000', error => 'not-sent' | 'died: ...' }.
# Children leave with POSIX::_exit: no destructor of the parent's objects
# (DBI sessions, Apache::Test state) runs in them.
use strict;
use warnings;

use POSIX ();
use JSON::PP ();

my $json = JSON::PP->new->utf8->canonical;

sub run {
    my %o = @_;
    my ($clients, $prepare) = @o{qw(clients prepare)};
    my $timeout = $o{timeout} // 60;
    pipe(my $go_r, my $go_w) or die "pipe: $!";
    pipe(my $res_r, my $res_w) or die "pipe: $!";
    pipe(my $ready_r, my $ready_w) or die "pipe: $!";
    my @pids;
    for my $i (1 .. $clients) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $_ for $go_w, $res_r, $ready_r;
            alarm $timeout;
            my $r = { i => $i, status => '000', error => 'not-sent' };
            eval {
                my $send = $prepare->($i);
                syswrite $ready_w, 'r';
                close $ready_w;
                sysread $go_r, my $buf, 1;   # returns at EOF: the parent closed its end
                $r = { %{ $send->() }, i => $i };
                1;
            } or do { (my $e = $@ // '?') =~ s/\s+/ /g; $r = { i => $i, status => '000', error => "died: $e" } };
            syswrite $res_w, $json->encode($r) . "\n";   # one write, under PIPE_BUF: atomic
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    close $_ for $go_r, $res_w, $ready_w;
    # Wait until every child is ready (or gone), then start them all at once.
    my ($ready, $buf) = (0, '');
    while ($ready < $clients) {
        my $got = sysread $ready_r, $buf, $clients;
        last unless $got;
        $ready += $got;
    }
    close $ready_r;
    close $go_w;
    my @lines = <$res_r>;
    close $res_r;
    waitpid $_, 0 for @pids;
    return map { $json->decode($_) } @lines;
}

1;
