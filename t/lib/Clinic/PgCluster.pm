package Clinic::PgCluster;
# A throw-away PostgreSQL cluster in a directory of its own, unix socket only
# (the socket lives in the data directory), run by the current (unprivileged)
# user and stopped by PID when the test ends. Primaries and streaming
# standbys (pg_basebackup -R), SIGKILL, promote.
#
#   my $p = Clinic::PgCluster->new(dir => "$work/p", conf => ["wal_level = replica"]);
#   $p->init->start;  $p->load_schema($sqldir);
#   my $s = Clinic::PgCluster->new(dir => "$work/s")->standby_of($p)->start;
#   $p->kill9;  $s->promote;
use strict;
use warnings;

use DBI ();
use File::Path qw(remove_tree);
use Clinic::Procs qw(on_exit run_cmd wait_until alive);

my ($pgbin) = sort { $b cmp $a } glob('/usr/lib/postgresql/*/bin');

sub new {
    my ($class, %o) = @_;
    my $self = bless { port => 5432, conf => [], %o }, $class;
    $self->{log} //= "$self->{dir}.log";
    on_exit(sub { $self->stop('immediate') });
    return $self;
}

sub dir  { $_[0]{dir} }
sub host { $_[0]{dir} }   # the socket directory, for host= in a libpq string
sub port { $_[0]{port} }
sub bin  { "$pgbin/$_[1]" }

sub _conf {
    my ($self, @lines) = @_;
    open(my $fh, '>>', "$self->{dir}/postgresql.conf") or die "$self->{dir}: $!";
    print $fh "$_\n" for @lines;
    close $fh;
}

# Lines every cluster of ours gets: its own socket, no TCP, fast.
sub _own_conf {
    my ($self) = @_;
    $self->_conf("unix_socket_directories = '$self->{dir}'", "listen_addresses = ''",
                 "port = $self->{port}", 'fsync = off', @{ $self->{conf} });
}

sub init {
    my ($self) = @_;
    run_cmd($self->{log}, $self->bin('initdb'), '-D', $self->{dir}, '-E', 'UTF8',
            '--locale=C.UTF-8', '-A', 'trust', '-U', scalar getpwuid($<));
    $self->_conf('wal_level = replica', 'max_wal_senders = 10', 'hot_standby = on',
                 'wal_keep_size = 256MB');
    $self->_own_conf;
    return $self;
}

# A fresh streaming standby of $primary (its directory is wiped first).
sub standby_of {
    my ($self, $primary) = @_;
    $self->stop('immediate');
    remove_tree($self->{dir});
    run_cmd($self->{log}, $self->bin('pg_basebackup'), '-D', $self->{dir}, '-R', '-X', 'stream',
            '-c', 'fast', '-h', $primary->host, '-p', $primary->port);
    chmod 0700, $self->{dir};
    unlink "$self->{dir}/postmaster.pid", glob("$self->{dir}/.s.PGSQL.*");   # the primary's
    $self->_own_conf;   # after the primary's copied settings: these win
    return $self;
}

sub start {
    my ($self) = @_;
    run_cmd($self->{log}, $self->bin('pg_ctl'), '-D', $self->{dir}, '-l', $self->{log}, '-w',
            '-t', '60', 'start');
    return $self;
}

sub pid {
    my ($self) = @_;
    open(my $fh, '<', "$self->{dir}/postmaster.pid") or return;
    my $pid = <$fh>;
    chomp $pid if defined $pid;
    return $pid;
}

sub running { my $pid = $_[0]->pid; return alive($pid) }

sub stop {
    my ($self, $mode) = @_;
    return unless $self->running;
    eval { run_cmd($self->{log}, $self->bin('pg_ctl'), '-D', $self->{dir}, '-m', $mode // 'fast',
                   '-w', '-t', '30', 'stop') };
    $self->kill9 if $self->running;
}

sub restart {
    my ($self) = @_;
    run_cmd($self->{log}, $self->bin('pg_ctl'), '-D', $self->{dir}, '-l', $self->{log},
            '-m', 'fast', '-w', '-t', '60', 'restart');
    return $self;
}

# The machine died: SIGKILL the postmaster and every process it started.
sub kill9 {
    my ($self) = @_;
    my $pid = $self->pid or return;
    my @kids = grep { my $st = _ppid($_); defined $st && $st == $pid } _all_pids();
    kill('KILL', $pid, @kids);
    wait_until(10, sub { !grep { alive($_) && _state($_) ne 'Z' } $pid, @kids }, 0.02);
}
sub _all_pids { opendir(my $d, '/proc') or return; return grep { /^\d+$/ } readdir $d }
sub _state {   # Z: a zombie, dead but not yet reaped by init
    open(my $fh, '<', "/proc/$_[0]/stat") or return 'gone';
    my $st = <$fh> // return 'gone';
    return (split ' ', substr($st, rindex($st, ')') + 2))[0];
}
sub _ppid {
    open(my $fh, '<', "/proc/$_[0]/stat") or return;
    my $st = <$fh> // return;
    return (split ' ', substr($st, rindex($st, ')') + 2))[1];
}

# Append settings to postgresql.conf and reload.
sub set {
    my ($self, @lines) = @_;
    $self->_conf(@lines);
    return $self->reload;
}

sub reload {
    my ($self) = @_;
    run_cmd($self->{log}, $self->bin('pg_ctl'), '-D', $self->{dir}, 'reload');
    return $self;
}

sub promote {
    my ($self) = @_;
    run_cmd($self->{log}, $self->bin('pg_ctl'), '-D', $self->{dir}, '-w', '-t', '60', 'promote');
    return $self;
}

sub dsn { my ($self, $db) = @_; "dbi:Pg:host=$self->{dir};port=$self->{port};dbname=" . ($db // 'clinic') }

# A fresh DBI session (AutoCommit, errors raised).
sub dbh {
    my ($self, $db) = @_;
    my $dbh = DBI->connect($self->dsn($db), '', '', { RaiseError => 1, AutoCommit => 1,
                                                      PrintError => 0, pg_enable_utf8 => 1 });
    $dbh->{AutoInactiveDestroy} = 1;   # forked children never close the parent's session
    return $dbh;
}

# psql -f each file into database clinic (created first).
sub load_schema {
    my ($self, @files) = @_;
    run_cmd($self->{log}, $self->bin('createdb'), '-h', $self->host, '-p', $self->port, 'clinic');
    run_cmd($self->{log}, 'psql', '-q', '-h', $self->host, '-p', $self->port, '-d', 'clinic',
            '-v', 'ON_ERROR_STOP=1', map { ('-f', $_) } @files);
    return $self;
}

1;
