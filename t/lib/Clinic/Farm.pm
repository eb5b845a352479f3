package Clinic::Farm;
# The farm of the farm tests (t/farm/*.t, FARM.md): two Apache nodes with
# mod_clinic (conf/farm/node.conf.in) behind a mod_proxy_balancer front
# (conf/farm/front.conf.in), one PostgreSQL, all on 127.0.0.1 on ports
# chosen at run time.
#
# scripts/farm-run.pl calls start() once: it picks the ports, renders the
# templates, starts the three servers and writes the farm's description to
# WORK/farm.json; each test file then finds it with Clinic::Farm->load
# (path in $ENV{CLINIC_FARM}). stop() stops the servers by their pid files.
use strict;
use warnings;

use Exporter 'import';
use POSIX ();
use Time::HiRes qw(time sleep);
use IO::Socket::INET ();
use HTTP::Tiny ();
use JSON::PP ();
use DBI ();
use Test::More ();
use Clinic::Token ();

our @EXPORT_OK = qw(sleep_until counts same);

my $json = JSON::PP->new->utf8->canonical;
my @servers = (['node-a', 'node', 'a'], ['node-b', 'node', 'b'], ['front', 'front', 'front']);

# --- set-up, by scripts/farm-run.pl -------------------------------------------
# start(work => DIR (holds mod_clinic.so, mkjwt, keys/jwt-private.pem),
#       templates => conf/farm, pghost => DIR, pguser =>, user =>, group =>,
#       httpd =>, moddir =>): the farm, running.
sub start {
    my ($class, %o) = @_;
    my $run = "$o{work}/run";
    mkdir "$run/$_" for qw(rt-a rt-b rt-front cores-a cores-b);
    my @socks = map { IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1,
                                            ReuseAddr => 1) or die "no free port: $!" } 1 .. 3;
    my %port;
    @port{qw(a b front)} = map { $_->sockport } @socks;
    close $_ for @socks;
    my $self = bless { %o, run => $run, port => \%port, mkjwt => "$o{work}/mkjwt",
                       key => "$o{work}/keys/jwt-private.pem",
                       dbparams => "host=$o{pghost} dbname=clinic user=$o{pguser} connect_timeout=2 "
                                 . "options='-c statement_timeout=5000'" }, $class;
    for my $s (@servers) {
        my ($name, $template, $node) = @$s;
        $self->render("$o{templates}/$template.conf.in", "$run/$name.conf", $node);
    }
    system('chown', '-R', "$o{user}:$o{group}", $run) if $> == 0;
    for my $s (@servers) {
        my $conf = "$run/$s->[0].conf";
        system($o{httpd}, '-t', '-f', $conf) == 0 or die "farm: $conf does not parse\n";
        system($o{httpd}, '-f', $conf, '-k', 'start') == 0 or die "farm: $s->[0] did not start\n";
    }
    $self->wait_port($port{$_}) for qw(a b front);
    my $file = "$o{work}/farm.json";
    open my $fh, '>', $file or die "$file: $!";
    print $fh $json->encode({ %$self });
    close $fh;
    return $self;
}

sub render {   # template output node
    my ($self, $in, $out, $node) = @_;
    my %v = (RUNDIR => $self->{run}, TOPDIR => $self->{work}, MODDIR => $self->{moddir},
             KEYDIR => "$self->{work}/keys", DBPARAMS => $self->{dbparams}, USER => $self->{user},
             GROUP => $self->{group}, NODE => $node, PORT => $self->{port}{$node},
             PORT_A => $self->{port}{a}, PORT_B => $self->{port}{b});
    open my $i, '<', $in or die "$in: $!";
    open my $o, '>', $out or die "$out: $!";
    while (my $line = <$i>) {
        $line =~ s/@([A-Z_]+)@/$v{$1} \/\/ "\@$1\@"/ge;
        print $o $line;
    }
    close $o or die "$out: $!";
}

# Start a server of the farm again (one a test killed): NAME is node-a, node-b or front.
sub restart_server {
    my ($self, $name) = @_;
    my $conf = "$self->{run}/$name.conf";
    system($self->{httpd}, '-f', $conf, '-k', 'start') == 0 or die "farm: $name did not start\n";
    my %port_of = ('node-a' => 'a', 'node-b' => 'b', front => 'front');
    $self->wait_port($self->{port}{ $port_of{$name} });
}

sub wait_port {
    my ($self, $port) = @_;
    my $ua = HTTP::Tiny->new(timeout => 1);
    for (1 .. 100) {
        return if $ua->get("http://127.0.0.1:$port/")->{status} != 599;
        sleep 0.1;
    }
    die "farm: nothing answers on 127.0.0.1:$port\n";
}

# Stop every server still running (SIGTERM, SIGKILL after 10 s).
sub stop {
    my ($self) = @_;
    for my $s (@servers) {
        my ($pid) = $self->node_pids($s->[0]) or next;
        kill 'TERM', $pid;
        for (1 .. 100) { last unless kill 0, $pid; sleep 0.1 }
        kill 'KILL', $pid if kill 0, $pid;
    }
}

