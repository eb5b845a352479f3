# A chunked body costs its size once, not the sum of a doubling buffer's
# steps: the body is kept as the brigade's buckets and copied once into a
# buffer of its size. A clinic httpd of its own (one child, one thread,
# ClinicMaxBody 64 MiB) reads a chunked body of 16.5 MiB; the child's peak
# resident memory (VmHWM) is compared before and after. A doubling buffer
# keeps 8 KiB + 16 KiB + ... + 32 MiB (about 64 MiB); the brigade about
# twice the body (its buckets, then the one copy); both then parse it.
use strict;
use warnings FATAL => 'all';

use Test::More;
use IO::Socket::INET ();
use lib 't/lib';
use Clinic::Test;
use Clinic::Httpd;

my ($httpd, $moddir, $module, $keys) = own_httpd_env();
# ASan's allocator (redzones, a quarantine of freed memory) makes resident memory another measure.
plan skip_all => 'resident memory is not comparable under ASan' if $ENV{CLINIC_ASAN_RUNTIME};

my $C = Clinic::Httpd->new;
$C->write_conf(<<"CONF");
LogLevel warn
@{[ Clinic::Httpd::one_worker() ]}DBDriver $ENV{CLINIC_DBD_DRIVER}
DBDParams "$ENV{CLINIC_DBD_PARAMS}"
<Location "/visits">
    SetHandler clinic-visits
    ClinicAuth off
    ClinicMaxBody 67108864
</Location>
CONF
eval { $C->start; 1 } or BAIL_OUT("$@");


# POST a chunked body of $len bytes (64 KiB chunks) that is not JSON: the answer is a 400 from
# the parser, after the whole body was read.
sub chunked {
    my ($len) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $C->port, Timeout => 30)
        or die "connect: $!";
    print $s "POST /visits HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
           . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    my $chunk = 'x' x 65536;
    for (my $left = $len; $left > 0; $left -= length $chunk) {
        my $c = $left < length $chunk ? substr($chunk, 0, $left) : $chunk;
        printf $s "%x\r\n%s\r\n", length $c, $c;
    }
    print $s "0\r\n\r\n";
    local $/;
    my $resp = <$s> // '';
    return $resp =~ m{^HTTP/1\.1 (\d+)} ? $1 : 0;
}

is(chunked(1 << 20), 400, 'a chunked body of 1 MiB: read whole, then the parser\'s 400');
my $before = $C->child_kb('VmHWM');
my $len = (16 << 20) + (512 << 10);
is(chunked($len), 400, 'a chunked body of 16.5 MiB: read whole, then the parser\'s 400');
my $after = $C->child_kb('VmHWM');
$C->stop;
ok(defined $before && defined $after, "the child's peak resident memory is read");
my $growth = (($after // 0) - ($before // 0)) >> 10;
# Measured: about 51 MiB (buckets, the copy, the parser's own); a doubling buffer: about 79.
cmp_ok($growth, '<', 64, "reading 16.5 MiB chunked: the peak grew ${growth} MiB (< 64 MiB)");

done_testing();
