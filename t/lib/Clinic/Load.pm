package Clinic::Load;
# Client load with Idempotency-Key retries, as a careful API client does it:
# every request gets a key of its own and is sent again with the SAME key
# after a 503 or a transport error (dropped connection, timeout) until the
# route answers. Each client is a forked process writing one JSON line per
# request to $dir/client-N.log: the key, the final answer, and every attempt
# (start time, seconds taken, status, Retry-After).
#
#   my $load = Clinic::Load->new(dir => $d, url => $base, clients => [sub { ... }, ...]);
#   $load->start; ...; $load->stop;  my @done = $load->results;
# Each client sub gets ($n) and returns {path, token, body, key} for request n.
use strict;
use warnings;

use HTTP::Tiny ();
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);
use Clinic::Procs qw(on_exit stop_pid);

my $json = JSON::PP->new->utf8->canonical;

sub new {
    my ($class, %o) = @_;
    my $self = bless { timeout => 30, retry_pause => 0.2, give_up => 60, %o }, $class;
    mkdir $self->{dir};
    on_exit(sub { $self->stop(1) });
    return $self;
}

sub _client {
    my ($self, $i, $make) = @_;
    my $ua = HTTP::Tiny->new(timeout => $self->{timeout}, keep_alive => 0);
    open(my $log, '>', "$self->{dir}/client-$i.log") or die $!;
    $log->autoflush(1);
    for (my $n = 0; !-e "$self->{dir}/stop"; $n++) {
        my $q = $make->($n);
        my (@tries, $res);
        my $first = time;
        while (1) {
            my $t0 = time;
            $res = $ua->request('POST', $self->{url} . $q->{path}, {
                headers => { 'Authorization' => "Bearer $q->{token}",
                             'Content-Type' => 'application/json',
                             'Idempotency-Key' => $q->{key} },
                content => $q->{body} });
            push @tries, [$t0, time - $t0, $res->{status}, $res->{headers}{'retry-after'}];
            last unless $res->{status} == 503 || $res->{status} == 599;
            last if time - $first > $self->{give_up};
            sleep $self->{retry_pause};
        }
        print $log $json->encode({ key => $q->{key}, path => $q->{path}, body => $q->{body},
                                   status => $res->{status}, answer => $res->{content},
                                   replayed => $res->{headers}{'idempotent-replayed'},
                                   tries => \@tries }), "\n";
    }
    close $log;
}

sub start {
    my ($self) = @_;
    unlink "$self->{dir}/stop";
    my $i = 0;
    for my $make (@{ $self->{clients} }) {
        my $n = $i++;
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            $self->_client($n, $make);
            POSIX::_exit(0);
        }
        push @{ $self->{pids} }, $pid;
    }
    return $self;
}

# Ask the clients to finish their current request (retries included) and wait.
sub stop {
    my ($self, $now) = @_;
    my @pids = @{ delete $self->{pids} || [] } or return;
    if (open(my $fh, ">", "$self->{dir}/stop")) { close $fh }
    if ($now) { stop_pid($_, 'KILL', 1) for @pids; return }
    my $until = time + $self->{give_up} + $self->{timeout} + 5;
    for my $pid (@pids) {
        while (waitpid($pid, POSIX::WNOHANG()) == 0) {
            if (time > $until) { stop_pid($pid, 'KILL', 1); last }
            sleep 0.05;
        }
    }
}

sub results {
    my ($self) = @_;
    my @all;
    for my $f (glob("$self->{dir}/client-*.log")) {
        open(my $fh, '<', $f) or next;
        push @all, map { $json->decode($_) } <$fh>;
    }
    return @all;
}

1;
