package Clinic::Procs;
# Processes and servers a test starts, stopped by PID when the test ends,
# also when it dies or is interrupted. Generic: any helper registers a stop
# callback with on_exit(); free_port() picks a loopback port at run time.
use strict;
use warnings;

use Exporter 'import';
use Clinic::Httpd ();
use POSIX ();
use Time::HiRes qw(sleep time);

our @EXPORT_OK = qw(on_exit free_port stop_pid wait_until run_cmd alive);

my @stops;
my $owner = $$;   # forked children never run the cleanup

sub on_exit { push @stops, $_[0]; return }

END {
    my $rc = $?;
    if ($$ == $owner) { eval { $_->() } for reverse splice @stops }
    $? = $rc;
}
$SIG{INT} = $SIG{TERM} = sub { exit 130 };

# A free TCP port on 127.0.0.1, chosen by the kernel: Clinic::Httpd's.
sub free_port { Clinic::Httpd::free_port() }

sub alive { my ($pid) = @_; return $pid && kill(0, $pid) }

# SIGTERM (or $sig), then SIGKILL after $grace seconds. Reaps own children.
sub stop_pid {
    my ($pid, $sig, $grace) = @_;
    return unless alive($pid);
    kill($sig // 'TERM', $pid);
    my $until = time + ($grace // 10);
    while (time < $until) {
        waitpid($pid, POSIX::WNOHANG());
        return unless alive($pid);
        sleep 0.05;
    }
    kill('KILL', $pid);
    waitpid($pid, 0);
}

# Poll $cond every $step seconds for up to $secs; true when it held.
sub wait_until {
    my ($secs, $cond, $step) = @_;
    my $until = time + $secs;
    while (1) {
        return 1 if $cond->();
        return 0 if time > $until;
        sleep($step // 0.1);
    }
}

# Run a command, its output to $log (appended) or discarded; dies on failure.
sub run_cmd {
    my ($log, @cmd) = @_;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>>', $log // '/dev/null');
        open(STDERR, '>&', \*STDOUT);
        exec(@cmd) or POSIX::_exit(127);
    }
    waitpid($pid, 0);
    die "failed ($?): @cmd" . ($log ? " (see $log)" : '') . "\n" if $?;
    return;
}

1;