# --- for the test files ---------------------------------------------------------
sub load {
    my ($class) = @_;
    my $file = $ENV{CLINIC_FARM} or return;
    open my $fh, '<', $file or die "$file: $!";
    local $/;
    my $self = bless $json->decode(<$fh>), $class;
    $self->{tag} = sprintf '%x%x', time, $$;   # names this test file's rows
    return $self;
}

sub port { $_[0]{port}{ $_[1] } }   # a, b, front
sub run_dir { $_[0]{run} }
sub work_dir { $_[0]{work} }
sub httpd { $_[0]{httpd} }
sub tag { $_[0]{tag} }

sub dsn { "dbi:Pg:host=$_[0]{pghost};dbname=clinic;application_name=farm-test" }
sub dbh {
    my ($self) = @_;
    return $self->{dbh} ||= do {
        my $d = DBI->connect($self->dsn, $self->{pguser}, '', { RaiseError => 1, AutoCommit => 1, PrintError => 0 });
        $d->{AutoInactiveDestroy} = 1;   # forked children never close the parent's session
        $d;
    };
}
sub one { my ($self, $sql, @bind) = @_; my ($v) = $self->dbh->selectrow_array($sql, undef, @bind); $v }

# An RS256 token with these claims, valid for an hour on every node.
sub token {
    my ($self, $claims) = @_;
    return Clinic::Token::mint(mkjwt => $self->{mkjwt}, alg => 'RS256', key => $self->{key},
                               claims => $claims, exp_in => 3600);
}

# post($ua, NODE, PATH, TOKEN, BODY, HEADER => VALUE ...): HTTP::Tiny's answer;
# BODY a string sent as is or a reference encoded as JSON.
sub post {
    my ($self, $ua, $node, $path, $token, $body, %h) = @_;
    return $ua->request('POST', "http://127.0.0.1:$self->{port}{$node}$path", {
        headers => { 'Authorization' => "Bearer $token", 'Content-Type' => 'application/json', %h },
        content => ref $body ? $json->encode($body) : $body });
}
sub jbody { my ($res) = @_; my $b = eval { $json->decode($res->{content}) }; $b }
sub encode { $json->encode($_[1]) }

# A server's parent from its pid file, and its children.
sub node_pids {
    my ($self, $name) = @_;
    open my $fh, '<', "$self->{run}/$name.pid" or return;
    chomp(my $pid = <$fh> // '');
    return unless $pid =~ /^\d+$/ && kill 0, $pid;
    my @kids = grep { /^\d+$/ } map { s/\s+//gr } `ps -o pid= --ppid $pid`;
    return ($pid, @kids);
}

sub graceful {   # apache2 -k graceful on node NAME: its exit status
    my ($self, $name) = @_;
    return system($self->{httpd}, '-f', "$self->{run}/$name.conf", '-k', 'graceful') >> 8;
}
sub graceful_count {   # SIGUSR1 lines in a server's error log
    my ($self, $name) = @_;
    open my $fh, '<', "$self->{run}/$name-error.log" or return 0;
    return scalar grep { /SIGUSR1 received/ } <$fh>;
}

# Peak number of PostgreSQL sessions opened by the nodes, sampled every
# 100 ms by a child process until sampler_stop.
sub sampler_start {
    my ($self) = @_;
    my $file = "$self->{work}/sampler.$$." . time;
    my $pid = fork // die;
    if (!$pid) {
        my $d = DBI->connect($self->dsn, $self->{pguser}, '', { RaiseError => 1, AutoCommit => 1, PrintError => 0 });
        my ($max, $stop) = (0, 0);
        local $SIG{TERM} = sub { $stop = 1 };
        while (!$stop) {
            my ($n) = $d->selectrow_array(q{SELECT count(*) FROM pg_stat_activity WHERE datname = 'clinic'
                AND backend_type = 'client backend' AND application_name <> 'farm-test'});
            $max = $n if $n > $max;
            sleep 0.1;
        }
        open my $fh, '>', $file or POSIX::_exit(1);
        print $fh "$max\n";
        close $fh;
        $d->disconnect;
        POSIX::_exit(0);
    }
    return [$pid, $file];
}
sub sampler_stop {
    my ($self, $s) = @_;
    kill 'TERM', $s->[0];
    waitpid $s->[0], 0;
    open my $fh, '<', $s->[1] or return '?';
    chomp(my $max = <$fh> // '?');
    return $max;
}

# --- small helpers ---------------------------------------------------------------
sub sleep_until { my ($t) = @_; my $d = $t - time; sleep($d) if $d > 0 }   # HiRes dies on < 0
# is(), with what it got and wanted in the name: the farm's log shows the figures.
sub same {
    my ($got, $want, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    $got //= 'undef';
    return Test::More::is($got, $want, "$name (got $got, want $want)");
}
sub counts { my ($h) = @_; join(', ', map { "$_: $h->{$_}" } sort keys %$h) || 'none' }

1;
