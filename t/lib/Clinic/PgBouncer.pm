package Clinic::PgBouncer;
# Debian's pgbouncer in front of one database of a Clinic::PgCluster, on a
# loopback port chosen at run time, started in the foreground by this process
# and stopped by its PID.
#
#   my $b = Clinic::PgBouncer->new(dir => "$work/pgb", cluster => $pg, pool_mode => 'session');
#   $b->start;  "host=127.0.0.1 port=" . $b->port . " dbname=clinic"
use strict;
use warnings;

use File::Path qw(make_path);
use IO::Socket::INET ();
use POSIX ();
use Clinic::Procs qw(on_exit free_port stop_pid wait_until alive);

sub new {
    my ($class, %o) = @_;
    my $self = bless { pool_mode => 'session', pool_size => 20, %o }, $class;
    on_exit(sub { $self->stop });
    return $self;
}

sub port { $_[0]{port} }
sub log_file { "$_[0]{dir}/pgbouncer.log" }

sub start {
    my ($self) = @_;
    my $user = getpwuid($<);
    make_path($self->{dir});
    $self->{port} //= free_port();   # a restart keeps its port
    my $c = $self->{cluster};
    open(my $ul, '>', "$self->{dir}/users.txt") or die $!;
    print $ul qq("$user" ""\n);
    close $ul;
    open(my $fh, '>', "$self->{dir}/pgbouncer.ini") or die $!;
    print $fh join("\n",
        '[databases]',
        'clinic = host=' . $c->host . ' port=' . $c->port . ' dbname=clinic',
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        "listen_port = $self->{port}",
        q(unix_socket_dir =),
        'auth_type = trust',
        "auth_file = $self->{dir}/users.txt",
        "pool_mode = $self->{pool_mode}",
        "default_pool_size = $self->{pool_size}",
        'max_client_conn = 500',
        'server_login_retry = 1',
        'logfile = ' . $self->log_file,
        "pidfile = $self->{dir}/pgbouncer.pid",
        ''), "\n";
    close $fh;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>>', $self->log_file);
        open(STDERR, '>&', \*STDOUT);
        exec('pgbouncer', "$self->{dir}/pgbouncer.ini") or POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    wait_until(10, sub { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port}) })
        or die "pgbouncer: nothing listens on $self->{port} (see " . $self->log_file . ")\n";
    return $self;
}

sub stop {
    my ($self) = @_;
    stop_pid(delete $self->{pid}, 'TERM', 10) if $self->{pid};
}

1;
