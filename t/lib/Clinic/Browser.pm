package Clinic::Browser;
# Debian's chromium, headless, for the browser tests: load a page, let its
# scripts and requests finish (virtual time), and return the document as it
# then is (--dump-dom). A fresh profile for every run, removed after; no
# network but what the page asks for (loopback in the tests).
use strict;
use warnings;

use Exporter 'import';
use File::Temp ();

our @EXPORT = qw(chromium_problem chromium_dom page_outcomes);

my @flags = qw(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
               --disable-background-networking --disable-component-update --disable-sync
               --disable-extensions --disable-default-apps --mute-audio);

sub chromium { $ENV{CLINIC_CHROMIUM} || 'chromium' }

# Run chromium on $url; returns (dom, stderr text). The process is bounded
# by `timeout` so that a hung browser fails the test instead of the run.
sub chromium_dom {
    my ($url, %o) = @_;
    my $profile = File::Temp::tempdir('clinic-chromium-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $err = "$profile/stderr";
    my $pid = open(my $fh, '-|');
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open(STDERR, '>', $err) or die "$err: $!";
        $ENV{TZ} = $o{tz} if defined $o{tz};
        exec('timeout', '-k', '5', $o{timeout} // 60, chromium(), @flags,
             "--user-data-dir=$profile", '--virtual-time-budget=' . ($o{budget} // 20000),
             '--dump-dom', $url) or die "exec chromium: $!";
    }
    local $/;
    my $dom = <$fh> // '';
    close $fh;
    my $status = $?;
    my $stderr = '';
    if (open(my $eh, '<', $err)) { $stderr = <$eh> // ''; close $eh }
    $stderr .= "\n(exit status " . ($status >> 8) . ")" if $status;
    return ($dom, $stderr);
}

# The outcomes a test page wrote into its document: { NAME => decoded JSON of
# <pre id="case-NAME"> }, and whether it reached <div id="done">.
sub page_outcomes {
    my ($dom) = @_;
    require Encode;
    require HTML::Entities;
    require JSON::PP;
    my $json = JSON::PP->new->utf8;
    my %out;
    while ($dom =~ m{<pre id="case-([\w-]+)">(.*?)</pre>}gs) {
        $out{$1} = eval { $json->decode(Encode::encode_utf8(HTML::Entities::decode_entities($2))) }
                   // { undecodable => $2 };
    }
    return (\%out, $dom =~ m{<div id="done">done</div>} ? 1 : 0);
}

# Why chromium cannot start here, or undef when it can.
sub chromium_problem {
    my ($dom, $stderr) = chromium_dom('data:text/html,<p id="probe">chromium starts</p>',
                                      timeout => 30, budget => 1000);
    return undef if $dom =~ /chromium starts/;
    my @lines = grep { length && !/dbus|unexpected operator/ } split /\n/, $stderr;
    return join(' / ', @lines[0 .. ($#lines < 2 ? $#lines : 2)]) || 'no output';
}

1;
