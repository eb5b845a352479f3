package Clinic::Node;
# One Apache node loading the built module, from conf/farm/node.conf.in with
# its placeholders filled, on a loopback port chosen at run time; stopped by
# the PID in its pid file when the test ends.
#
#   my $h = Clinic::Node->new(run => "$work/run", node => 'a', top => $work,
#                              keydir => $keys, dbparams => 'host=... dbname=clinic');
#   $h->start;  $h->port;  $h->error_log;
use strict;
use warnings;

use File::Path qw(make_path);
use HTTP::Tiny ();
use Clinic::Procs qw(on_exit free_port stop_pid run_cmd wait_until alive);

chomp(my $sbin = `apxs -q SBINDIR`);
chomp(my $target = `apxs -q TARGET`);
chomp(my $moddir = `apxs -q LIBEXECDIR`);

sub new {
    my ($class, %o) = @_;
    my $self = bless { node => 'a', template => "$o{top}/conf/farm/node.conf.in", %o }, $class;
    $self->{port} //= free_port();
    on_exit(sub { $self->stop });
    return $self;
}

sub port      { $_[0]{port} }
sub url       { "http://127.0.0.1:$_[0]{port}$_[1]" }
sub conf_file { "$_[0]{run}/node-$_[0]{node}.conf" }
sub error_log { "$_[0]{run}/node-$_[0]{node}-error.log" }
sub pid_file  { "$_[0]{run}/node-$_[0]{node}.pid" }

sub _render {
    my ($self) = @_;
    my ($user, $group) = (scalar getpwuid($<), scalar getgrgid($());
    my %v = (NODE => $self->{node}, PORT => $self->{port}, RUNDIR => $self->{run},
             TOPDIR => $self->{top}, MODDIR => $moddir, KEYDIR => $self->{keydir},
             DBPARAMS => $self->{dbparams}, USER => $user, GROUP => $group);
    open(my $in, '<', $self->{template}) or die "$self->{template}: $!";
    my $text = do { local $/; <$in> };
    $text =~ s/\@([A-Z_]+)\@/exists $v{$1} ? $v{$1} : die "no value for \@$1\@\n"/ge;
    $text .= "$_\n" for @{ $self->{extra} || [] };
    make_path("$self->{run}/rt-$self->{node}", "$self->{run}/cores-$self->{node}");
    open(my $out, '>', $self->conf_file) or die $self->conf_file . ": $!";
    print $out $text;
    close $out;
}

sub start {
    my ($self) = @_;
    $self->_render;
    run_cmd($self->error_log, "$sbin/$target", '-f', $self->conf_file, '-k', 'start');
    my $ua = HTTP::Tiny->new(timeout => 1);
    wait_until(15, sub { $ua->get($self->url('/'))->{status} != 599 })
        or die "httpd node $self->{node}: nothing answers on port $self->{port}\n";
    return $self;
}

sub pid {
    my ($self) = @_;
    open(my $fh, '<', $self->pid_file) or return;
    my $pid = <$fh>;
    chomp $pid if defined $pid;
    return $pid;
}

sub stop { my ($self) = @_; stop_pid($self->pid, 'TERM', 10) }

# The error log's lines matching $re (all lines without one).
sub log_lines {
    my ($self, $re) = @_;
    open(my $fh, '<', $self->error_log) or return ();
    return grep { !$re || /$re/ } <$fh>;
}

1;
