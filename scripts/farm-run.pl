#!/usr/bin/perl
# Called by scripts/farm-test.sh once the keys and PostgreSQL are ready:
# starts the farm (Clinic::Farm), runs each t/farm/*.t in name order (or the
# files given after --) against it, stops the farm. Prints every test line,
# one `farm FILE: N passed, M failed` line per file, and exits 0 only when
# every file passed all its tests, ran to the end of its plan and exited 0.
#
#   perl scripts/farm-run.pl --work DIR --pghost DIR --pguser U --user U --group G \
#        --httpd PATH --moddir DIR [-- t/farm/10_race.t ...]
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Getopt::Long qw(GetOptions);
use Time::HiRes qw(time);
use Clinic::Farm ();

my %o;
GetOptions(\%o, qw(work=s pghost=s pguser=s user=s group=s httpd=s moddir=s)) or exit 2;
my $top = "$FindBin::Bin/..";
my @files = @ARGV ? @ARGV : sort glob "$top/t/farm/*.t";

$| = 1;
my $farm;
$SIG{$_} = sub { exit 130 } for qw(INT TERM);
END { $farm->stop if $farm }

$farm = Clinic::Farm->start(%o, templates => "$top/conf/farm");
printf "farm: node A 127.0.0.1:%d, node B 127.0.0.1:%d, front 127.0.0.1:%d, work dir %s\n",
    $farm->port('a'), $farm->port('b'), $farm->port('front'), $o{work};
$ENV{CLINIC_FARM} = "$o{work}/farm.json";

my $bad = 0;
for my $file (@files) {
    my $t0 = time;
    my ($passed, $failed, $planned) = (0, 0);
    open my $fh, '-|', "perl -I'$top/t/lib' '$file' 2>&1" or die "$file: $!";
    while (my $line = <$fh>) {
        print $line;
        $passed++ if $line =~ /^ok /;
        $failed++ if $line =~ /^not ok /;
        $planned = $1 if $line =~ /^1\.\.(\d+)/;
    }
    close $fh;
    my $rc = $? >> 8;
    (my $name = $file) =~ s{^.*/t/}{t/};
    # Test::More exits with the number of failed tests (255 when it died).
    if (!defined $planned || $planned != $passed + $failed || $rc == 255 || ($rc != 0 && !$failed)) {
        printf "farm %s: stopped early (exit %d, plan %s, ran %d)\n", $name, $rc, $planned // 'none', $passed + $failed;
        $bad = 1;
    }
    printf "farm %s: %d passed, %d failed (%.1f s)\n", $name, $passed, $failed, time - $t0;
    $bad = 1 if $failed;
}
exit $bad;
