package Clinic::Stall;
# A database that goes quiet, and what the rest of Apache does meanwhile
# (docs/API.md §8): an httpd of the test's own with small, known limits
# (one child, few threads, a small pool), a static file, mod_status and the
# clinic-metrics handler beside the clinic routes; PostgreSQL frozen for
# real with SIGSTOP (the postmaster and every backend) and thawed with
# SIGCONT; a prober that fetches the other URLs all along and records how
# long each took.
use strict;
use warnings;

use Exporter 'import';
use HTTP::Tiny ();
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);
use Clinic::Httpd ();
use Clinic::Load ();
use Clinic::Procs qw(on_exit stop_pid);

our @EXPORT_OK = qw(stall_httpd pg_pids pg_freeze pg_thaw prober metric visit_load);

# An httpd: ThreadsPerChild threads in one child; %o: threads, dbd_max,
# timeout (ClinicDBTimeout), waiting (ClinicDBMaxWaiting), params, driver,
# extra (lines at the end). /live and /ready are the health handlers.
sub stall_httpd {
    my (%o) = @_;
    my $h = Clinic::Httpd->new;
    my ($d, $m, $k) = ($h->dir, $ENV{CLINIC_MODDIR}, $ENV{CLINIC_KEYS});
    mkdir "$d/htdocs";
    open(my $fh, '>', "$d/htdocs/static.txt") or die $!;
    print $fh "static\n";
    close $fh;
    my $t = $o{threads};
    my $waiting = defined $o{waiting} ? "ClinicDBMaxWaiting $o{waiting}\n" : '';
    $h->write_conf(<<"CONF");
LoadModule status_module "$m/mod_status.so"
StartServers 1
ServerLimit 1
ThreadsPerChild $t
MaxRequestWorkers $t
MinSpareThreads 1
MaxSpareThreads $t
ThreadLimit $t
KeepAlive Off
LogFormat "%{%s}t.%{usec_frac}t %D %>s %r" stall
CustomLog "$d/access_log" stall
DocumentRoot "$d/htdocs"
<Directory "$d/htdocs">
    Require all granted
</Directory>
DBDriver $o{driver}
DBDParams "$o{params}"
DBDMin 0
DBDKeep $o{dbd_max}
DBDMax $o{dbd_max}
ClinicDBTimeout $o{timeout}
$waiting<Location "/visits">
    SetHandler clinic-visits
    ClinicJWTAlgorithm RS256
    ClinicJWTKeyFile "$k/rsa-public.pem"
</Location>
<Location "/patients/add_and_link">
    SetHandler clinic-add-and-link
    ClinicJWTAlgorithm RS256
    ClinicJWTKeyFile "$k/rsa-public.pem"
    ClinicUidClaim userId
</Location>
<Location "/clinic-metrics">
    SetHandler clinic-metrics
</Location>
<Location "/server-status">
    SetHandler server-status
</Location>
<Location "/live">
    SetHandler clinic-live
</Location>
<Location "/ready">
    SetHandler clinic-ready
</Location>
@{[ $o{extra} // '' ]}
CONF
    $h->start('/static.txt');
    return $h;
}

# The test cluster's postmaster and its children, from postmaster.pid and /proc.
sub pg_pids {
    my $pgdata = $ENV{CLINIC_PGDATA};
    open(my $fh, '<', "$pgdata/postmaster.pid") or die "postmaster.pid: $!";
    my $pm = <$fh>;
    close $fh;
    chomp $pm;
    return ($pm, Clinic::Httpd::children_of($pm));
}

my @frozen;
# SIGSTOP the whole cluster (it stays frozen until pg_thaw or the test's end).
sub pg_freeze {
    @frozen = pg_pids();
    on_exit(\&pg_thaw);
    kill 'STOP', @frozen;
    return scalar @frozen;
}

sub pg_thaw {
    kill 'CONT', @frozen if @frozen;
    kill 'CONT', pg_pids();   # backends forked while frozen (none expected)
    @frozen = ();
}

# A forked prober: GET each url every $every seconds until stopped, one line
# per fetch in $file: "url status seconds". Returns a stop sub.
sub prober {
    my ($file, $every, @urls) = @_;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my $ua = HTTP::Tiny->new(timeout => 20, keep_alive => 0);
        open(my $log, '>', $file) or POSIX::_exit(1);
        $log->autoflush(1);
        while (1) {
            for my $u (@urls) {
                my $t0 = time;
                my $res = $ua->get($u);
                printf $log "%s %d %.3f\n", $u, $res->{status}, time - $t0;
            }
            sleep $every;
        }
    }
    on_exit(sub { stop_pid($pid, 'KILL', 1) });
    return sub {
        stop_pid($pid, 'KILL', 1);
        open(my $fh, '<', $file) or return ();
        return map { [split ' '] } <$fh>;
    };
}

# Clinic::Load with $clients clients posting visits, each request with an
# Idempotency-Key and a status of its own ("$tag-$run-client-n"); %o go to
# Clinic::Load (give_up, timeout, retry_pause).
sub visit_load {
    my ($h, $dir, $tok, $tag, $clients, %o) = @_;
    my $run = "$$-" . int(time);
    my $load = Clinic::Load->new(
        dir => "$dir/load", url => $h->url(''), %o,
        clients => [map { my $c = $_; sub {
            my ($n) = @_;
            return { path => '/visits', token => $tok, key => "$tag-$run-$c-$n",
                     body => qq({"patient": 1750, "status": "$tag-$run-$c-$n"}) };
        } } 1 .. $clients]);
    return ($load, "$tag-$run");
}

# A sample of the Prometheus text, by its full series name.
sub metric {
    my ($text, $series) = @_;
    my $total = 0;
    my $found;
    for (split /\n/, $text) {
        next unless index($_, $series) == 0;
        my ($name, $v) = /^(\S+)\s+(\S+)$/ or next;
        next unless $name eq $series || ($series !~ /[{}]/ && $name =~ /^\Q$series\E\{/);
        $total += $v;
        $found = 1;
    }
    return $found ? $total : undef;
}

1;
