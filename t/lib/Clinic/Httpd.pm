package Clinic::Httpd;
# A throwaway httpd of a test's own (several children, its own MPM limits),
# beside the Apache::Test server: loopback, a port chosen at run time, stopped
# by its PID when the test ends, passed or not.
use strict;
use warnings;

use File::Temp ();
use IO::Socket::INET ();
use LWP::UserAgent ();
use Time::HiRes qw(sleep time);

my @running;

# A free loopback port (bound, read, released: the server binds it next).
sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1,
                                  ReuseAddr => 1) or die "no free port: $!";
    my $p = $s->sockport;
    close $s;
    return $p;
}

# new(conf => sub { my ($self) = @_; return the lines after the frame })
sub new {
    my ($class, %o) = @_;
    my $self = bless { %o }, $class;
    $self->{dir} = File::Temp::tempdir('clinic-httpd-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{CLINIC_TEST_KEEP});
    mkdir "$self->{dir}/run";
    $self->{port} = free_port();
    $self->{port2} = free_port();
    $self->{ua} = LWP::UserAgent->new(keep_alive => 0, timeout => 20);
    return $self;
}

sub dir   { $_[0]{dir} }
sub port  { $_[0]{port} }
sub port2 { $_[0]{port2} }
sub ua    { $_[0]{ua} }
sub url   { my ($self, $path, $port) = @_; return "http://127.0.0.1:" . ($port // $self->{port}) . $path }

# The server-level frame around the caller's lines.
sub write_conf {
    my ($self, $body) = @_;
    my ($d, $m) = ($self->{dir}, $ENV{CLINIC_MODDIR});
    my $t = "ServerRoot \"$d\"\nServerName localhost\nDefaultRuntimeDir \"$d/run\"\n"
          . "Listen 127.0.0.1:$self->{port}\nListen 127.0.0.1:$self->{port2}\n"
          . "PidFile \"$d/httpd.pid\"\nErrorLog \"$d/error_log\"\nLogLevel info\n"
          . "LoadModule mpm_event_module \"$m/mod_mpm_event.so\"\n"
          . "LoadModule authz_core_module \"$m/mod_authz_core.so\"\n"
          . "LoadModule authz_host_module \"$m/mod_authz_host.so\"\n"
          . "LoadModule dbd_module \"$m/mod_dbd.so\"\n"
          . "LoadModule clinic_module \"$ENV{CLINIC_MODULE}\"\n";
    open(my $fh, '>', "$d/httpd.conf") or die "$d/httpd.conf: $!";
    print $fh $t, $body;
    close $fh or die "$d/httpd.conf: $!";
}

sub pid {
    my ($self) = @_;
    open(my $fh, '<', "$self->{dir}/httpd.pid") or return $self->{started_pid};
    my $p = <$fh>;
    close $fh;
    chomp $p if defined $p;
    return $p;
}

# PIDs of the parent's children, from /proc.
sub children {
    my ($self) = @_;
    my $ppid = $self->pid or return ();
    return children_of($ppid);
}

# PIDs of any process's children, from /proc (a function: Clinic::Stall uses it too).
sub children_of {
    my ($ppid) = @_;
    my @kids;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open(my $fh, '<', $stat) or next;
        my $line = <$fh> // '';
        close $fh;
        push @kids, $1 if $line =~ /^(\d+) \(.*\) \S+ (\d+) / && $2 == $ppid;
    }
    return sort { $a <=> $b } @kids;
}

# The MPM lines of one child process with one thread (one pooled database session).
sub one_worker {
    return join '', map { "$_ 1\n" } qw(StartServers ServerLimit ThreadsPerChild ThreadLimit
                                        MaxRequestWorkers MinSpareThreads MaxSpareThreads);
}

# A "kB" field of the (first) child's /proc/PID/status: VmRSS, VmHWM.
sub child_kb {
    my ($self, $field) = @_;
    my ($kid) = $self->children or return undef;
    open(my $fh, '<', "/proc/$kid/status") or return undef;
    my $text = do { local $/; <$fh> };
    return $text =~ /^\Q$field\E:\s+(\d+) kB/m ? $1 : undef;
}

# Wait until GET $path answers (any status but a refused connection).
sub wait_up {
    my ($self, $path) = @_;
    my $until = time + 20;
    while (time < $until) {
        my $res = $self->{ua}->get($self->url($path));
        return 1 unless $res->code == 500 && ($res->header('Client-Warning') // '') eq 'Internal response';
        sleep 0.1;
    }
    return 0;
}

sub start {
    my ($self, $probe) = @_;
    system($ENV{CLINIC_HTTPD}, '-f', "$self->{dir}/httpd.conf", '-k', 'start') == 0
        or die "httpd -k start failed: " . $self->log_tail;
    push @running, $self;
    $self->wait_up($probe // '/') or die "httpd did not come up: " . $self->log_tail;
    $self->{started_pid} = $self->pid;   # stopped by it even once its directory is gone
}

sub log_tail {
    my ($self) = @_;
    open(my $fh, '<', "$self->{dir}/error_log") or return '(no error_log)';
    my @l = <$fh>;
    close $fh;
    return join '', @l[($#l > 20 ? $#l - 20 : 0) .. $#l];
}

# Times the error log says a generation started serving.
sub generations {
    my ($self) = @_;
    open(my $fh, '<', "$self->{dir}/error_log") or return 0;
    local $/;
    my $n = () = (<$fh> // '') =~ /resuming normal operations/g;
    close $fh;
    return $n;
}

# Signal the parent and wait for the new generation to answer. USR1:
# graceful restart; HUP: full restart.
sub restart {
    my ($self, $sig, $probe) = @_;
    my $before = $self->generations;
    kill $sig, $self->pid or die "kill $sig: $!";
    my $until = time + 20;
    sleep 0.1 while $self->generations <= $before && time < $until;
    return $self->generations > $before && $self->wait_up($probe // '/');
}

sub stop {
    my ($self) = @_;
    my $pid = $self->pid or return;
    kill 'TERM', $pid;
    for (1 .. 100) {
        last unless kill 0, $pid;
        sleep 0.1;
    }
    kill 'KILL', $pid if kill 0, $pid;
    @running = grep { $_ != $self } @running;
}

END { $_->stop for my @copy = @running }   # stop() edits @running

1;
