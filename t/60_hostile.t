# Hostile HTTP: a slow body, oversized bodies (chunked too), deep nesting, a
# 1 MB string, invalid UTF-8, \u0000, duplicate keys, numbers out of range,
# odd Content-Types, on both routes. Each gets its documented 4xx, the server
# stays up, and nothing is written.
use strict;
use warnings FATAL => 'all';
use utf8;

use Test::More;
use Apache::TestRequest ();
use IO::Socket::INET ();
use Time::HiRes qw(time sleep);
use lib 't/lib';
use Clinic::Test;

my $tok = token(claims => { sub => 'hostile', userId => 'doc-hostile' });
my $uid = 'doc-hostile';
sub written { count_rows('visits') + count_rows('practice_patients') }
my $before = written();

sub visit { post_json('/visits', $_[0], token => $tok, @_[1 .. $#_]) }
sub link_ { post_json("/patients/add_and_link?uid=$uid", $_[0], token => $tok, @_[1 .. $#_]) }
my $parse = qr/^\{"detail":"JSON parse error - /;

# --- bodies ---
my $deep = ('[' x 100_000) . (']' x 100_000);
my $res = post_json('/big/visits', qq({"patient": 1750, "status": "x", "d": $deep}));
is($res->code, 400, 'nested 100,000 deep: 400');
like($res->content, qr/^\{"detail":"JSON parse error - nesting deeper than 32 levels"\}$/, 'depth message');
$res = post_json('/big/visits', '{"patient": 1750, "status": "' . ('s' x 1_000_000) . '"}');
is($res->code, 400, 'a 1 MB string under a 1 MiB limit: 400');
is($res->content, '{"status":["Ensure this field has no more than 100 characters."]}', '1 MB status: too long');
$res = visit('{"patient": 1750, "status": "' . ('s' x 1_000_000) . '"}');
is($res->code, 413, 'a 1 MB body over the default 64 KiB: 413');
is($res->content, '{"detail":"Request body is larger than 65536 bytes."}', '413 body');
$res = link_('{"appointment_id": "' . ('a' x 70_000) . '"}');
is($res->code, 413, 'add-and-link over the limit: 413');
is(jbody($res)->{code}, 'BODY_TOO_LARGE', 'add-and-link 413 code');

# A chunked body over the limit, without Content-Length.
{
    my $chunk = 'x' x 16384;
    my $chunks = join('', map { sprintf("%x\r\n%s\r\n", length $chunk, $chunk) } 1 .. 8) . "0\r\n\r\n";
    my $resp = raw_request("POST /visits HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer $tok\r\n"
        . "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n$chunks");
    like($resp, qr{^HTTP/1\.1 413 }, 'chunked 128 KiB body: 413');
    like($resp, qr/\{"detail":"Request body is larger than 65536 bytes\."\}/, 'chunked 413 body');
}

for my $c (
    ['invalid UTF-8', qq({"patient": 1750, "status": "\xc3\x28"})],
    ['\u0000', '{"patient": 1750, "status": "a\u0000"}'],
    ['duplicate keys', '{"patient": 1750, "status": "a", "status": "b"}'],
    ['patient 1e400', '{"patient": 1e400, "status": "a"}'],
    ['patient 2^63', '{"patient": 9223372036854775808, "status": "a"}'],
) {
    $res = visit($c->[1]);
    is($res->code, 400, "visits, $c->[0]: 400");
    like($res->content, $parse, "visits, $c->[0]: JSON parse error");
}
$res = visit('{"patient": -1, "status": "a"}');
is($res->content, '{"patient":["Invalid pk \"-1\" - object does not exist."]}', 'patient -1: does not exist');
$res = visit('{"patient": 1.5, "status": "a"}');
is($res->content, '{"patient":["Incorrect type. Expected pk value, received float."]}', 'patient 1.5: float');

my $appt = '"appointment_id": "65f8a1b2c3d4e5f6789012ef"';
for my $c (
    ['invalid UTF-8', qq({$appt, "firstName": "\xff", "lastName": "B"})],
    ['\u0000', qq({$appt, "firstName": "A\\u0000", "lastName": "B"})],
    ['duplicate keys', qq({$appt, "firstName": "A", "firstName": "C", "lastName": "B"})],
    ['deep nesting', qq({$appt, "firstName": "A", "lastName": "B", "x": ) . ('[' x 40) . (']' x 40) . '}'],
    ['a number out of range', qq({$appt, "firstName": "A", "lastName": "B", "n": 1e400})],
    ['not an object', '["A"]'],
) {
    $res = link_($c->[1]);
    is($res->code, 400, "add-and-link, $c->[0]: 400");
    my $b = jbody($res) || {};
    is_deeply([sort keys %$b], [qw(code error success)], "add-and-link, $c->[0]: envelope keys");
    is($b->{code}, 'INVALID_JSON', "add-and-link, $c->[0]: INVALID_JSON");
    like($b->{error}, $c->[0] eq 'not an object' ? qr/^Request body must be a JSON object$/
                                                 : qr/^JSON parse error - /, "add-and-link, $c->[0]: message");
}

# --- odd Content-Types ---
for my $type ('application/json; charset=latin1', 'application/jsonx', 'text/json', 'application/json;charset=utf-16') {
    $res = visit('{"patient": 1750, "status": "a"}', type => $type);
    is($res->code, 415, "visits, $type: 415");
    $res = link_(qq({$appt, "firstName": "A", "lastName": "B"}), type => $type);
    is($res->code, 415, "add-and-link, $type: 415");
    is(jbody($res)->{code}, 'UNSUPPORTED_MEDIA_TYPE', "add-and-link, $type: code");
}

# --- a slow body: mod_reqtimeout (body=5,MinRate=500 in the test config) cuts it off ---
{
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => Apache::Test::vars('port'), Timeout => 30) or die $!;
    my $body = '{"patient": 1750, "status": "slow"}';
    print $sock "POST /visits HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer $tok\r\n"
              . "Content-Type: application/json\r\nContent-Length: " . length($body) . "\r\n\r\n";
    my $t0 = time;
    my $sent = 0;
    local $SIG{PIPE} = 'IGNORE';
    while ($sent < length($body) - 1 && time - $t0 < 20) {
        last unless print $sock substr($body, $sent++, 1);
        sleep 1;
    }
    my $resp = '';
    $sock->recv($resp, 4096);
    my $took = time - $t0;
    close $sock;
    cmp_ok($took, '<', 15, sprintf('slow body cut off after %.1f s', $took));
    unlike($resp, qr{^HTTP/1\.1 200 }, 'slow body: not accepted' . ($resp =~ m{^(HTTP/1\.1 \d+)} ? " ($1)" : ' (closed)'));
}

# --- still up, nothing written ---
is(written(), $before, 'no hostile request wrote anything');
$res = visit('{"patient": 1750, "status": "still up"}');
is($res->code, 200, 'the server still answers');

done_testing();
